"""`justrl data export --format verl`: problems in verl's RL schema (the release's user message), read back by verl."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from justrl.cli import main
from justrl.data import problems as problems_mod
from justrl.data.problems import unwrap_boxed
from justrl.recipe import PROMPT_SUFFIX
from justrl.verl_engine import data_export

DAPO_HEAD = (
    "Solve the following math problem step by step. The last line of your response should be of the form "
    "Answer: $Answer (without quotes) where $Answer is the answer to the problem.\n\n"
)
DAPO_TAIL = '\n\nRemember to put your answer on its own line after "Answer:".'
QUESTIONS = [("What is 2+3?", "5"), ("Compute 6*7.", "42"), ("Find x if x-1=9.", "10")]


def write_dapo_like(path, copies: int = 3) -> None:
    """A miniature of the published DAPO-Math-17k parquet: wrapped prompts, each repeated."""
    rows = [
        {
            "data_source": "math_dapo",
            "prompt": [{"content": DAPO_HEAD + q + DAPO_TAIL, "role": "user"}],
            "ability": "MATH",
            "reward_model": {"ground_truth": a, "style": "rule-lighteval/MATH_v2"},
            "extra_info": {"index": f"uuid-{i}-{c}"},
        }
        for c in range(copies)
        for i, (q, a) in enumerate(QUESTIONS)
    ]
    pq.write_table(pa.Table.from_pylist(rows), path)


def tiny_chat_tokenizer():
    """A byte-level tokenizer with a chat template, built locally (no downloads)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    for special in ("<|user|>", "<|assistant|>", "<|end|>"):
        vocab[special] = len(vocab)
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|end|>", pad_token="<|end|>",
                                        additional_special_tokens=["<|user|>", "<|assistant|>"])
    tokenizer.chat_template = (
        "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    return tokenizer


def test_export_dedupes_strips_the_wrapper_and_adds_the_suffix(tmp_path) -> None:
    source = tmp_path / "dapo.parquet"
    write_dapo_like(source, copies=3)
    result = data_export.export(str(source), tmp_path / "out" / "train.parquet")
    assert (result.read, result.rows) == (9, 3)
    rows = pq.read_table(result.path).to_pylist()
    assert [r["reward_model"] for r in rows] == [{"ground_truth": a, "style": "rule"} for _, a in QUESTIONS]
    for row, (question, _) in zip(rows, QUESTIONS):
        assert row["prompt"] == [{"content": question + PROMPT_SUFFIX, "role": "user"}]
        assert row["data_source"] == "math_dapo"
        assert row["ability"] == "math"
        assert row["extra_info"]["split"] == "train"
    assert len({r["extra_info"]["index"] for r in rows}) == 3


def test_export_reads_back_through_verls_rl_dataset(tmp_path) -> None:
    from omegaconf import OmegaConf
    from verl.utils.dataset.rl_dataset import RLHFDataset

    source = tmp_path / "dapo.parquet"
    write_dapo_like(source, copies=2)
    out = data_export.export(str(source), tmp_path / "train.parquet").path
    tokenizer = tiny_chat_tokenizer()
    config = OmegaConf.create({
        "cache_dir": str(tmp_path / "verl_cache"), "prompt_key": "prompt", "max_prompt_length": 1024,
        "filter_overlong_prompts": True, "filter_overlong_prompts_workers": 1, "truncation": "error",
        "return_raw_chat": True,
    })
    dataset = RLHFDataset(data_files=[str(out)], tokenizer=tokenizer, config=config)
    assert len(dataset) == len(QUESTIONS)
    item = dataset[1]
    assert item["raw_prompt"] == [{"content": "Compute 6*7." + PROMPT_SUFFIX, "role": "user"}]
    assert item["reward_model"]["ground_truth"] == "42"
    assert item["data_source"] == "math_dapo"
    assert item["index"] == item["extra_info"]["index"]
    # verl's length filter runs the chat template over the prompt list: a tight budget drops rows
    lengths = [len(tokenizer.encode(tokenizer.apply_chat_template(dataset[i]["raw_prompt"], tokenize=False,
                                                                  add_generation_prompt=True)))
               for i in range(len(dataset))]
    longest = max(lengths)
    assert longest > len(PROMPT_SUFFIX)
    tight = OmegaConf.merge(config, {"max_prompt_length": longest - 1})
    assert 0 < len(RLHFDataset(data_files=[str(out)], tokenizer=tokenizer, config=tight)) < len(QUESTIONS)


def test_benchmark_by_name_and_plain_schema(shared_benchmarks, tmp_path) -> None:
    aime = data_export.export("AIME24", tmp_path / "aime.parquet", split="test", data_dir=shared_benchmarks)
    rows = pq.read_table(aime.path).to_pylist()
    assert aime.rows == 30 and rows[0]["data_source"] == "AIME24"
    assert rows[0]["reward_model"]["ground_truth"] == "204"  # released as \boxed{204}, unwrapped
    assert rows[0]["extra_info"] == {"index": "AIME24-0", "split": "test"}
    hmmt = data_export.export(str(shared_benchmarks / "HMMT25"), tmp_path / "hmmt.parquet")
    row = pq.read_table(hmmt.path).to_pylist()[0]
    assert hmmt.rows == 30 and row["prompt"][0]["content"].endswith(PROMPT_SUFFIX)


@pytest.mark.parametrize(("answer", "expected"), [
    ("\\boxed{204}", "204"), ("  \\boxed{\\frac{1}{2}} ", "\\frac{1}{2}"), ("204", "204"),
    ("\\boxed{1}, \\boxed{2}", "\\boxed{1}, \\boxed{2}"), ("\\boxed{x", "\\boxed{x"),
])
def test_unwrap_boxed(answer: str, expected: str) -> None:
    assert unwrap_boxed(answer) == expected


def test_cli_export_with_a_recipe_suffix(tmp_path, capsys) -> None:
    source = tmp_path / "dapo.parquet"
    write_dapo_like(source, copies=2)
    out = tmp_path / "x.parquet"
    code = main(["data", "export", "--format", "verl", "--out", str(out), str(source), "prompt_suffix= Go.",
                 "prompt_format=clean", "train_dedup=true"])
    assert code == 0
    assert "3 problems" in capsys.readouterr().out
    assert pq.read_table(out).to_pylist()[0]["prompt"][0]["content"] == "What is 2+3? Go."


DAPO_ROW = json.loads((Path(__file__).parents[1] / "fixtures" / "dapo_math_17k_row.json").read_text())


def test_a_dapo_row_becomes_exactly_the_releases_user_message(tmp_path) -> None:
    """The paper recipe's export of one real DAPO-Math-17k row, read back by verl 0.9.1's RLHFDataset,
    is the user message the release's dataset code built (see tests/fixtures/dapo_math_17k_row.json)."""
    from omegaconf import OmegaConf
    from verl.utils.dataset.rl_dataset import RLHFDataset

    source = tmp_path / "dapo.parquet"
    pq.write_table(pa.Table.from_pylist([DAPO_ROW["row"]] * 3), source)  # published: every prompt repeated
    out = tmp_path / "train.parquet"
    assert main(["data", "export", "--format", "verl", "--recipe", "justrl-deepseek-1.5b",
                 "--out", str(out), str(source)]) == 0
    rows = pq.read_table(out).to_pylist()
    assert len(rows) == 3  # the release read the file as published: no deduplication
    assert rows[0]["prompt"] == [{"content": DAPO_ROW["release_user_message"], "role": "user"}]
    assert rows[0]["data_source"] == "math_dapo"  # the reward router's key for the strict DAPO check
    assert rows[0]["reward_model"]["ground_truth"] == "34"
    config = OmegaConf.create({
        "cache_dir": str(tmp_path / "verl_cache"), "prompt_key": "prompt", "max_prompt_length": 1024,
        "filter_overlong_prompts": False, "truncation": "error", "return_raw_chat": True,
    })
    item = RLHFDataset(data_files=[str(out)], tokenizer=tiny_chat_tokenizer(), config=config)[0]
    assert item["raw_prompt"] == [{"content": DAPO_ROW["release_user_message"], "role": "user"}]
    clean = data_export.verl_row(problems_mod.problem_from_row(DAPO_ROW["row"], 0, "dapo"), PROMPT_SUFFIX)
    assert not clean["prompt"][0]["content"].startswith("Solve the following")  # `clean`: DAPO's words gone
    assert clean["prompt"][0]["content"].endswith("find $a + b + c$." + PROMPT_SUFFIX)


def test_release_validation_sets_export_with_their_exact_rows(tmp_path) -> None:
    from justrl.data import release_data

    out = data_export.export("release:AIME24", tmp_path / "aime.parquet", split="test", dedupe=False,
                             prompt_format="release")
    rows = pq.read_table(out.path).to_pylist()
    published = json.loads(release_data.val_file("release:AIME24").read_text())
    assert out.rows == len(published) == 30
    assert [r["reward_model"]["ground_truth"] for r in rows] == [p["answer"] for p in published]
    assert rows[1]["reward_model"]["ground_truth"] == "025"  # leading zeros kept, as the release's
    assert rows[0]["prompt"][0]["content"] == published[0]["prompt"] + PROMPT_SUFFIX
    assert {r["data_source"] for r in rows} == {"AIME24"}  # routed to Math-Verify by the release
    assert rows[5]["extra_info"]["index"] == "AIME24-5"
    for name in release_data.VAL_SETS:
        assert len(release_data.load_val(f"release:{name}")) == {"AIME24": 30, "AIME25": 30, "AMC23": 40}[name]
    with pytest.raises(problems_mod.ProblemDataError, match="release:AIME24"):
        release_data.val_file("release:MATH-500")


def test_cli_export_missing_source_is_a_clear_error(tmp_path, capsys) -> None:
    code = main(["data", "export", "--out", str(tmp_path / "x.parquet"), str(tmp_path / "nope.parquet")])
    assert code == 2
    assert "nope.parquet" in capsys.readouterr().err
    assert not (tmp_path / "x.parquet").exists()


def test_math_style_solutions_export_only_when_asked(tmp_path) -> None:
    """A worked solution is never a ground truth: refused, unless answer_from=solution takes its box."""
    source = tmp_path / "math.jsonl"
    source.write_text('{"problem": "What is 2+3?", "solution": "Add: $2+3=\\\\boxed{5}$."}\n')
    with pytest.raises(data_export.problems_mod.ProblemDataError, match="no answer column.*answer_from=solution"):
        data_export.export(str(source), tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()
    result = data_export.export(str(source), tmp_path / "out.parquet", answer_from="solution")
    (row,) = pq.read_table(result.path).to_pylist()
    assert row["reward_model"]["ground_truth"] == "5"
