"""The CompassVerifier judge: the release's prompt and chat template, its "A" rule, and batches
sorted by length and sized by a token budget (issue 14, case 1: one call with every rejected
answer, 32k-token ones included, runs the transformers backend out of memory)."""

from __future__ import annotations

import ast
import os
import subprocess
from dataclasses import dataclass, field
from typing import Any

import pytest

from justrl.evaluate import judge as J
from justrl.generate.hf import Completion


def _release_cv_prompt() -> str:
    """CV_PROMPT as the JustRL release's evals/grade.py defines it (read from a clone of the
    release, JUSTRL_RELEASE_REPO), not a copy kept here."""
    repo = os.environ.get("JUSTRL_RELEASE_REPO", "/work/.mirror/thunlp+JustRL/repo")
    try:
        source = subprocess.run(["git", "-C", repo, "show", "HEAD:evals/grade.py"],
                                capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"no clone of the JustRL release at {repo} (set JUSTRL_RELEASE_REPO)")
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "CV_PROMPT" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("the release's evals/grade.py has no CV_PROMPT")


def test_the_prompt_is_the_releases_character_for_character():
    release = _release_cv_prompt()
    assert release == J.CV_PROMPT
    # ... and fills the same way: grade.py formats it with an empty question (its records have none).
    filled = release.format(question="", gold_answer="\\frac{1}{2}", llm_response="so \\boxed{0.5}")
    assert J.judge_prompt("", "\\frac{1}{2}", "so \\boxed{0.5}") == filled
    assert "\\boxed{}" in filled and "{question}" not in filled


@dataclass
class Recorder:
    """A generation backend that records each call and replies per prompt via ``answer``."""

    answer: Any = lambda prompt: "A"
    calls: list[tuple[list[str], Any]] = field(default_factory=list)
    closed: bool = False

    def generate(self, prompts, params, seeds=None):
        self.calls.append((list(prompts), params))
        return [Completion(self.answer(p), [1], [], "stop") for p in prompts]

    def close(self) -> None:
        self.closed = True


def test_prompts_go_through_the_judges_chat_template_as_the_release_does():
    from justrl.data import toy

    tokenizer = toy.build_tokenizer()
    recorder = Recorder()
    judge = J.CompassVerifierJudge(recorder, J.chat_template_of(tokenizer), include_question=False)
    judge.judge(["What is 1+1?"], ["it is \\boxed{2}"], ["2"])
    [(sent, params)] = recorder.calls
    expected = tokenizer.apply_chat_template(  # evals/grade.py, verbatim call
        [{"role": "user", "content": _release_cv_prompt().format(question="", gold_answer="2",
                                                               llm_response="it is \\boxed{2}")}],
        add_generation_prompt=True, tokenize=False)
    assert sent == [expected] and expected.startswith(toy.USER) and expected.endswith(toy.ASSISTANT)
    assert (params.temperature, params.top_p, params.max_new_tokens) == (0.0, 1.0, 2048)  # greedy, 2,048
    judge.include_question = True
    judge.judge(["What is 1+1?"], ["x"], ["2"])
    assert "What is 1+1?" in recorder.calls[-1][0][0]


@pytest.mark.parametrize(("reply", "release", "lenient"), [
    ("A", True, True), ("  A\n", True, True), ("B", False, False), ("C", False, False),
    ("A: CORRECT", False, True), ("\\boxed{A}", False, True), ("CORRECT", False, True),
    ("a", False, False), ("", False, False), ("INCORRECT", False, False), ("AB", False, False),
])
def test_the_a_rule(reply, release, lenient):
    """The release counts an answer correct only when the judge's reply, stripped, is "A"."""
    judge = J.CompassVerifierJudge(Recorder(lambda p: reply))
    assert judge.judge(["q"], ["r"], ["g"]) == [release]
    judge.release_exact = False
    assert judge.judge(["q"], ["r"], ["g"]) == [lenient]


def test_batches_go_longest_first_within_the_token_budget():
    lengths = [100, 900, 300, 900, 50, 700]
    batches, too_long = J.plan_batches(lengths, budget=4000, max_new_tokens=1000)
    assert too_long == []
    order = [i for b in batches for i in b.indices]
    assert order == [1, 3, 5, 2, 0, 4]  # longest first, ties in input order
    for b in batches:
        assert len(b.indices) * (lengths[b.indices[0]] + b.max_new_tokens) <= 4000 or len(b.indices) == 1
    assert [b.indices for b in batches] == [[1, 3], [5, 2], [0, 4]]


def test_a_batch_never_asks_for_more_than_the_context_leaves():
    """Each prompt may take min(2048, context - its length) new tokens, as vLLM stops at the
    context; a prompt that leaves no room is not sent at all."""
    lengths = [3000, 4100, 1000, 3000, 4096]
    batches, too_long = J.plan_batches(lengths, budget=10**6, max_new_tokens=2048, context=4096)
    assert sorted(too_long) == [1, 4]
    assert [(b.indices, b.max_new_tokens) for b in batches] == [([0, 3], 1096), ([2], 2048)]
    # a single prompt bigger than the budget still goes, alone
    batches, _ = J.plan_batches([5000, 10], budget=100, max_new_tokens=5)
    assert [b.indices for b in batches] == [[0], [1]]


def test_the_judge_sends_token_budgeted_batches_and_maps_replies_back():
    """Case 1 of issue 14: the judge used to send every rejected answer in one generate call."""
    recorder = Recorder(lambda p: "A" if "keep" in p else "B")
    judge = J.CompassVerifierJudge(recorder, count_tokens=len, batch_tokens=8_000, max_new_tokens=10)
    responses = ["keep " + "x" * 3000, "drop", "keep" + "y" * 500, "drop " + "z" * 3000, "keep"]
    grades = judge.judge(["q"] * 5, responses, ["g"] * 5)
    assert grades == [True, False, True, False, True]
    sizes = [[len(p) for p in prompts] for prompts, _ in recorder.calls]
    assert len(recorder.calls) > 1
    flat = [n for batch in sizes for n in batch]
    assert flat == sorted(flat, reverse=True)
    assert all(len(b) * (b[0] + 10) <= 8_000 for b in sizes)
    assert judge.calls == 5


def test_the_engine_is_built_on_first_use_sized_to_the_longest_prompt_and_closed():
    built: list[int] = []
    recorder = Recorder()

    def build(max_model_len: int) -> Recorder:
        built.append(max_model_len)
        return recorder

    judge = J.CompassVerifierJudge(None, count_tokens=len, context=10_000, build=build)
    assert judge.judge([], [], []) == [] and built == []  # nothing to judge: no engine
    long = "r" * 9_000  # its prompt (~10,000 characters with the template) does not fit
    assert judge.judge(["q", "q"], ["short", long], ["g", "g"]) == [True, False]
    assert judge.too_long == 1
    prompt = len(J.judge_prompt("", "g", "short"))
    assert built == [prompt + 2048]
    judge.close()
    assert recorder.closed and judge.generator is None
