"""The sampling plan: release file names, per-benchmark seeds, one user turn per problem."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from justrl import evaluate as E
from justrl.data import benchmarks as B

RELEASE_KEYS = {"example_id", "prompt", "answer", "seed", "response"}


def test_release_file_names():
    name = E.output_name("aime24", 0.7, 0.9, 32, 31_744)
    assert name == "aime24_t0.7_p0.9_n32-MNT31744.jsonl"
    assert E.output_name("math-500", 1, 1.0, 4, 512) == "math-500_t1.0_p1.0_n4-MNT512.jsonl"
    # the release grader's pattern reads the settings back
    m = re.search(r"_t(?P<temperature>[\d.]+)_p(?P<top_p>[\d.]+)_n(?P<n>\d+)-MNT(?P<max_tokens>\d+)", name)
    assert m and m.groupdict() == {"temperature": "0.7", "top_p": "0.9", "n": "32", "max_tokens": "31744"}


def test_sample_seeds_are_distinct_reproducible_and_per_benchmark():
    seeds = E.sample_seeds(0, "aime24", 32)
    assert len(set(seeds)) == 32 and all(0 <= s < 2**31 - 1 for s in seeds)
    assert E.sample_seeds(0, "aime24", 32) == seeds
    assert E.sample_seeds(0, "aime24", 4) == seeds[:4]  # a smaller n keeps a prefix
    assert E.sample_seeds(0, "aime25", 32) != seeds and E.sample_seeds(1, "aime24", 32) != seeds


def test_plan_sends_each_problem_as_one_user_turn_with_every_seed(tiny_model, data_dir, tmp_path):
    tokenizer = E.load_tokenizer(str(tiny_model))
    file = B.locate([B.get("AIME24")], data_dir)["AIME24"]
    config = E.EvalConfig(model=str(tiny_model), limit=3)
    plan = E.plan_benchmark(file, config, tmp_path, lambda m: E.chat_text(tokenizer, m))
    assert plan.samples_per_problem == 32 and plan.path.name == "aime24_t0.7_p0.9_n32-MNT31744.jsonl"
    assert len(plan.requests) == 3 * 32
    assert Counter(r.example_id for r in plan.requests) == {0: 32, 1: 32, 2: 32}
    assert [r.seed for r in plan.requests[:32]] == plan.seeds == E.sample_seeds(0, "aime24", 32)
    first = plan.requests[0]
    problem = B.load_problems(file)[0]
    assert first.prompt == problem.prompt + " Please reason step by step, and put your final answer within \\boxed{}."
    assert first.text == "<|user|>" + first.prompt + "<|assistant|>"  # the toy chat template
    assert first.answer == "\\boxed{204}"
    assert set(first.record("r")) == RELEASE_KEYS


def test_a_tokenizer_without_chat_template_is_refused():
    class NoTemplate:
        chat_template = None

    with pytest.raises(E.EvalError, match="no chat template"):
        E.chat_text(NoTemplate(), "x")


def test_a_tokenizer_that_does_not_load_is_a_user_error(tmp_path):
    from justrl.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match="missing: no such folder"):
        E.load_tokenizer(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="cannot load the tokenizer") as caught:
        E.load_tokenizer(str(tmp_path / "empty"))
    assert "\n" not in str(caught.value)


def test_a_template_keeps_a_literal_boxed_and_reads_format_escapes():
    from justrl.data.problems import Problem

    problem = Problem(id="t-0", prompt=" 1+1? ", ground_truth="2", source="t")
    assert E.format_prompt("{problem} put it in \\boxed{}.", problem) == "1+1? put it in \\boxed{}."
    assert E.format_prompt("{problem} \\boxed{{}} {x}", problem) == "1+1? \\boxed{} {x}"
    assert E.format_prompt(E.EVAL_PROMPT, problem).endswith("within \\boxed{}.")


def test_batching_order_is_longest_prompt_first_one_problem_together():
    def request(example_id: int, seed: int, text: str) -> E.SampleRequest:
        return E.SampleRequest("B", example_id, seed, "p", "a", text)

    requests = [request(0, 1, "ab"), request(1, 1, "abcd"), request(0, 2, "ab"), request(1, 2, "abcd")]
    assert [r.key for r in E.order_for_batching(requests)] == [(1, 1), (1, 2), (0, 1), (0, 2)]
