"""Is evaluation B really better than A? Paired comparison of evaluation folders.

Two evaluations of the same problems are paired: a hard problem is hard for both, so the
per-problem differences vary far less than the scores do, and a comparison built on them sees
differences that two overlapping confidence intervals hide. For every benchmark the folders share
(and for the average over benchmarks, weighed equally as the paper does) :func:`compare` reports,
for each folder against the first:

- the difference in avg@N on the problems every folder holds (each problem's avg@N is the mean
  over its own samples, so folders with different N are still paired by problem);
- a 95% percentile-bootstrap interval: problems are resampled with their samples kept together,
  and the same resampled problems are used for every folder (``bootstrap_means`` from
  :mod:`justrl.evaluate`, fed the per-problem differences);
- a two-sided p-value for "no difference" from a paired sign-flip permutation test on the
  per-problem differences (valid when, without a real difference, each problem's difference is
  as likely to be positive as negative), adjusted for the several folders by Holm's method
  (``correction``).

Folders that do not share problems, or that differ in a setting that changes the scores
(temperature, top-p, max tokens, prompt, grader), are refused with one line naming the setting.
Reports: :mod:`justrl.evaluate.compare_report`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from justrl.data import benchmarks as bench_mod
from justrl.errors import BenchmarkDataError, ConfigError, EvalError
from justrl.evaluate import grading
from justrl.evaluate.scores import bootstrap_means

AVERAGE = "average"
CONFIG_FILE = "eval_config.json"  # written by `justrl eval`; optional here
CORRECTIONS = ("holm", "bonferroni", "none")
TEST = "paired sign-flip permutation test on per-problem differences (two-sided)"
SAMPLING_SETTINGS = ("temperature", "top_p", "max_tokens")
_BLOCK_ELEMENTS = 2_000_000  # bounded memory for the sign-flip matrix


# --------------------------------------------------------------------------------------------
# Reading evaluation folders
# --------------------------------------------------------------------------------------------


@dataclass
class BenchmarkScores:
    """One benchmark of one folder: what its graded file says about each problem."""

    name: str
    file: str
    hyperparameters: dict[str, str]
    per_problem: dict[int, float]
    """example_id -> the problem's mean correctness over its samples (0..1)."""
    samples_per_problem: tuple[int, int]
    """Fewest and most samples of a problem (equal in a finished evaluation)."""
    problem_text: dict[int, tuple[str, str]] = field(default_factory=dict, repr=False)
    """example_id -> (prompt, answer) as the sample file holds them; empty without the file."""


@dataclass
class Evaluation:
    """An evaluation folder as :func:`compare` reads it."""

    path: Path
    label: str
    grader: dict[str, Any]
    prompt_template: str | None
    """The template of ``eval_config.json`` (folders written by ``justrl eval``), else None."""
    model: str | None
    benchmarks: dict[str, BenchmarkScores]


def benchmark_name(task: str) -> str:
    """The paper's spelling of a task name (``math-500`` -> ``MATH-500``); unknown ones as they are."""
    try:
        return bench_mod.get(task).name
    except BenchmarkDataError:
        return task


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EvalError(f"{path}: cannot read it ({exc})") from exc
    if not isinstance(data, dict):
        raise EvalError(f"{path}: not a JSON object")
    return data


def _problem_text(path: Path, hyperparameters: dict[str, str]) -> dict[int, tuple[str, str]]:
    if not path.is_file():
        return {}
    out: dict[int, tuple[str, str]] = {}
    for sample in grading.read_generation_file(path, hyperparameters).samples:
        out.setdefault(sample.example_id, (sample.prompt, sample.answer))
    return out


TRAINING_LOGS = ("metrics.jsonl", "verl_metrics.jsonl")
"""A training run's own logs (native engine, verl engine), beside its ``recipe.yaml``."""


def _is_training_run(folder: Path) -> bool:
    return (folder / "recipe.yaml").is_file() and any((folder / name).is_file() for name in TRAINING_LOGS)


def _training_run_note(folder: Path) -> str:
    """Why a training run folder is not comparable as it is (native or verl, its logs are not paired
    scores: different engines log different validation protocols), and what to compare instead."""
    engine = "verl" if (folder / "verl_metrics.jsonl").is_file() else "native"
    steps = sorted((folder / "eval_watch" / "steps").glob("step_*"), key=lambda p: int(p.name[5:]))
    where = (f"e.g. {steps[-1]}" if steps else f"run `justrl eval --watch {folder}` first")
    return (f"{folder}: a training run ({engine} engine), not an evaluation: its logged validation "
            f"scores are not paired per problem and the engines validate differently (verl with "
            f"max_response_tokens, the native engine with val_max_tokens); compare evaluations of "
            f"its checkpoints under one protocol instead: RUN/eval_watch/steps/step_N ({where})")


def load_evaluation(path: str | Path, label: str, only: Sequence[str] | None = None) -> Evaluation:
    """Per-problem scores from ``grading_results.json`` (``justrl grade`` or ``justrl eval``), and
    each problem's prompt and answer from its sample file; ``only`` limits which benchmarks."""
    folder = Path(path)
    if not folder.is_dir():
        raise EvalError(f"{folder}: not a directory")
    results_path = folder / grading.RESULTS_FILE
    if not results_path.is_file() and _is_training_run(folder):
        raise EvalError(_training_run_note(folder))
    if not results_path.is_file():
        raise EvalError(f"{folder}: no {grading.RESULTS_FILE}; grade it first: justrl grade {folder}")
    results = _read_json(results_path)
    stale = grading.stale_file(folder, results)
    if stale is not None:
        raise EvalError(f"{results_path} is stale: {stale}; regrade it: justrl grade {folder}")
    scores: dict[str, BenchmarkScores] = {}
    for file_name, metrics in (results.get("files") or {}).items():
        params = metrics.get("hyperparameters") or grading.parse_filename(file_name) or {}
        name = benchmark_name(params.get("task_name") or file_name.split("_")[0])
        if only is not None and name not in only:
            continue
        if "per_problem" not in metrics:
            raise EvalError(f"{results_path}: {file_name} has no per-problem scores (graded by the "
                            f"release's grade.py?); regrade it: justrl grade {folder}")
        if name in scores:
            raise EvalError(f"{folder}: two sample files for {name} ({scores[name].file}, {file_name}); "
                            "move one of them out")
        spp = metrics.get("samples_per_problem") or {}
        scores[name] = BenchmarkScores(
            name=name, file=file_name, hyperparameters=dict(params),
            per_problem={int(k): float(v) for k, v in metrics["per_problem"].items()},
            samples_per_problem=(int(spp.get("min", 0)), int(spp.get("max", 0))),
            problem_text=_problem_text(folder / file_name, params),
        )
    config = _read_json(folder / CONFIG_FILE).get("settings", {}) if (folder / CONFIG_FILE).is_file() else {}
    return Evaluation(folder, label, dict(results.get("grader") or {}), config.get("prompt"),
                      config.get("model"), scores)


def folder_labels(folders: Sequence[str | Path]) -> list[str]:
    """Folder names, or whole paths where two folders share a name."""
    names = [Path(f).resolve().name for f in folders]
    return names if len(set(names)) == len(names) else [str(f) for f in folders]


# --------------------------------------------------------------------------------------------
# What may be compared
# --------------------------------------------------------------------------------------------


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 70 else text[:67] + "..."


def _differs(what: str, a: Evaluation, value_a: Any, b: Evaluation, value_b: Any) -> EvalError:
    return EvalError(f"cannot compare {a.label} with {b.label}: {what} differs "
                     f"({_show(value_a)} in {a.label}, {_show(value_b)} in {b.label})")


def _number(text: str | None) -> float | int | None:
    """A file name's setting as a number (``"0.7"`` -> 0.7, ``"1024"`` -> 1024)."""
    if text is None:
        return None
    value = float(text)
    return int(value) if value.is_integer() and "." not in str(text) else value


def _table_order(names: set[str]) -> list[str]:
    known = [b.name for b in bench_mod.BENCHMARKS if b.name in names]
    return known + sorted(names - set(known))


def shared_benchmarks(evals: Sequence[Evaluation], wanted: Sequence[str] | None) -> list[str]:
    """The benchmarks to compare: ``wanted`` (each must be in every folder), else all shared."""
    if wanted:
        for name in wanted:
            for ev in evals:
                if name not in ev.benchmarks:
                    raise EvalError(f"{name} is not in {ev.label} (it has: {', '.join(ev.benchmarks) or 'none'})")
        return _table_order(set(wanted))
    common = set.intersection(*(set(ev.benchmarks) for ev in evals))
    if not common:
        held = "; ".join(f"{ev.label}: {', '.join(_table_order(set(ev.benchmarks))) or 'none'}" for ev in evals)
        raise EvalError(f"the folders share no benchmark ({held})")
    return _table_order(common)


def check_comparable(evals: Sequence[Evaluation], names: Sequence[str]) -> dict[str, list[int]]:
    """Refuse folders whose scores mean different things; return each benchmark's shared problems.

    Compared with the first folder: the grader (verifier and judge), the prompt template (when
    both folders record one), temperature, top-p and max tokens of each benchmark's file, and the
    prompt and answer of every shared problem (so different data or templates are caught in
    folders of the release's format too). Different N and different seeds are allowed.
    """
    base = evals[0]
    for other in evals[1:]:
        for key in ("verifier", "judge"):
            if base.grader.get(key) != other.grader.get(key):
                raise _differs(f"grader {key}", base, base.grader.get(key), other, other.grader.get(key))
        if base.prompt_template and other.prompt_template and base.prompt_template != other.prompt_template:
            raise _differs("prompt", base, base.prompt_template, other, other.prompt_template)
    shared: dict[str, list[int]] = {}
    for name in names:
        first = base.benchmarks[name]
        for other in evals[1:]:
            theirs = other.benchmarks[name]
            for key in SAMPLING_SETTINGS:
                mine, yours = _number(first.hyperparameters.get(key)), _number(theirs.hyperparameters.get(key))
                if mine is not None and yours is not None and mine != yours:
                    raise _differs(f"{key} of {name}", base, mine, other, yours)
        ids = set.intersection(*(set(ev.benchmarks[name].per_problem) for ev in evals))
        if not ids:
            held = "; ".join(f"{ev.label}: {len(ev.benchmarks[name].per_problem)}" for ev in evals)
            raise EvalError(f"the folders share no {name} problem (problems held: {held})")
        shared[name] = sorted(ids)
        for other in evals[1:]:
            _check_problem_text(base, other, name, shared[name])
    return shared


def _check_problem_text(base: Evaluation, other: Evaluation, name: str, ids: Sequence[int]) -> None:
    mine, yours = base.benchmarks[name].problem_text, other.benchmarks[name].problem_text
    for pid in ids:
        if pid in mine and pid in yours:
            for index, what in ((0, "prompt"), (1, "answer")):
                if mine[pid][index] != yours[pid][index]:
                    raise _differs(f"{what} of {name} problem {pid}", base, mine[pid][index], other,
                                   yours[pid][index])


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------


@dataclass
class PairedStatistics:
    """Mean differences, their intervals and p-values: per benchmark, then the average."""

    differences: list[float]
    intervals: list[tuple[float, float]]
    p_values: list[float]
    average: float
    average_interval: tuple[float, float]
    average_p_value: float


def paired_bootstrap(diffs: Sequence[np.ndarray], resamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap replicates of each benchmark's mean difference, shape (benchmarks, resamples),
    and of their average. Resampling a problem's difference is resampling the problem in every
    folder at once, its samples together; a fresh generator per call means every comparison of
    one run resamples the same problems."""
    rng = np.random.default_rng(seed)
    per = np.stack([bootstrap_means(d, resamples, rng) for d in diffs])
    return per, per.mean(axis=0)


def _flipped_means(diff: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    out = np.empty(resamples)
    block = max(1, _BLOCK_ELEMENTS // diff.size)
    for start in range(0, resamples, block):
        stop = min(resamples, start + block)
        signs = rng.integers(0, 2, size=(stop - start, diff.size)).astype(np.float64) * 2.0 - 1.0
        out[start:stop] = signs @ diff / diff.size
    return out


def _two_sided(replicates: np.ndarray, observed: float) -> float:
    """(1 + #{|T*| >= |T|}) / (1 + R): a valid Monte Carlo p-value (never 0; 1 when T = 0)."""
    extreme = np.count_nonzero(np.abs(replicates) >= abs(observed) - 1e-12)
    return float((1 + extreme) / (1 + replicates.size))


def sign_flip_p_values(diffs: Sequence[np.ndarray], resamples: int, seed: int) -> tuple[list[float], float]:
    """Two-sided p-values of "no difference" per benchmark and for the average over benchmarks.

    Without a real difference, folder labels are exchangeable within a problem, so each
    per-problem difference keeps its size and gets a random sign; the statistic is the mean
    difference (the average's: the mean over benchmarks of their means, with every problem's sign
    drawn independently)."""
    rng = np.random.default_rng([seed, 1])
    flipped = np.stack([_flipped_means(d, resamples, rng) for d in diffs])
    observed = [float(d.mean()) for d in diffs]
    per = [_two_sided(flipped[i], observed[i]) for i in range(len(diffs))]
    return per, _two_sided(flipped.mean(axis=0), float(np.mean(observed)))


def _interval(replicates: np.ndarray, level: float) -> tuple[float, float]:
    lo, hi = np.quantile(replicates, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def paired_statistics(diffs: Sequence[np.ndarray], *, resamples: int, seed: int, level: float) -> PairedStatistics:
    """Everything :func:`compare` reports for one folder against the first, from the per-problem
    differences of each benchmark (0..1 scale)."""
    arrays = [np.asarray(d, dtype=np.float64) for d in diffs]
    per, average = paired_bootstrap(arrays, resamples, seed)
    p_values, average_p = sign_flip_p_values(arrays, resamples, seed)
    means = [float(d.mean()) for d in arrays]
    return PairedStatistics(means, [_interval(r, level) for r in per], p_values, float(np.mean(means)),
                            _interval(average, level), average_p)


def adjust(p_values: Sequence[float], method: str) -> list[float]:
    """p-values adjusted for testing them together: ``holm`` (step-down; controls the chance of
    any false "significant" at the level, whatever the dependence), ``bonferroni`` or ``none``."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if method == "none" or m == 0:
        return p.tolist()
    if method == "bonferroni":
        return np.minimum(1.0, p * m).tolist()
    if method != "holm":
        raise ConfigError(f"unknown correction {method!r}; use one of {', '.join(CORRECTIONS)}")
    order = np.argsort(p, kind="stable")
    stepped = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = stepped
    return out.tolist()


# --------------------------------------------------------------------------------------------
# The comparison
# --------------------------------------------------------------------------------------------


@dataclass
class Difference:
    """One row of the result: a benchmark (or the average), one folder against the first."""

    benchmark: str
    baseline: str
    other: str
    problems: int
    samples: tuple[str, str]
    """Samples per problem (N) in the baseline and the other folder, e.g. ``"4"`` or ``"2-4"``."""
    baseline_score: float
    """avg@N in percent over the shared problems."""
    other_score: float
    difference: float
    """other - baseline, points."""
    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float
    significant: bool
    """Adjusted p below 1 - level."""


@dataclass
class Comparison:
    folders: list[str]
    labels: list[str]
    models: list[str | None]
    rows: list[Difference]
    benchmarks: list[str]
    left_out: dict[str, list[str]]
    """Benchmarks not in every folder -> the folders that hold them (not compared)."""
    problems_left_out: dict[str, dict[str, int]]
    """Benchmark -> folder -> problems it holds outside the shared set."""
    settings: dict[str, Any]
    correction: str
    level: float
    resamples: int
    seed: int
    test: str = TEST

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _samples(scores: BenchmarkScores) -> str:
    lo, hi = scores.samples_per_problem
    return str(lo) if lo == hi else f"{lo}-{hi}"


def _rows_against(base: Evaluation, other: Evaluation, names: list[str], shared: dict[str, list[int]],
                  stats: PairedStatistics) -> list[Difference]:
    rows = []
    for i, name in enumerate(names):
        a, b = base.benchmarks[name], other.benchmarks[name]
        ids = shared[name]
        rows.append(Difference(
            name, base.label, other.label, len(ids), (_samples(a), _samples(b)),
            100 * float(np.mean([a.per_problem[p] for p in ids])), 100 * float(np.mean([b.per_problem[p] for p in ids])),
            100 * stats.differences[i], 100 * stats.intervals[i][0], 100 * stats.intervals[i][1],
            stats.p_values[i], stats.p_values[i], False))
    rows.append(Difference(
        AVERAGE, base.label, other.label, sum(len(shared[n]) for n in names), ("", ""),
        float(np.mean([r.baseline_score for r in rows])), float(np.mean([r.other_score for r in rows])),
        100 * stats.average, 100 * stats.average_interval[0], 100 * stats.average_interval[1],
        stats.average_p_value, stats.average_p_value, False))
    return rows


def _wanted(benchmarks: str | Sequence[str] | None) -> list[str] | None:
    """Benchmark names asked for (any spelling ``select`` takes); None for all shared ones."""
    spec = [benchmarks] if isinstance(benchmarks, str) else list(benchmarks or [])
    items = [s.strip() for part in spec for s in part.split(",") if s.strip()]
    if not items or any(s.lower() == "all" for s in items):
        return None
    return [b.name for b in bench_mod.select(items)]


def compare(
    folders: Sequence[str | Path],
    *,
    benchmarks: str | Sequence[str] | None = None,
    resamples: int = 10_000,
    seed: int = 0,
    correction: str = "holm",
    level: float = 0.95,
) -> Comparison:
    """Each folder against the first, per shared benchmark and for their average.

    The correction adjusts, within each row (one benchmark, or the average), the p-values of the
    several folders compared with the first; rows are not adjusted for each other.
    """
    if len(folders) < 2:
        raise ConfigError("compare needs at least two evaluation folders")
    if correction not in CORRECTIONS:
        raise ConfigError(f"unknown correction {correction!r}; use one of {', '.join(CORRECTIONS)}")
    if resamples < 1 or not 0 < level < 1:
        raise ConfigError("resamples must be >= 1 and level in (0, 1)")
    wanted = _wanted(benchmarks)
    labels = folder_labels(folders)
    evals = [load_evaluation(f, label, wanted) for f, label in zip(folders, labels)]
    names = shared_benchmarks(evals, wanted)
    shared = check_comparable(evals, names)
    base = evals[0]
    rows: list[Difference] = []
    for other in evals[1:]:
        diffs = [np.array([other.benchmarks[n].per_problem[p] - base.benchmarks[n].per_problem[p]
                           for p in shared[n]]) for n in names]
        stats = paired_statistics(diffs, resamples=resamples, seed=seed, level=level)
        rows += _rows_against(base, other, names, shared, stats)
    for name in [*names, AVERAGE]:
        group = [r for r in rows if r.benchmark == name]
        for row, p in zip(group, adjust([r.p_value for r in group], correction)):
            row.p_adjusted, row.significant = p, p < 1 - level
    all_names = set().union(*(ev.benchmarks for ev in evals))
    left_out = {n: [ev.label for ev in evals if n in ev.benchmarks] for n in _table_order(all_names - set(names))}
    problems_left_out = {
        n: {ev.label: len(ev.benchmarks[n].per_problem) - len(shared[n]) for ev in evals} for n in names
        if any(len(ev.benchmarks[n].per_problem) > len(shared[n]) for ev in evals)
    }
    settings = {
        "grader": {k: base.grader.get(k) for k in ("verifier", "judge")},
        "prompt": base.prompt_template,
        "sampling": {n: {k: base.benchmarks[n].hyperparameters.get(k) for k in SAMPLING_SETTINGS} for n in names},
    }
    return Comparison([str(f) for f in folders], labels, [ev.model for ev in evals], rows, names, left_out,
                      problems_left_out, settings, correction, level, resamples, seed)
