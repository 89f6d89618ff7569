"""Tests for justrl.evaluate.compare and justrl.evaluate.compare_report: paired comparison of evaluation folders.

The folders are written in the release's format and graded by the real ``grading.grade_dir``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from justrl.cli import main as cli_main
from justrl.errors import ConfigError, EvalError
from justrl.evaluate import compare, compare_report, grading


def write_eval(
    folder: Path,
    correct: dict[str, np.ndarray],
    *,
    temperature: float = 0.7,
    max_tokens: int = 1024,
    ids: list[int] | None = None,
    prompt: str = "Problem {pid}: what is 3 + 4?",
    verifier: str = "justrl-eval",
) -> Path:
    """One JSONL file per task from a (problems, N) table of right/wrong samples, then graded."""
    folder.mkdir(parents=True, exist_ok=True)
    for task, table in correct.items():
        n = table.shape[1]
        lines = []
        for row, outcomes in enumerate(table):
            pid = ids[row] if ids else row
            for seed, ok in enumerate(outcomes):
                lines.append(json.dumps({"example_id": pid, "prompt": prompt.format(pid=pid), "answer": "7",
                                         "seed": seed, "response": "so \\boxed{7}" if ok else "so \\boxed{8}"}))
        path = folder / f"{task}_t{temperature}_p0.9_n{n}-MNT{max_tokens}.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    grading.grade_dir(folder, verifier=verifier, workers=1)
    return folder


def outcomes(rates: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.random((rates.size, n)) < rates[:, None]


@pytest.fixture
def base_tables() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {"math-500": outcomes(rng.uniform(0.1, 0.7, 60), 4, rng),
            "aime24": outcomes(rng.uniform(0.0, 0.5, 30), 8, rng)}


def _row(result: compare.Comparison, benchmark: str, other: str | None = None) -> compare.Difference:
    return next(r for r in result.rows if r.benchmark == benchmark and (other is None or r.other == other))


# --------------------------------------------------------------------------------------------
# Folders in, differences out
# --------------------------------------------------------------------------------------------


def test_identical_folders_differ_by_zero_with_p_one(tmp_path: Path, base_tables) -> None:
    a = write_eval(tmp_path / "a", base_tables)
    b = write_eval(tmp_path / "b", base_tables)
    result = compare.compare([a, b], resamples=2_000)
    assert result.benchmarks == ["AIME24", "MATH-500"]  # the paper's table order
    for name in ("AIME24", "MATH-500", compare.AVERAGE):
        row = _row(result, name)
        assert row.difference == 0.0
        assert row.ci_low <= 0.0 <= row.ci_high
        assert row.p_value == 1.0 and not row.significant
    assert _row(result, "MATH-500").baseline_score == pytest.approx(100 * base_tables["math-500"].mean())


def test_a_planted_improvement_is_found(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    rates = rng.uniform(0.1, 0.7, 200)
    a_table = outcomes(rates, 4, rng)
    b_table = outcomes(rates + 0.15, 4, rng)
    a = write_eval(tmp_path / "a", {"math-500": a_table})
    b = write_eval(tmp_path / "b", {"math-500": b_table})
    row = _row(compare.compare([a, b], resamples=4_000), "MATH-500")
    assert row.difference == pytest.approx(100 * (b_table.mean() - a_table.mean()))
    assert 10 < row.difference < 20 and row.ci_low > 0 and row.p_value < 0.001 and row.significant
    assert row.ci_low < 15 < row.ci_high


def test_different_n_is_paired_by_problem(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    rates = rng.uniform(0.2, 0.6, 40)
    a = write_eval(tmp_path / "a", {"math-500": outcomes(rates, 4, rng)})
    b_table = outcomes(rates, 16, rng)
    b = write_eval(tmp_path / "b", {"math-500": b_table})
    row = _row(compare.compare([a, b], resamples=1_000), "MATH-500")
    assert row.samples == ("4", "16")
    assert row.other_score == pytest.approx(100 * b_table.mean())


def test_only_shared_problems_and_benchmarks_are_compared(tmp_path: Path, base_tables) -> None:
    a = write_eval(tmp_path / "a", base_tables)
    b = write_eval(tmp_path / "b", {"math-500": base_tables["math-500"][:25]})
    result = compare.compare([a, b], resamples=500)
    assert result.benchmarks == ["MATH-500"]
    assert result.left_out == {"AIME24": ["a"]}
    assert result.problems_left_out == {"MATH-500": {"a": 35, "b": 0}}
    assert _row(result, "MATH-500").problems == 25
    with pytest.raises(EvalError, match="AIME24 is not in b"):
        compare.compare([a, b], benchmarks="aime24")
    only = compare.compare([a, a], benchmarks="math500", resamples=100)
    assert only.benchmarks == ["MATH-500"] and only.left_out == {}


def test_several_folders_each_against_the_first_with_holm(tmp_path: Path, base_tables) -> None:
    rng = np.random.default_rng(4)
    a = write_eval(tmp_path / "a", base_tables)
    b = write_eval(tmp_path / "b", base_tables)
    better = {"math-500": outcomes(np.full(60, 0.9), 4, rng), "aime24": base_tables["aime24"]}
    c = write_eval(tmp_path / "c", better)
    result = compare.compare([a, b, c], resamples=2_000)
    assert [r.other for r in result.rows if r.benchmark == "MATH-500"] == ["b", "c"]
    assert _row(result, "MATH-500", "c").significant and not _row(result, "MATH-500", "b").significant
    for row in result.rows:
        assert row.p_adjusted >= row.p_value
    text = compare_report.render_markdown(result)
    assert "## b − a" in text and "## c − a" in text and "p (Holm)" in text
    assert "adjusted over the 2 folders" in text


def test_holm_and_bonferroni() -> None:
    assert compare.adjust([0.01, 0.04, 0.03], "holm") == pytest.approx([0.03, 0.06, 0.06])
    assert compare.adjust([0.01, 0.04, 0.03], "bonferroni") == pytest.approx([0.03, 0.12, 0.09])
    assert compare.adjust([0.5, 0.9], "holm") == pytest.approx([1.0, 1.0])
    assert compare.adjust([0.2], "none") == [0.2]
    with pytest.raises(ConfigError, match="unknown correction"):
        compare.adjust([0.1], "sidak")


# --------------------------------------------------------------------------------------------
# The statistics, on per-problem differences
# --------------------------------------------------------------------------------------------


def _per_problem_differences(rng: np.random.Generator, problems: int, n: int, planted: float) -> np.ndarray:
    """Per-problem differences of avg@N between two policies whose success rate on every problem
    differs by ``planted``; problems drawn from a population of difficulties."""
    rates = rng.uniform(0.1, 0.8, problems)
    a = rng.binomial(n, rates) / n
    b = rng.binomial(n, rates + planted) / n
    return b - a


def test_intervals_cover_the_planted_difference_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(12345)
    covered = np.zeros(3)
    repetitions = 200
    for rep in range(repetitions):
        diffs = [_per_problem_differences(rng, 40, 32, 0.1), _per_problem_differences(rng, 60, 4, 0.2)]
        stats = compare.paired_statistics(diffs, resamples=1_000, seed=rep, level=0.95)
        intervals = [*stats.intervals, stats.average_interval]
        covered += [lo <= truth <= hi for (lo, hi), truth in zip(intervals, (0.1, 0.2, 0.15))]
    coverage = covered / repetitions
    assert np.all((coverage >= 0.90) & (coverage <= 0.99)), coverage


def test_sign_flip_test_rejects_about_5_percent_without_a_difference() -> None:
    rng = np.random.default_rng(54321)
    rejected = 0
    repetitions = 200
    for rep in range(repetitions):
        diffs = [_per_problem_differences(rng, 40, 8, 0.0)]
        rejected += compare.paired_statistics(diffs, resamples=1_000, seed=rep, level=0.95).p_values[0] < 0.05
    assert 0.01 <= rejected / repetitions <= 0.10


def test_sign_flip_p_value_matches_the_exact_one() -> None:
    # Five equal positive differences: exactly 2 of the 32 sign patterns are as extreme.
    p, _ = compare.sign_flip_p_values([np.full(5, 0.25)], 40_000, seed=0)
    assert p[0] == pytest.approx(2 / 32, abs=0.005)


def test_paired_bootstrap_is_seeded_and_resamples_problems() -> None:
    d = np.array([0.0, 0.25, 0.5, -0.25])
    first, average = compare.paired_bootstrap([d, d], 500, seed=7)
    again, _ = compare.paired_bootstrap([d, d], 500, seed=7)
    assert np.array_equal(first, again) and first.shape == (2, 500)
    assert np.allclose(average, first.mean(axis=0))
    assert first.min() >= d.min() and first.max() <= d.max() and first.std() > 0


# --------------------------------------------------------------------------------------------
# Refusals
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"temperature": 0.6}, r"temperature of MATH-500 differs \(0\.7 in a, 0\.6 in b\)"),
        ({"max_tokens": 2048}, r"max_tokens of MATH-500 differs \(1024 in a, 2048 in b\)"),
        ({"verifier": "release-rule"}, r"grader verifier differs \('justrl-eval' in a, 'release-rule' in b\)"),
        ({"prompt": "Solve {pid}."}, r"prompt of MATH-500 problem 0 differs"),
    ],
)
def test_incomparable_folders_are_refused(tmp_path: Path, change: dict, message: str) -> None:
    table = {"math-500": np.ones((5, 2), dtype=bool)}
    a = write_eval(tmp_path / "a", table)
    b = write_eval(tmp_path / "b", table, **change)
    with pytest.raises(EvalError, match="cannot compare a with b: " + message):
        compare.compare([a, b], resamples=100)


def test_a_different_prompt_template_in_eval_config_is_refused(tmp_path: Path) -> None:
    table = {"math-500": np.ones((3, 2), dtype=bool)}
    a = write_eval(tmp_path / "a", table)
    b = write_eval(tmp_path / "b", table)
    for folder, template in ((a, "{problem} Please reason."), (b, "{problem} Think.")):
        (folder / compare.CONFIG_FILE).write_text(json.dumps({"settings": {"prompt": template}}))
    with pytest.raises(EvalError, match=r"prompt differs \('\{problem\} Please reason.' in a"):
        compare.compare([a, b])


def test_unpaired_folders_are_refused(tmp_path: Path) -> None:
    table = {"math-500": np.ones((4, 2), dtype=bool)}
    a = write_eval(tmp_path / "a", table)
    b = write_eval(tmp_path / "b", table, ids=[10, 11, 12, 13])
    with pytest.raises(EvalError, match=r"share no MATH-500 problem \(problems held: a: 4; b: 4\)"):
        compare.compare([a, b])
    c = write_eval(tmp_path / "c", {"aime24": np.ones((4, 2), dtype=bool)})
    with pytest.raises(EvalError, match=r"share no benchmark \(a: MATH-500; c: AIME24\)"):
        compare.compare([a, c])


def test_folders_that_cannot_be_read_are_refused(tmp_path: Path) -> None:
    a = write_eval(tmp_path / "a", {"math-500": np.ones((3, 2), dtype=bool)})
    ungraded = tmp_path / "ungraded"
    ungraded.mkdir()
    with pytest.raises(EvalError, match="no grading_results.json; grade it first: justrl grade"):
        compare.compare([a, ungraded])
    release = tmp_path / "release"
    release.mkdir()
    (release / grading.RESULTS_FILE).write_text(json.dumps({"files": {"math-500_t0.7_p0.9_n2-MNT1024.jsonl": {
        "mean_score": 0.5}}}))  # the release's grade.py keeps no per-problem scores
    with pytest.raises(EvalError, match="no per-problem scores"):
        compare.compare([a, release])
    with pytest.raises(ConfigError, match="at least two"):
        compare.compare([a])


# --------------------------------------------------------------------------------------------
# Command line and reports
# --------------------------------------------------------------------------------------------


def test_cli_compare_prints_the_table_and_writes_report_and_figure(tmp_path: Path, base_tables, capsys) -> None:
    a = write_eval(tmp_path / "a", base_tables)
    b = write_eval(tmp_path / "b", base_tables)
    out = tmp_path / "report" / "a-vs-b.md"
    assert cli_main(["compare", str(a), str(b), "-o", str(out), "--resamples", "500"]) == 0
    printed = capsys.readouterr().out
    assert "b − a" in printed and "MATH-500" in printed and "average" in printed and "sign-flip" in printed
    assert f"wrote {out}" in printed
    text = out.read_text()
    assert "| MATH-500 | 60 | 4 |" in text and "![differences](a-vs-b.png)" in text
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_compare_json(tmp_path: Path, base_tables, capsys) -> None:
    a = write_eval(tmp_path / "a", base_tables)
    assert cli_main(["compare", str(a), str(a), "--json", "--benchmarks", "AIME24", "--resamples", "200"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["benchmarks"] == ["AIME24"] and data["correction"] == "holm"
    assert [r["benchmark"] for r in data["rows"]] == ["AIME24", "average"]
    assert data["rows"][0]["difference"] == 0.0 and data["rows"][0]["p_value"] == 1.0


def test_cli_compare_refusal_is_one_line(tmp_path: Path, capsys) -> None:
    a = write_eval(tmp_path / "a", {"math-500": np.ones((3, 2), dtype=bool)})
    b = write_eval(tmp_path / "b", {"math-500": np.ones((3, 2), dtype=bool)}, temperature=1.0)
    assert cli_main(["compare", str(a), str(b)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["justrl compare: cannot compare a with b: temperature of MATH-500 differs (0.7 in a, 1.0 in b)"]
