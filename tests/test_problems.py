"""Problem loaders: both benchmark schemas, JSONL, and errors that name file, row and field."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from justrl import problems

EXPECTED_ROWS = {
    "AIME24": 30, "AIME25": 30, "AMC23": 40, "MATH-500": 500, "Minerva": 272, "Olympiad-Bench": 674,
    "HMMT25": 30, "BRUMO25": 30, "CMIMC25": 40,
}


@pytest.mark.parametrize("name", sorted(EXPECTED_ROWS))
def test_all_nine_benchmarks_load(shared_benchmarks, name: str) -> None:
    loaded = problems.load(shared_benchmarks / name / "test.parquet", dedupe=False)
    assert len(loaded) == EXPECTED_ROWS[name]
    assert len({p.id for p in loaded}) == len(loaded)
    assert all(p.prompt.strip() and p.ground_truth.strip() for p in loaded)
    assert all(p.source == name for p in loaded)


def test_verl_schema_details(shared_benchmarks) -> None:
    aime = problems.load(shared_benchmarks / "AIME24")
    assert aime[0].ground_truth == "\\boxed{204}"
    assert aime[0].prompt.startswith("Every morning Aya")
    hmmt = problems.load(shared_benchmarks / "HMMT25")
    assert hmmt[0].ground_truth == "103" and hmmt[0].meta["problem_type"] == ["Number Theory"]


def test_jsonl_and_dedupe(tmp_path) -> None:
    path = tmp_path / "p.jsonl"
    rows = [{"question": "1+1?", "answer": 2}, {"question": "1+1?", "answer": 2}, {"problem": "2+2?", "answer": "4"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert [p.ground_truth for p in problems.load(path)] == ["2", "4"]
    assert len(problems.load(path, dedupe=False)) == 3


def test_dapo_wrapper_is_stripped(tmp_path) -> None:
    text = problems._DAPO_HEAD + "What is 3+4?" + problems._DAPO_TAIL
    table = pa.table({
        "prompt": [[{"role": "user", "content": text}]], "data_source": ["math_dapo"],
        "reward_model": [{"ground_truth": "7", "style": "rule"}], "extra_info": [{"index": "a1"}],
    })
    pq.write_table(table, tmp_path / "dapo.parquet")
    (p,) = problems.load(tmp_path / "dapo.parquet")
    assert p.prompt == "What is 3+4?"
    assert problems.build_prompt(p, "\n\nSUFFIX") == "What is 3+4?\n\nSUFFIX"


def test_bad_rows_name_file_row_and_field(tmp_path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"problem": "x", "answer": "1"}) + "\n" + json.dumps({"problem": "y"}) + "\n")
    with pytest.raises(problems.ProblemDataError, match=r"bad\.jsonl: row 1: no answer"):
        problems.load(path)
    path.write_text('{"problem": "x", "answer": "1"}\n{oops\n')
    with pytest.raises(problems.ProblemDataError, match=r"bad\.jsonl: line 2: invalid JSON"):
        problems.load(path)
    table = pa.table({"prompt": [[{"role": "user", "content": "q"}]], "reward_model": [{"ground_truth": "", "style": "rule"}]})
    pq.write_table(table, tmp_path / "bad.parquet")
    with pytest.raises(problems.ProblemDataError, match=r"bad\.parquet: row 0: field 'reward_model.ground_truth'"):
        problems.load(tmp_path / "bad.parquet")


def test_missing_source_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(problems.ProblemDataError, match="no such file"):
        problems.load(tmp_path / "nope.parquet")
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(problems.ProblemDataError, match="unsupported file type"):
        problems.load(tmp_path / "x.csv")
