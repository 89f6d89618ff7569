"""Grading generation files in the JustRL release format into ``grading_results.json``.

Input: a folder of JSONL files named ``{task}_t{temperature}_p{top_p}_n{n}-MNT{max_tokens}.jsonl``
whose lines are ``{"example_id", "prompt", "answer", "seed", "response"}``. Output, per file, the
release's fields (``mean_score`` = avg@n, ``best_score`` = pass@n, ``solve_none``, ``solve_all``,
``distinct_4gram``, ``avg_output_length``, ``format_error_rollouts``) plus unbiased ``pass@k``
(k = 1, 2, 4, ... up to n), per-problem scores, which stage settled the answers and how many judge
calls the ``lenient`` stage saved. Malformed lines are reported with file and line number and
skipped -- never counted as wrong. Beside each generation file, ``<name>_verdicts.jsonl`` holds each
graded sample's verdict: ``example_id``, ``seed``, ``line``, ``answer`` (the ground truth),
``extracted``, ``correct``, ``undecided``, ``stage``, ``reason`` and ``judged``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from justrl import logs, verifiers
from justrl.errors import EvalError
from justrl.io import atomic_write_json, atomic_write_text, sweep_staging
from justrl.verifiers import Judge, Verdict

log = logs.get(__name__)

RESULTS_FILE = "grading_results.json"  # the release's name
VERDICTS_SUFFIX = "_verdicts.jsonl"
"""Beside each generation file ``X.jsonl``, ``X_verdicts.jsonl``: one line per graded sample."""
FILENAME_PATTERN = re.compile(
    r"_t(?P<temperature>[\d.]+)_p(?P<top_p>[\d.]+)_n(?P<n>\d+)-MNT(?P<max_tokens>\d+)"
)  # the release's parse_hyperparameters_from_filename
NO_JUDGE_NOTE = "no model judge: answers that every rule stage rejects count as wrong"


@dataclass(frozen=True)
class Sample:
    example_id: int
    answer: str
    response: str
    prompt: str
    seed: Any
    line: int


@dataclass(frozen=True)
class Malformed:
    file: str
    line: int
    error: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.error}"


@dataclass
class GenerationFile:
    path: Path
    hyperparameters: dict[str, str]
    samples: list[Sample] = field(default_factory=list)
    malformed: list[Malformed] = field(default_factory=list)
    duplicates: int = 0


def parse_filename(name: str) -> dict[str, str] | None:
    """``{temperature, top_p, n, max_tokens, task_name}`` from a release file name, else ``None``."""
    m = FILENAME_PATTERN.search(name)
    if m is None:
        return None
    params = dict(m.groupdict())
    params["task_name"] = Path(name).stem.split("_")[0]
    return params


def _parse_line(text: str) -> tuple[dict[str, Any] | None, str | None]:
    try:
        record = json.loads(text)
    except ValueError as exc:
        return None, f"not JSON ({exc.msg})"
    if not isinstance(record, dict):
        return None, "not a JSON object"
    for key in ("example_id", "answer", "response"):
        if key not in record:
            return None, f"missing {key!r}"
    if not isinstance(record["response"], str):
        return None, "'response' is not a string"
    if not isinstance(record["answer"], (str, int, float)) or isinstance(record["answer"], bool):
        return None, "'answer' is not a string"
    example_id = record["example_id"]
    if isinstance(example_id, str) and example_id.strip().lstrip("-").isdigit():
        example_id = int(example_id)
    if isinstance(example_id, float) and example_id.is_integer():
        example_id = int(example_id)
    if not isinstance(example_id, int) or isinstance(example_id, bool):  # 6.7 is not 6, true is not 1
        return None, f"'example_id' is not an integer ({json.dumps(record['example_id'])})"
    record["example_id"] = example_id
    return record, None


def read_generation_file(path: Path, hyperparameters: dict[str, str]) -> GenerationFile:
    """The samples of one file; malformed lines and repeated (example_id, seed) pairs are skipped."""
    out = GenerationFile(path, hyperparameters)
    seen: set[tuple[int, str]] = set()
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            record, error = _parse_line(text)
            if record is None:
                out.malformed.append(Malformed(path.name, number, error or "malformed"))
                continue
            seed = record.get("seed")
            if seed is not None:
                key = (record["example_id"], json.dumps(seed))
                if key in seen:
                    out.duplicates += 1
                    continue
                seen.add(key)
            prompt = record.get("prompt", "")
            out.samples.append(
                Sample(
                    example_id=record["example_id"],
                    answer=str(record["answer"]),
                    response=record["response"],
                    prompt=prompt if isinstance(prompt, str) else json.dumps(prompt),
                    seed=seed,
                    line=number,
                )
            )
    return out


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct: 1 - C(n-c, k) / C(n, k)."""
    if k > n:
        raise ValueError(f"k={k} > n={n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod((n - c - i) / (n - i) for i in range(k))


def pass_ks(n: int) -> list[int]:
    """1, 2, 4, ... up to n."""
    ks, k = [], 1
    while k <= n:
        ks.append(k)
        k *= 2
    return ks


def distinct_ngrams(responses: Sequence[str], n: int = 4) -> float:
    """The release's Distinct-n: distinct whitespace n-grams / all n-grams over the responses."""
    distinct: set[tuple[str, ...]] = set()
    total = 0
    for text in responses:
        tokens = text.split()
        for i in range(len(tokens) - n + 1):
            distinct.add(tuple(tokens[i : i + n]))
            total += 1
    return len(distinct) / total if total else 0.0


def _stage_counts(verdicts: Sequence[Verdict], default_stage: str) -> dict[str, dict[str, int]]:
    """Right and wrong verdicts by the stage that settled them (undecided ones are counted apart)."""
    counts: dict[str, dict[str, int]] = {}
    for v in verdicts:
        if v.undecided:
            continue
        stage = v.stage or default_stage
        entry = counts.setdefault(stage, {"correct": 0, "incorrect": 0})
        entry["correct" if v.correct else "incorrect"] += 1
    return counts


def _score_range(by_problem: dict[int, list[Verdict]]) -> list[float]:
    """avg@n with every undecided verdict wrong, and with every one right."""
    if not by_problem:
        return [0.0, 0.0]
    low = [sum(v.correct for v in vs) / len(vs) for vs in by_problem.values()]
    high = [sum(v.correct or v.undecided for v in vs) / len(vs) for vs in by_problem.values()]
    return [sum(low) / len(low), sum(high) / len(high)]


def file_metrics(
    gen: GenerationFile,
    verdicts: Sequence[Verdict],
    *,
    verifier_name: str,
    lengths: Sequence[int],
    length_unit: str,
    judge_calls: int,
) -> dict[str, Any]:
    """The release's per-file fields plus pass@k, per-problem scores and stage counts.

    An ``undecided`` verdict (no verdict within the time bound, even on a retry with a larger one)
    is neither right nor wrong: the scores are over the decided samples (a problem with none is
    left out and counted in ``undecided_problems``), ``undecided`` counts them, and
    ``mean_score_range`` gives avg@n with all of them wrong and all of them right.
    """
    by_problem: dict[int, list[bool]] = {}
    all_by_problem: dict[int, list[Verdict]] = {}
    responses_by_problem: dict[int, list[str]] = {}
    for sample, verdict in zip(gen.samples, verdicts):
        all_by_problem.setdefault(sample.example_id, []).append(verdict)
        if not verdict.undecided:
            by_problem.setdefault(sample.example_id, []).append(verdict.correct)
        responses_by_problem.setdefault(sample.example_id, []).append(sample.response)
    problems = sorted(by_problem)
    means = [sum(by_problem[p]) / len(by_problem[p]) for p in problems]
    n_min = min((len(by_problem[p]) for p in problems), default=0)
    stages = _stage_counts(verdicts, verifier_name)
    saved = stages.get(verifiers.STAGE_LENIENT, {}).get("correct", 0)
    scored: dict[str, Any] = {  # nothing to score (an empty file, every answer undecided): null + why
        "mean_score": sum(means) / len(means) if means else None,
        "distinct_4gram": (
            sum(distinct_ngrams(responses_by_problem[p]) for p in problems) / len(problems)
            if problems
            else None
        ),
        "best_score": sum(max(by_problem[p]) for p in problems) / len(problems) if problems else None,
    }
    if not means:
        scored["not_scored"] = ("nothing to score: no response" if not gen.samples
                                else "nothing to score: every answer undecided")
    return {
        "hyperparameters": gen.hyperparameters,
        **scored,
        "solve_none": sum(1 for m in means if m == 0),
        "solve_all": sum(1 for m in means if m == 1),
        "avg_output_length": sum(lengths) / len(lengths) if lengths else 0.0,
        "avg_output_length_unit": length_unit,
        "format_error_rollouts": sum(1 for s in gen.samples if "boxed" not in s.response),
        "pass@k": {
            str(k): sum(pass_at_k(len(by_problem[p]), sum(by_problem[p]), k) for p in problems)
            / len(problems)
            for k in pass_ks(n_min)
        },
        "problems": len(problems),
        "responses": len(gen.samples),
        "samples_per_problem": {"min": n_min, "max": max((len(v) for v in by_problem.values()), default=0)},
        "stages": stages,
        "judge_calls": judge_calls,
        "judge_calls_saved": saved,
        "undecided": sum(1 for v in verdicts if v.undecided),
        "undecided_problems": len(all_by_problem) - len(by_problem),
        "mean_score_range": _score_range(all_by_problem),
        "malformed_lines": [str(m) for m in gen.malformed],
        "duplicate_lines": gen.duplicates,
        "per_problem": {str(p): m for p, m in zip(problems, means)},
    }


# --------------------------------------------------------------------------------------------
# Grading a folder
# --------------------------------------------------------------------------------------------


def _length_fn(tokenizer: Any) -> tuple[Callable[[str], int], str]:
    if tokenizer is None:
        return len, "characters"
    if isinstance(tokenizer, (str, Path)):
        from justrl.evaluate.plan import load_tokenizer

        tokenizer = load_tokenizer(str(tokenizer), what="--tokenizer")
    return (lambda text: len(tokenizer.encode(text))), "tokens"


def _discover(folder: Path, only: Mapping[str, set[tuple[int, int]]] | None = None) -> list[GenerationFile]:
    files = []
    for path in sorted(folder.glob("*.jsonl")):
        if path.name.endswith(VERDICTS_SUFFIX):
            continue
        params = parse_filename(path.name)
        if params is None:
            log.info("skipping %s: not named {task}_t{T}_p{P}_n{N}-MNT{M}.jsonl", path.name)
            continue
        if only is not None and path.name not in only:
            continue
        gen = read_generation_file(path, params)
        if only is not None:  # what this evaluation planned, not what earlier runs left in the file
            keep = only[path.name]
            gen.samples = [s for s in gen.samples if (s.example_id, s.seed) in keep]
        for problem in gen.malformed:
            log.warning("malformed line skipped: %s", problem)
        files.append(gen)
    return files


def _verify_all(
    files: Sequence[GenerationFile],
    verifier: str,
    *,
    timeout_s: float,
    workers: int | None,
    show_progress: bool,
) -> list[Verdict]:
    responses = [s.response for f in files for s in f.samples]
    truths = [s.answer for f in files for s in f.samples]
    if not show_progress or not logs.progress_enabled() or not responses:
        return verifiers.verify_batch(verifier, responses, truths, timeout_s=timeout_s, workers=workers)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("grading"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=logs.console(), transient=False) as bar:
        task = bar.add_task("grading", total=len(responses))
        return verifiers.verify_batch(
            verifier,
            responses,
            truths,
            timeout_s=timeout_s,
            workers=workers,
            progress=lambda done: bar.update(task, completed=done),
        )


def grade_dir(
    path: str | Path,
    verifier: str = "justrl-eval",
    judge: Judge | None = None,
    tokenizer: Any = None,
    *,
    timeout_s: float = verifiers.DEFAULT_TIMEOUT_S,
    workers: int | None = None,
    show_progress: bool = True,
    write: bool = True,
    only: Mapping[str, set[tuple[int, int]]] | None = None,
) -> dict[str, Any]:
    """Grade every release-format JSONL file in ``path``; write and return the results.

    ``verifier`` is a name from :func:`justrl.verifiers.get`; ``judge`` (see
    :mod:`justrl.evaluate.judge`) then grades what the verifier rejects, as the release's protocol does.
    ``tokenizer`` (an object with ``encode`` or a path) measures output length in tokens, else in
    characters. Returns ``{"grader": ..., "files": {file name: metrics}, "malformed_lines": [...]}``
    and writes it to ``path/grading_results.json`` unless ``write`` is false. Skipped files and
    lines are logged; a progress bar is drawn on :func:`justrl.logs.console` unless
    ``show_progress`` is false or :func:`justrl.logs.progress_enabled` is. ``only`` (file name ->
    ``(example_id, seed)`` pairs) grades just those files and pairs: what an evaluation planned.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise EvalError(f"{folder}: not a directory")
    verifiers.get(verifier)  # unknown names fail before any work
    length, unit = _length_fn(tokenizer)  # a bad tokenizer path fails before any verifying
    files = _discover(folder, only)
    graded = {gen.path.name: file_identity(gen.path) for gen in files}  # what these grades are of
    verdicts = _verify_all(files, verifier, timeout_s=timeout_s, workers=workers, show_progress=show_progress)
    judged = [False] * len(verdicts)
    if judge is not None:
        samples = [s for f in files for s in f.samples]
        before = [v.correct for v in verdicts]
        verdicts = verifiers.apply_judge(
            judge,
            verdicts,
            [s.prompt for s in samples],
            [s.response for s in samples],
            [s.answer for s in samples],
        )
        judged = [not ok for ok in before]
    results: dict[str, Any] = {}
    start = 0
    for gen in files:
        stop = start + len(gen.samples)
        results[gen.path.name] = file_metrics(
            gen,
            verdicts[start:stop],
            verifier_name=verifier,
            lengths=[length(s.response) for s in gen.samples],
            length_unit=unit,
            judge_calls=sum(judged[start:stop]),
        )
        if write:
            write_verdicts(gen, verdicts[start:stop], judged[start:stop], verifier)
        results[gen.path.name]["graded_file"] = graded[gen.path.name]
        start = stop
    report = {
        "grader": {
            "verifier": verifier,
            "judge": getattr(judge, "name", type(judge).__name__) if judge is not None else None,
            "note": None if judge is not None else NO_JUDGE_NOTE,
            "timeout_s": timeout_s,
        },
        "files": results,
        "malformed_lines": [str(m) for gen in files for m in gen.malformed],
    }
    if write:
        sweep_staging(folder, depth=0, only=RESULTS_FILE)  # what a killed grade left aside
        atomic_write_json(folder / RESULTS_FILE, report, indent=2)
    return report


def verdicts_path(generation_file: Path) -> Path:
    """Where the verdicts of ``generation_file`` go: ``<stem>_verdicts.jsonl`` beside it."""
    return generation_file.with_name(generation_file.stem + VERDICTS_SUFFIX)


def write_verdicts(gen: GenerationFile, verdicts: Sequence[Verdict], judged: Sequence[bool],
                   verifier_name: str) -> Path:
    """Each graded sample of ``gen`` and its verdict, one JSON line each, in the file's order."""
    lines = [
        json.dumps({
            "example_id": s.example_id, "seed": s.seed, "line": s.line, "answer": s.answer,
            "extracted": v.extracted, "correct": v.correct, "undecided": v.undecided,
            "stage": v.stage or verifier_name, "reason": v.reason, "judged": bool(j),
        }, ensure_ascii=False) + "\n"
        for s, v, j in zip(gen.samples, verdicts, judged)
    ]
    target = verdicts_path(gen.path)
    sweep_staging(target.parent, depth=0, only=target.name)
    return atomic_write_text(target, "".join(lines))


def read_verdicts(generation_file: str | Path) -> list[dict[str, Any]]:
    """The verdict lines written beside ``generation_file`` (``[]`` when it was not graded)."""
    path = verdicts_path(Path(generation_file))
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
def file_identity(path: Path) -> dict[str, Any]:
    """What a grade was computed from: the file's size and SHA-256 (``graded_file`` in the results)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"size": path.stat().st_size, "sha256": digest.hexdigest()}


def stale_file(folder: Path, results: dict[str, Any]) -> str | None:
    """Why ``results`` (a folder's ``grading_results.json``) no longer describe the generation files
    beside them: a graded file that changed or is gone (None when every one is as graded; results
    from before ``graded_file`` was recorded cannot be checked and pass)."""
    for name, metrics in (results.get("files") or {}).items():
        recorded = metrics.get("graded_file") if isinstance(metrics, dict) else None
        if not isinstance(recorded, dict):
            continue
        path = folder / name
        if not path.is_file():
            return f"{path} was graded but is gone"
        if path.stat().st_size != recorded.get("size") or file_identity(path) != recorded:
            return (f"{path} changed since it was graded ({recorded.get('size')} bytes then, "
                    f"{path.stat().st_size} now)")
    return None


def incompleteness(metrics: dict[str, Any]) -> str:
    """What a file lacks against its name's ``n`` (empty, problems short of n samples, torn lines);
    ``""`` for a complete file."""
    try:
        n = int(metrics["hyperparameters"]["n"])
    except (KeyError, TypeError, ValueError):
        n = 0
    parts = []
    if metrics["responses"] == 0:
        parts.append("no complete sample lines")
    elif metrics["samples_per_problem"]["min"] < n:
        parts.append(f"{metrics['responses']} samples, fewer than n={n} for some of its {metrics['problems']} problems")
    if metrics["malformed_lines"]:
        parts.append(f"{len(metrics['malformed_lines'])} malformed or half-written line(s)")
    return "; ".join(parts)


def summary_lines(report: dict[str, Any]) -> list[str]:
    """A short human-readable summary of a :func:`grade_dir` report."""
    lines = []
    for name, r in report["files"].items():
        gap = incompleteness(r)
        if r["responses"] == 0:
            lines.append(f"{name}: empty ({gap}); nothing to score")
            continue
        passes = ", ".join(f"pass@{k} {v:.3f}" for k, v in r["pass@k"].items())
        stages = ", ".join(
            f"{s}: {c['correct']} right / {c['incorrect']} wrong" for s, c in r["stages"].items()
        )
        avg = "— (every answer undecided)" if r["mean_score"] is None else f"{r['mean_score']:.4f}"
        lines.append(
            f"{name}: avg@n {avg}, {passes}; {r['problems']} problems, {r['responses']} responses,"
            f" {r['format_error_rollouts']} without \\boxed; stages {stages};"
            f" judge calls {r['judge_calls']} (saved {r['judge_calls_saved']})"
        )
        if r.get("undecided"):
            low, high = r["mean_score_range"]
            lines.append(
                f"{name}: {r['undecided']} response(s) undecided (no verdict within the time bound, nor on"
                f" a retry with a larger one): left out of the scores; avg@n {low:.4f}-{high:.4f} with them"
                " all wrong / all right"
            )
        if gap:
            lines.append(f"{name}: PARTIAL, {gap}: the scores above cover only the samples there")
    if report["grader"]["note"]:
        lines.append(report["grader"]["note"])
    if report["malformed_lines"]:
        lines.append(f"{len(report['malformed_lines'])} malformed line(s) skipped")
    return lines
