"""Problem loaders: both benchmark schemas, JSONL, and errors that name file, row and field."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from justrl.data import problems

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


# --- files without answers, MATH-style solutions, missing/empty/corrupt files ---------------------

MATH_ROWS = [
    {"problem": "What is $1+1$?", "solution": "We add: $1+1=\\boxed{2}$.", "level": "Level 1"},
    {"problem": "Simplify $\\frac{2}{4}$.", "solution": "First $\\boxed{x}$ is a guess; then $\\boxed{\\frac{1}{2}}$."},
]


def _write_jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_a_file_without_an_answer_column_is_refused_naming_file_and_columns(tmp_path) -> None:
    path = tmp_path / "math.jsonl"
    _write_jsonl(path, MATH_ROWS)
    with pytest.raises(problems.ProblemDataError) as info:
        problems.load(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: no answer column") and "columns found: problem, solution, level" in msg
    assert "answer_from=solution" in msg and "\n" not in msg
    pq.write_table(pa.table({"question": ["q"], "notes": ["n"]}), tmp_path / "q.parquet")
    with pytest.raises(problems.ProblemDataError, match=r"q\.parquet: no answer column .*columns found: question, notes$"):
        problems.load(tmp_path / "q.parquet")
    pq.write_table(pa.table({"text": ["q"], "answer": ["1"]}), tmp_path / "t.parquet")
    with pytest.raises(problems.ProblemDataError, match=r"t\.parquet: no problem column .*columns found: text, answer"):
        problems.load(tmp_path / "t.parquet")


def test_solution_columns_give_the_boxed_answer_only_when_asked(tmp_path) -> None:
    path = tmp_path / "math.jsonl"
    _write_jsonl(path, MATH_ROWS)
    loaded = problems.load(path, answer_from="solution")
    assert [p.ground_truth for p in loaded] == ["2", "\\frac{1}{2}"]  # the last box, braces balanced
    assert loaded[0].meta == {"level": "Level 1"}
    _write_jsonl(path, [*MATH_ROWS, {"problem": "p", "solution": "no box here"}])
    with pytest.raises(problems.ProblemDataError, match=r"math\.jsonl: row 2: field 'solution' has no \\boxed\{\} answer"):
        problems.load(path, answer_from="solution")
    _write_jsonl(path, [{"problem": "p", "answer": "3"}])
    with pytest.raises(problems.ProblemDataError, match="answer_from=solution but there is no 'solution' column; columns found: problem, answer"):
        problems.load(path, answer_from="solution")
    with pytest.raises(problems.ProblemDataError, match="answer_from must be one of answer, solution"):
        problems.load(path, answer_from="steps")


def test_last_boxed() -> None:
    assert problems.last_boxed("a \\boxed{1} b \\boxed{x^{2}} c") == "x^{2}"
    assert problems.last_boxed("\\boxed{3} then \\boxed{unclosed") == "3"
    assert problems.last_boxed("nothing") is None


@pytest.mark.parametrize("name", ["gone.parquet", "gone.jsonl", "sub/gone.parquet"])
def test_a_missing_data_file_is_not_taken_for_a_hub_name(tmp_path, monkeypatch, name) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(problems.ProblemDataError, match=f"^{name}: no such file or folder"):
        problems.load(name)


def test_empty_and_corrupt_files_are_one_line_naming_the_file(tmp_path) -> None:
    cases = {
        "empty.parquet": (b"", "empty file"),
        "empty.jsonl": (b"", "empty file"),
        "blank.jsonl": (b"\n\n", "holds no problems"),
        "corrupt.parquet": (b"PAR1 this is not parquet at all", "not a readable parquet file"),
        "latin1.jsonl": ('{"problem": "caf\u00e9", "answer": "1"}\n'.encode("latin-1"), "not UTF-8 text"),
        "list.json": (b'[{"problem": "p", "answer": "1"}, 3]', "item 1: expected a JSON object"),
        "cut.json": (b'[{"problem": "p", "answer": "1"}', "invalid JSON"),
    }
    for name, (data, expected) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(problems.ProblemDataError) as info:
            problems.load(path)
        msg = str(info.value)
        assert msg.startswith(str(path)) and expected in msg and "\n" not in msg, (name, msg)
    pq.write_table(pa.table({"problem": pa.array([], pa.string()), "answer": pa.array([], pa.string())}),
                   tmp_path / "zero.parquet")
    with pytest.raises(problems.ProblemDataError, match="zero.parquet: holds no problems"):
        problems.load(tmp_path / "zero.parquet")
