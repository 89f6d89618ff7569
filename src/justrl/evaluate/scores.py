"""Scores with their uncertainty: avg@N per benchmark and the average over benchmarks, each with a
95% percentile-bootstrap confidence interval over problems, set against the published rows.

Thirty problems make a noisy benchmark, so a score without an interval cannot say whether it differs
from a published one. A problem's N samples are not independent, so the bootstrap resamples problems
(each with all its samples: resampling per-problem means); the average's interval resamples each
benchmark on its own and averages, as the paper weighs benchmarks equally.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from justrl.data import benchmarks as bench_mod
from justrl.data.benchmarks import PublishedRow
from justrl.errors import EvalError


def bootstrap_means(per_problem: Sequence[float], resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``resamples`` bootstrap resamples of the problems, shape ``(resamples,)``.

    ``per_problem`` holds each problem's mean score over its samples: resampling problems with
    their samples kept together is resampling these means.
    """
    scores = np.asarray(per_problem, dtype=np.float64)
    if scores.size == 0:
        raise ValueError("no problems to resample")
    out = np.empty(resamples)
    block = max(1, 2_000_000 // scores.size)  # bounded memory for large benchmarks
    for start in range(0, resamples, block):
        stop = min(resamples, start + block)
        idx = rng.integers(0, scores.size, size=(stop - start, scores.size))
        out[start:stop] = scores[idx].mean(axis=1)
    return out


def bootstrap_ci(
    per_problem: Sequence[float], *, resamples: int = 10_000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean score over problems."""
    means = bootstrap_means(per_problem, resamples, np.random.default_rng(seed))
    return _percentiles(means, level)


def bootstrap_average_ci(
    per_benchmark: Sequence[Sequence[float]], *, resamples: int = 10_000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """CI of the average over benchmarks: every replicate resamples each benchmark's problems
    independently and averages the benchmark means (the paper's average weighs benchmarks
    equally, not problems)."""
    rng = np.random.default_rng(seed)
    replicates = np.mean([bootstrap_means(p, resamples, rng) for p in per_benchmark], axis=0)
    return _percentiles(replicates, level)


def _percentiles(replicates: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(replicates, [tail, 1.0 - tail])
    return float(lo), float(hi)


@dataclass
class BenchmarkScore:
    name: str
    samples_per_problem: int
    problems: int
    samples: int
    score: float
    """avg@N in percent."""
    ci_low: float
    ci_high: float
    file: str
    per_problem: list[float] = field(repr=False, default_factory=list)
    """Each problem's mean correctness (0..1), in example_id order."""


@dataclass
class Comparison:
    model: str
    published: float | None
    difference: float | None  # ours - published, points
    outside_ci: bool | None


@dataclass
class Summary:
    model: str
    scores: list[BenchmarkScore]
    average: float | None
    average_ci: tuple[float, float] | None
    family: str | None
    published: list[PublishedRow]
    settings: dict[str, Any]
    grading: dict[str, Any] = field(default_factory=dict)

    def comparisons(self, row: PublishedRow) -> dict[str, Comparison]:
        """Per benchmark (and ``average``): our score minus the published one, and whether the
        published score lies outside our 95% CI."""
        out = {}
        for s in self.scores:
            out[s.name] = _compare(row.model, row.scores.get(s.name), s.score, (s.ci_low, s.ci_high))
        if self.average is not None and self.average_ci is not None:
            pub = row.average_over([s.name for s in self.scores])
            out["average"] = _compare(row.model, pub, self.average, self.average_ci)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "family": self.family,
            "settings": self.settings,
            "benchmarks": [
                {k: v for k, v in dataclasses.asdict(s).items() if k != "per_problem"} for s in self.scores
            ],
            "average": self.average,
            "average_ci": list(self.average_ci) if self.average_ci else None,
            "published": [
                {"model": r.model, "family": r.family,
                 "comparisons": {k: dataclasses.asdict(c) for k, c in self.comparisons(r).items()}}
                for r in self.published
            ],
            "grading": self.grading,
        }


def _compare(model: str, published: float | None, ours: float, ci: tuple[float, float]) -> Comparison:
    if published is None:
        return Comparison(model, None, None, None)
    return Comparison(model, published, ours - published, bench_mod.outside_interval(published, ci))


def per_problem_scores(records: Sequence[dict[str, Any]], correct: Sequence[bool]) -> dict[int, float]:
    """example_id -> that problem's mean correctness over its samples."""
    hits: dict[int, list[bool]] = {}
    for rec, ok in zip(records, correct):
        hits.setdefault(int(rec["example_id"]), []).append(bool(ok))
    return {pid: sum(v) / len(v) for pid, v in sorted(hits.items())}


def score_benchmark(
    name: str, n: int, path: Path, per_problem: dict[int, float], *, samples: int, resamples: int, seed: int
) -> BenchmarkScore:
    values = list(per_problem.values())
    if not values:
        raise EvalError(f"{path}: no graded samples")
    lo, hi = bootstrap_ci(values, resamples=resamples, seed=seed)
    return BenchmarkScore(
        name=name, samples_per_problem=n, problems=len(values),
        samples=samples, score=100 * float(np.mean(values)),
        ci_low=100 * lo, ci_high=100 * hi, file=path.name, per_problem=values,
    )


def summarize(
    model: str,
    scores: list[BenchmarkScore],
    *,
    family: str | None,
    settings: dict[str, Any],
    resamples: int = 10_000,
    seed: int = 0,
    grading: dict[str, Any] | None = None,
) -> Summary:
    """Scores -> the average with its CI, and the published rows to compare with."""
    average = average_ci = None
    if scores:
        average = float(np.mean([s.score for s in scores]))
        lo, hi = bootstrap_average_ci([s.per_problem for s in scores], resamples=resamples, seed=seed)
        average_ci = (100 * lo, 100 * hi)
    if family in (None, "all"):
        rows = bench_mod.published()
    elif family == "none":
        rows = []
    else:
        rows = bench_mod.published(family)
    return Summary(model, scores, average, average_ci, family, rows, settings, grading or {})
