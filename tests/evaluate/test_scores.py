"""Bootstrap confidence intervals over problems, per benchmark and for the average."""

from __future__ import annotations

from pathlib import Path

import pytest

from justrl import evaluate as E


def test_ci_of_all_correct_and_all_wrong_problems_is_a_point():
    assert E.bootstrap_ci([1.0] * 30) == (1.0, 1.0)
    assert E.bootstrap_ci([0.0] * 30) == (0.0, 0.0)
    assert E.bootstrap_average_ci([[1.0] * 30, [0.0] * 40]) == (0.5, 0.5)


def test_ci_of_half_solved_problems_matches_the_normal_approximation_and_shrinks():
    small = E.bootstrap_ci([1.0, 0.0] * 15)
    large = E.bootstrap_ci([1.0, 0.0] * 150)
    for (lo, hi), problems in ((small, 30), (large, 300)):
        half_width = 1.96 * (0.25 / problems) ** 0.5
        assert lo < 0.5 < hi
        assert (hi - lo) / 2 == pytest.approx(half_width, rel=0.15)
    assert (large[1] - large[0]) < (small[1] - small[0]) / 2.5  # ~ 1/sqrt(10)


def test_samples_of_a_problem_stay_together():
    # 30 problems, 4 samples each, every problem solved 2 times out of 4: the mean is 0.5 and no
    # resample of problems changes it (resampling single samples would give a wide interval).
    records = [{"example_id": p, "seed": s} for p in range(30) for s in range(4)]
    correct = [s % 2 == 0 for p in range(30) for s in range(4)]
    per_problem = E.per_problem_scores(records, correct)
    assert list(per_problem.values()) == [0.5] * 30
    assert E.bootstrap_ci(list(per_problem.values())) == (0.5, 0.5)
    # the same 60 correct samples concentrated on 15 problems: wide
    correct = [p < 15 for p in range(30) for s in range(4)]
    lo, hi = E.bootstrap_ci(list(E.per_problem_scores(records, correct).values()))
    assert hi - lo > 0.3


def test_average_ci_combines_independent_benchmark_resamples():
    parts = [[1.0, 0.0] * 15, [1.0, 0.0, 0.0] * 10, [0.75, 0.25] * 20]
    lo, hi = E.bootstrap_average_ci(parts)
    average = sum(sum(p) / len(p) for p in parts) / 3
    assert lo < average < hi
    widths = [E.bootstrap_ci(p)[1] - E.bootstrap_ci(p)[0] for p in parts]
    # the mean of three independent estimates: its spread is sqrt(sum of variances) / 3
    assert hi - lo == pytest.approx(sum(w * w for w in widths) ** 0.5 / 3, rel=0.15)
    assert hi - lo < max(widths)


def test_a_benchmark_without_graded_samples_is_refused():
    with pytest.raises(E.EvalError, match="no graded samples"):
        E.score_benchmark("AIME24", 4, Path("a.jsonl"), {}, samples=0, resamples=10, seed=0)


def test_family_selects_the_published_rows():
    score = E.score_benchmark("AIME24", 4, Path("a.jsonl"), {0: 1.0, 1: 0.0}, samples=8, resamples=10, seed=0)
    rows = {family: E.summarize("m", [score], family=family, settings={}, resamples=10).published
            for family in ("all", "none", "nemotron-1.5b")}
    assert rows["none"] == []
    assert {r.family for r in rows["nemotron-1.5b"]} == {"nemotron-1.5b"}
    assert len(rows["all"]) > len(rows["nemotron-1.5b"]) > 0
