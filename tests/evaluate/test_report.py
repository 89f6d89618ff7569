"""The report, chart and score table: our scores with intervals next to the published rows."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from justrl import evaluate as E


def _score(name: str, per_problem: list[float]) -> E.BenchmarkScore:
    return E.score_benchmark(name, 4, Path(f"{name}.jsonl"), dict(enumerate(per_problem)),
                             samples=4 * len(per_problem), resamples=2000, seed=0)


def _summary() -> E.Summary:
    aime = _score("AIME24", [1.0, 0.0] * 15)  # 50% +- ~18
    math = _score("MATH-500", [1.0] * 9 + [0.0])  # 90%
    return E.summarize("hbx/JustRL-DeepSeek-1.5B", [aime, math], family="deepseek-1.5b",
                       settings=E.EvalConfig(model="m").to_dict(), resamples=2000)


def test_report_says_which_published_rows_lie_outside_the_interval(tmp_path):
    summary = _summary()
    assert [r.model for r in summary.published][-1] == "JustRL-DeepSeek-1.5B"
    justrl = summary.comparisons(summary.published[-1])
    assert justrl["AIME24"].published == 52.60 and justrl["AIME24"].outside_ci is False
    assert justrl["AIME24"].difference == pytest.approx(50.0 - 52.60)
    distill = summary.comparisons(summary.published[0])
    assert distill["AIME24"].published == 29.90 and distill["AIME24"].outside_ci is True
    assert distill["average"].published == pytest.approx((29.90 + 84.90) / 2)
    brorl = summary.comparisons(next(r for r in summary.published if r.model == "BroRL"))
    assert brorl["AIME24"].published == 57.50 and brorl["average"].published == pytest.approx((57.50 + 92.14) / 2)
    text = E.render_report(summary)
    assert "| AIME24 | 4 | 30 | 50.00 | [" in text
    assert "29.90 (+20.1) †" in text and "52.60 (-2.6) |" in text
    assert "**average**" in text and "temperature 0.7, top-p 0.9, max new tokens 31744" in text
    png = E.plot_scores(summary, tmp_path / "c.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_write_report_writes_summary_report_and_chart(tmp_path):
    summary = _summary()
    report, chart = E.write_report(summary, tmp_path)
    assert report == tmp_path / E.REPORT_FILE and report.read_text() == E.render_report(summary)
    assert chart == tmp_path / E.CHART_FILE and chart.read_bytes()[:4] == b"\x89PNG"
    written = json.loads((tmp_path / E.SUMMARY_FILE).read_text())
    assert [b["name"] for b in written["benchmarks"]] == ["AIME24", "MATH-500"]
    assert written["average"] == pytest.approx(70.0) and "per_problem" not in written["benchmarks"][0]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([E.REPORT_FILE, E.CHART_FILE, E.SUMMARY_FILE])


def test_score_table_shows_ours_with_ci_and_the_published_rows():
    from rich.console import Console

    console = Console(file=io.StringIO(), width=400)
    E.print_table(_summary(), console)
    text = console.file.getvalue()
    assert "avg@N (%) with 95% bootstrap CI" in text and "JustRL-DeepSeek-1.5B" in text
    assert "50.00" in text and "29.90 (+20.1) †" in text and "average" in text


def test_a_zero_width_interval_marks_no_published_row():
    one = _score("AIME24", [0.0])  # one problem: CI [0.0, 0.0]
    alike = _score("MATH-500", [1.0] * 5)  # every problem scored alike: CI [100.0, 100.0]
    summary = E.summarize("hbx/JustRL-DeepSeek-1.5B", [one, alike], family="deepseek-1.5b",
                          settings=E.EvalConfig(model="m").to_dict(), resamples=200)
    assert (one.ci_low, one.ci_high) == (0.0, 0.0) and (alike.ci_low, alike.ci_high) == (100.0, 100.0)
    for row in summary.published:
        comps = summary.comparisons(row)
        assert comps["AIME24"].outside_ci is None and comps["MATH-500"].outside_ci is None, row.model
        assert comps["AIME24"].difference == pytest.approx(0.0 - row.scores["AIME24"])
    table = [line for line in E.render_report(summary).splitlines() if line.startswith(("| AIME24", "| MATH-500"))]
    assert len(table) == 2 and not any("†" in line for line in table)


def test_the_grading_section_shows_undecided_answers_apart():
    from justrl.evaluate.report import _grading_section

    metrics = {"responses": 8, "stages": {"release-rule": {"correct": 5, "incorrect": 0},
               "lenient": {"correct": 0, "incorrect": 1}}, "format_error_rollouts": 0, "undecided": 2,
               "mean_score_range": [0.625, 0.875], "judge_calls": 0, "judge_calls_saved": 0,
               "avg_output_length": 10, "avg_output_length_unit": "characters", "best_score": 1.0}  # fmt: skip
    grading = {"grader": {"verifier": "justrl-eval", "judge": None}, "files": {"AIME24": metrics}}
    lines = _grading_section(grading)
    assert "| undecided |" in lines[5] and lines[7].startswith("| AIME24 | 8 | 5 | 0 | 1 | 0 | 2 |")
    assert lines[-1].endswith("AIME24 62.5-87.5.") and "never counted wrong" in lines[-1]
    decided = _grading_section({**grading, "files": {"AIME24": {**metrics, "undecided": 0}}})
    assert "never counted wrong" not in decided[-1]
