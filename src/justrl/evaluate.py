"""Evaluate a model on the JustRL paper's nine benchmarks, exactly as the paper did.

The protocol (the JustRL release's ``evals/gen_vllm.py``): every problem, stripped, is formatted
as ``"{problem} Please reason step by step, and put your final answer within \\boxed{}."`` and sent
as one user turn through the model's chat template; each benchmark draws N samples per problem
(32 for the small competition sets, 4 for MATH-500, Minerva and Olympiad-Bench), sample ``j``
of every problem using the benchmark's ``j``-th seed, at temperature 0.7, top-p 0.9 and at most
31,744 new tokens. Answers are graded by the ``justrl-eval`` grader (optionally with a model
judge) and the score is avg@N.

A run, top to bottom (:func:`run`):

1. plan: the benchmarks' problems, N seeds per benchmark (drawn from ``seed``, so a rerun draws
   the same ones), one output file per benchmark named as the release names them;
2. generate what is missing: each output file is append-only JSONL, one line per
   (problem, seed), written and flushed as soon as it is generated, so a run killed at any moment
   and started again with the same arguments generates only the missing pairs, never one twice
   (a line cut short by the kill is dropped on restart);
3. grade all files (``justrl.grading.grade_dir``) into ``grading_results.json``;
4. summarise: avg@N per benchmark and their average, each with a 95% bootstrap confidence
   interval over problems, next to the published rows of the model's family, in ``report.md``,
   ``summary.json``, ``scores.png`` and a table in the terminal.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import time
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from justrl import benchmarks as bench_mod
from justrl import config as config_mod
from justrl.benchmarks import Benchmark, BenchmarkFile, PublishedRow
from justrl.errors import EvalError
from justrl.problems import Problem

# The release's PROMPT_TEMPLATE: one space after the problem, no newline.
EVAL_PROMPT = "{problem} Please reason step by step, and put your final answer within \\boxed{{}}."
RESULTS_FILE = "grading_results.json"  # the release's name
CONFIG_FILE = "eval_config.json"
SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.md"
CHART_FILE = "scores.png"


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


@dataclass
class EvalConfig:
    """Everything that defines an evaluation. Defaults are the paper's protocol."""

    model: str
    """Hugging Face hub id or local folder of the model (and its tokenizer)."""
    benchmarks: list[str] = field(default_factory=lambda: ["all"])
    """Benchmark names, or ``all`` for the paper's nine."""
    backend: str = "hf"
    """``hf`` (transformers, CPU or GPU) or ``vllm`` (GPU)."""
    workers: int = 1
    """Ray actors to spread (problem, seed) shards over; 1 generates in this process."""
    data_dir: str | None = None
    """Folder with ``NAME/test.parquet`` per benchmark; none: download once into the cache."""
    out: str | None = None
    """Output folder; default ``runs/eval/<model name>``."""
    judge_model: str | None = None
    """Model judge (CompassVerifier-3B in the paper) for answers the rule stages reject."""

    # --- overridable as key=value ---------------------------------------------------------
    n: int | None = None
    """Samples per problem for every benchmark; none: the paper's N of each benchmark."""
    temperature: float = 0.7
    """Sampling temperature; paper: 0.7."""
    top_p: float = 0.9
    """Nucleus sampling; paper: 0.9."""
    max_tokens: int = 31_744
    """Most new tokens per response; paper: 31,744 (32k context minus the prompt budget)."""
    prompt: str = EVAL_PROMPT
    """User-turn template with ``{problem}``; paper: the release's PROMPT_TEMPLATE."""
    seed: int = 0
    """Draws each benchmark's N sample seeds (the release draws them at random, unrecorded)."""
    batch_size: int | None = None
    """Samples per generate call, and per shard sent to a Ray worker; a call's samples are written
    when it returns. Default 32 for hf (which keeps every sequence's KV cache: ~0.9 GB per
    32k-token sequence of a 1.5B Qwen2 in bfloat16), 512 for vllm (which batches continuously)."""
    limit: int | None = None
    """Only the first ``limit`` problems of each benchmark (smoke tests)."""
    grader: str = "justrl-eval"
    """Verifier used for grading (``release-rule`` reproduces the release's rule stage)."""
    family: str | None = None
    """Published rows to compare with: a family, ``all`` or ``none``; default guessed from the name."""
    bootstrap: int = 10_000
    """Bootstrap resamples for the confidence intervals."""
    device: str | None = None
    """hf backend: torch device (default: cuda if available, else cpu)."""
    dtype: str | None = None
    """hf/vllm: weights' dtype (default: the backend's choice)."""
    gpu_memory_utilization: float = 0.9
    """vllm: share of GPU memory the engine may take."""
    tensor_parallel_size: int = 1
    """vllm: GPUs per engine."""
    enforce_eager: bool = False
    """vllm: no CUDA graphs (the release sets it; it changes speed, not the samples' distribution)."""
    worker_cpus: float = 1.0
    """Ray: CPUs reserved per worker (hf backend)."""
    retries: int = 3
    """Ray: times a shard is retried after its worker dies."""

    _FLAG_FIELDS: typing.ClassVar[tuple[str, ...]] = (
        "model", "benchmarks", "backend", "workers", "data_dir", "out", "judge_model",
    )

    def validate(self) -> None:
        problems = []
        if self.backend not in ("hf", "vllm"):
            problems.append(f"backend must be hf or vllm, got {self.backend!r}")
        if self.workers < 1:
            problems.append("workers must be >= 1")
        if self.n is not None and self.n < 1:
            problems.append("n must be >= 1")
        if self.temperature < 0:
            problems.append("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            problems.append("top_p must be in (0, 1]")
        if self.max_tokens < 1:
            problems.append("max_tokens must be >= 1")
        if self.batch_size is not None and self.batch_size < 1:
            problems.append("batch_size must be >= 1")
        if self.limit is not None and self.limit < 1:
            problems.append("limit must be >= 1")
        if "{problem}" not in self.prompt:
            problems.append("prompt must contain {problem}")
        if self.family not in (None, "all", "none", *bench_mod.families()):
            problems.append(f"family must be one of {', '.join(bench_mod.families())}, all or none")
        if self.bootstrap < 1:
            problems.append("bootstrap must be >= 1")
        if problems:
            raise EvalError("invalid evaluation settings: " + "; ".join(problems))

    def samples_per_call(self) -> int:
        return self.batch_size or (512 if self.backend == "vllm" else 32)

    def out_dir(self) -> Path:
        if self.out:
            return Path(self.out)
        name = Path(self.model.rstrip("/")).name or "model"
        return Path("runs") / "eval" / name

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def override_keys() -> list[str]:
    """The settings a ``key=value`` argument may change."""
    return [f.name for f in dataclasses.fields(EvalConfig) if f.name not in EvalConfig._FLAG_FIELDS]


def apply_overrides(config: EvalConfig, items: Iterable[str]) -> EvalConfig:
    """``config`` with ``["n=2", "temperature=0.6", ...]`` applied (typed, unknown keys refused)."""
    updates = config_mod.parse_overrides(items, error=EvalError)
    if "prompt" in updates:  # allow "\n" escapes in a prompt template given on the command line
        updates["prompt"] = updates["prompt"].encode().decode("unicode_escape")
    new = config_mod.apply(config, updates, source="the command line", allowed=override_keys(),
                           what="setting", error=EvalError)
    new.validate()
    return new


# --------------------------------------------------------------------------------------------
# The sampling plan
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleRequest:
    """One (problem, seed) pair to generate, and the release-format record it becomes."""

    benchmark: str
    example_id: int
    """The problem's row in the benchmark file (the release's ``example_id``)."""
    seed: int
    prompt: str
    """The formatted user message (what the release stores as ``prompt``)."""
    answer: str
    text: str
    """``prompt`` through the chat template: what the backend continues."""

    @property
    def key(self) -> tuple[int, int]:
        return (self.example_id, self.seed)

    def record(self, response: str) -> dict[str, Any]:
        """The output line, field for field as the release writes it."""
        return {"example_id": self.example_id, "prompt": self.prompt, "answer": self.answer,
                "seed": self.seed, "response": response}


@dataclass
class BenchmarkPlan:
    benchmark: Benchmark
    file: BenchmarkFile
    problems: list[Problem]
    samples_per_problem: int
    seeds: list[int]
    path: Path
    requests: list[SampleRequest]


def sample_seeds(base_seed: int, task: str, n: int) -> list[int]:
    """N distinct seeds for a benchmark, as the release draws them (``random.sample`` of
    ``range(2**31 - 1)``), but from a generator seeded by ``(base_seed, task)`` so a rerun draws
    the same ones. The first k seeds do not depend on n."""
    return random.Random(f"justrl-eval:{base_seed}:{task}").sample(range(2**31 - 1), n)


def output_name(task: str, temperature: float, top_p: float, n: int, max_tokens: int) -> str:
    """The release's file name: ``{task}_t{temperature}_p{top_p}_n{n}-MNT{max_tokens}.jsonl``."""
    return f"{task}_t{float(temperature)!r}_p{float(top_p)!r}_n{n}-MNT{max_tokens}.jsonl"


def format_prompt(template: str, problem: Problem) -> str:
    return template.format(problem=problem.prompt.strip())


def chat_text(tokenizer: Any, user_message: str) -> str:
    """The user message as one user turn through the tokenizer's chat template."""
    if getattr(tokenizer, "chat_template", None) is None:
        raise EvalError(
            "the model's tokenizer has no chat template; the paper's protocol sends each problem as a "
            "user turn through it (set one on the tokenizer and save it with the model)"
        )
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": user_message}], add_generation_prompt=True, tokenize=False
    )


def plan_benchmark(
    file: BenchmarkFile, config: EvalConfig, out_dir: Path, to_text: Callable[[str], str]
) -> BenchmarkPlan:
    bench = file.benchmark
    problems = bench_mod.load_problems(file, limit=config.limit)
    n = config.n or bench.samples_per_problem
    seeds = sample_seeds(config.seed, bench.task, n)
    path = out_dir / output_name(bench.task, config.temperature, config.top_p, n, config.max_tokens)
    requests = []
    for row, problem in enumerate(problems):
        prompt = format_prompt(config.prompt, problem)
        text = to_text(prompt)
        requests.extend(SampleRequest(bench.name, row, s, prompt, problem.ground_truth, text) for s in seeds)
    return BenchmarkPlan(bench, file, problems, n, seeds, path, requests)


# --------------------------------------------------------------------------------------------
# Resumable output files
# --------------------------------------------------------------------------------------------


class SampleFile:
    """One benchmark's JSONL output: append-only, one line per (example_id, seed), kill-safe.

    Opening it reads what is there: a last line cut short by a crash is dropped (or, if it is
    complete JSON that only lacks its newline, completed); every complete line marks its
    (example_id, seed) as done. :meth:`append` writes a line in one system call and refuses a
    pair that is already there.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.done: set[tuple[int, int]] = set()
        self.dropped_bytes = 0  # a partial last line removed on opening
        self.malformed_lines: list[int] = []
        self.duplicate_lines = 0  # pairs found twice in the file (never written by us)
        self._load()
        self._handle = self.path.open("ab", buffering=0)

    def _load(self) -> None:
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            tail = data[cut:]
            try:
                json.loads(tail)
            except ValueError:
                with self.path.open("r+b") as handle:
                    handle.truncate(cut)
                self.dropped_bytes = len(tail)
                data = data[:cut]
            else:
                with self.path.open("ab") as handle:
                    handle.write(b"\n")
        for line_no, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                key = (int(rec["example_id"]), int(rec["seed"]))
                if not isinstance(rec.get("response"), str):
                    raise ValueError("no response")
            except (ValueError, KeyError, TypeError):
                self.malformed_lines.append(line_no)
                continue
            if key in self.done:
                self.duplicate_lines += 1
            self.done.add(key)

    def append(self, record: dict[str, Any]) -> bool:
        """Write one record (False, and nothing written, if its pair is already there)."""
        key = (int(record["example_id"]), int(record["seed"]))
        if key in self.done:
            return False
        data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        view = memoryview(data)
        while view:
            written = self._handle.write(view)
            view = view[written:]
        self.done.add(key)
        return True

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> SampleFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_samples(path: str | Path) -> list[dict[str, Any]]:
    """The well-formed lines of an output file."""
    out = []
    with Path(path).open(encoding="utf-8") as handle:
        for line in handle:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and "example_id" in rec and "seed" in rec:
                out.append(rec)
    return out


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackendSpec:
    """How to build a generation backend; picklable, so each Ray worker builds its own."""

    kind: str
    model: str
    options: dict[str, Any] = field(default_factory=dict)

    def __call__(self) -> Any:
        if self.kind == "hf":
            return load_hf_generator(self.model, **self.options)
        if self.kind == "vllm":
            from justrl.vllm_backend import VLLMGenerator

            return VLLMGenerator(self.model, **self.options)
        raise EvalError(f"unknown backend {self.kind!r} (use hf or vllm)")


def load_hf_generator(model: str, *, device: str | None = None, dtype: str | None = None,
                      batch_size: int = 32) -> Any:
    """:func:`justrl.generation.load_hf_generator`, with a failure to load reported as an EvalError."""
    from justrl.generation import ModelLoadError
    from justrl.generation import load_hf_generator as load

    try:
        return load(model, device=device, dtype=dtype, batch_size=batch_size)
    except ModelLoadError as exc:
        raise EvalError(str(exc)) from exc


def backend_spec(config: EvalConfig) -> BackendSpec:
    if config.backend == "hf":
        options: dict[str, Any] = {"batch_size": config.samples_per_call()}
        options.update({k: v for k, v in (("device", config.device), ("dtype", config.dtype)) if v is not None})
    else:
        options = {
            "gpu_memory_utilization": config.gpu_memory_utilization,
            "tensor_parallel_size": config.tensor_parallel_size,
            "enforce_eager": config.enforce_eager,
            **({"dtype": config.dtype} if config.dtype else {}),
        }
    return BackendSpec(config.backend, config.model, options)


def gpus_per_worker(config: EvalConfig) -> int:
    """GPUs each Ray worker reserves: vllm's tensor-parallel size; one for hf on CUDA, else none."""
    if config.backend == "vllm":
        return config.tensor_parallel_size
    if config.device is not None:
        return 1 if config.device.startswith("cuda") else 0
    import torch

    return 1 if torch.cuda.is_available() else 0


def sampling_params(config: EvalConfig) -> Any:
    from justrl.generation import SamplingParams

    return SamplingParams(temperature=config.temperature, top_p=config.top_p,
                          max_new_tokens=config.max_tokens, seed=config.seed)


def order_for_batching(requests: Sequence[SampleRequest]) -> list[SampleRequest]:
    """Longest prompts first (an out-of-memory shows at once), one problem's samples together:
    batches of equal-length prompts waste no padding."""
    return sorted(requests, key=lambda r: (-len(r.text), r.example_id))


def generate_local(
    generator: Any,
    requests: Sequence[SampleRequest],
    params: Any,
    batch_size: int,
    on_result: Callable[[SampleRequest, Any], None],
) -> None:
    """Generate ``requests`` in batches in this process, each sample with its own seed."""
    for start in range(0, len(requests), batch_size):
        chunk = requests[start : start + batch_size]
        completions = generator.generate([r.text for r in chunk], params, seeds=[r.seed for r in chunk])
        for request, completion in zip(chunk, completions):
            on_result(request, completion)


class _Progress:
    """One rich bar per benchmark: generated/total samples, tokens/s, elapsed and ETA."""

    def __init__(self, console: Any):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description:<15}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>14}"), TimeElapsedColumn(), TextColumn("ETA"),
            TimeRemainingColumn(), console=console,
        )
        self._tokens: dict[Any, int] = {}
        self._start: dict[Any, float] = {}

    def __enter__(self) -> _Progress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)

    def add(self, name: str, total: int, done: int) -> Any:
        task = self._progress.add_task(name, total=total, completed=done, rate="", start=False)
        self._tokens[task] = 0
        return task

    def start(self, task: Any) -> None:
        """``task``'s clocks (elapsed, ETA, tokens/s) start now, unless they have already."""
        if task not in self._start:
            self._start[task] = time.perf_counter()
            self._progress.start_task(task)

    def advance(self, task: Any, tokens: int) -> None:
        self.start(task)
        start = self._start[task]
        self._tokens[task] += tokens
        elapsed = max(time.perf_counter() - start, 1e-9)
        self._progress.update(task, advance=1, rate=f"{self._tokens[task] / elapsed:,.0f} tok/s")


# --------------------------------------------------------------------------------------------
# Confidence intervals
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Grading and summary
# --------------------------------------------------------------------------------------------


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
    return Comparison(model, published, ours - published, not (ci[0] <= published <= ci[1]))


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


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def _show_template(template: str) -> str:
    """The user message a template makes, with ``{problem}`` left in (newlines shown as ``\\n``)."""
    return template.format(problem="{problem}").replace("\n", "\\n")


def _cell(comp: Comparison) -> str:
    if comp.published is None:
        return "–"
    mark = " †" if comp.outside_ci else ""
    return f"{comp.published:.2f} ({comp.difference:+.1f}){mark}"


def render_report(summary: Summary) -> str:
    """``report.md``: settings, the score table with CIs next to the published rows, notes."""
    s = summary.settings
    lines = [f"# Evaluation of `{summary.model}`", ""]
    lines += [
        "| setting | value |", "|---|---|",
        f"| backend | {s.get('backend')} (workers: {s.get('workers')}) |",
        f"| prompt | `{_show_template(str(s.get('prompt')))}` as one user turn through the chat template |",
        f"| sampling | temperature {s.get('temperature')}, top-p {s.get('top_p')}, "
        f"max new tokens {s.get('max_tokens')} |",
        f"| samples per problem | {s.get('n') or 'the paper’s N per benchmark'} (one seed per sample, "
        f"drawn from seed {s.get('seed')}) |",
        f"| grader | {s.get('grader')}"
        + (f" + judge `{s.get('judge_model')}`" if s.get("judge_model") else " (no model judge)") + " |",
    ]
    if s.get("limit"):
        lines.append(f"| problems | the first {s['limit']} of each benchmark only |")
    if s.get("nonrelease_files"):
        lines.append(f"| data | **differs from the release's files**: {', '.join(s['nonrelease_files'])} |")
    lines += ["", "## Scores", ""]
    lines.append(
        "avg@N in percent, with a 95% bootstrap confidence interval over problems (each problem's "
        "samples resampled together; 10,000 resamples unless set otherwise). Published scores are "
        "shown as `published (ours − published)`; † marks a published score outside our interval."
    )
    lines.append("")
    header = ["benchmark", "N", "problems", "ours", "95% CI"] + [r.model for r in summary.published]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] * 3 + ["---:"] * (len(header) - 3)) + "|")
    comps = {r.model: summary.comparisons(r) for r in summary.published}
    for sc in summary.scores:
        row = [sc.name, str(sc.samples_per_problem), str(sc.problems), f"{sc.score:.2f}",
               f"[{sc.ci_low:.1f}, {sc.ci_high:.1f}]"]
        row += [_cell(comps[r.model][sc.name]) for r in summary.published]
        lines.append("| " + " | ".join(row) + " |")
    if summary.average is not None and summary.average_ci is not None:
        row = ["**average**", "", "", f"**{summary.average:.2f}**",
               f"[{summary.average_ci[0]:.1f}, {summary.average_ci[1]:.1f}]"]
        row += [_cell(comps[r.model]["average"]) for r in summary.published]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    if summary.published:
        lines.append(
            "A published score outside our interval (†) means the difference is larger than the "
            "problem-sampling noise of this evaluation (at the 95% level); inside, this evaluation "
            "cannot tell the two apart. The published tables give no intervals of their own."
        )
    else:
        lines.append("No published rows shown (family: none).")
    lines += _grading_section(summary.grading)
    lines += ["", f"Chart: `{CHART_FILE}`. Raw samples: the `.jsonl` files; grades: `{RESULTS_FILE}`.", ""]
    return "\n".join(lines)


def _grading_section(grading: dict[str, Any]) -> list[str]:
    """Which stage settled the answers, per benchmark (from ``grading_results.json``)."""
    files = grading.get("files") or {}
    if not files:
        return []
    grader = grading.get("grader") or {}
    lines = ["", "## Grading", ""]
    judge = grader.get("judge")
    lines.append(f"Grader `{grader.get('verifier')}`" + (f" with judge `{judge}`." if judge else "; " + str(grader.get("note") or "no model judge") + "."))
    lines.append("")
    from justrl.verifiers import STAGE_JUDGE, STAGE_LENIENT, STAGE_RELEASE

    stages = [STAGE_RELEASE, STAGE_LENIENT] + ([STAGE_JUDGE] if judge else [])
    stages += sorted({st for m in files.values() for st in m.get("stages", {})} - set(stages))
    head = ["benchmark", "responses"] + [f"right by {st}" for st in stages] + [
        "wrong", "no \\boxed", "timeouts", "judge calls (saved)", "avg length", "pass@n"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|---|" + "---:|" * (len(head) - 1))
    for name, m in files.items():
        st = m.get("stages", {})
        wrong = sum(c.get("incorrect", 0) for c in st.values())
        row = [name, str(m.get("responses"))] + [str(st.get(x, {}).get("correct", 0)) for x in stages] + [
            str(wrong), str(m.get("format_error_rollouts")), str(m.get("timeouts")),
            f"{m.get('judge_calls')} ({m.get('judge_calls_saved')})",
            f"{m.get('avg_output_length', 0):.0f} {m.get('avg_output_length_unit', '')}",
            f"{100 * m.get('best_score', 0):.1f}"]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def plot_scores(summary: Summary, path: str | Path) -> Path:
    """Bar chart: ours with 95% CI error bars, next to the published rows, per benchmark."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [s.name for s in summary.scores]
    ours = [s.score for s in summary.scores]
    lows = [s.score - s.ci_low for s in summary.scores]
    highs = [s.ci_high - s.score for s in summary.scores]
    if summary.average is not None and summary.average_ci is not None:
        labels.append("Average")
        ours.append(summary.average)
        lows.append(summary.average - summary.average_ci[0])
        highs.append(summary.average_ci[1] - summary.average)
    series = [(f"{Path(summary.model.rstrip('/')).name} (ours, 95% CI)", ours, (lows, highs))]
    for row in summary.published:
        vals = [row.scores.get(s.name) for s in summary.scores]
        if summary.average is not None:
            vals.append(row.average_over([s.name for s in summary.scores]))
        series.append((row.model, [np.nan if v is None else v for v in vals], None))
    x = np.arange(len(labels))
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(min(16.0, 4.0 + 1.2 * len(labels)), 5.5))
    for i, (name, values, err) in enumerate(series):
        pos = x - 0.4 + width * (i + 0.5)
        if err is None:
            ax.bar(pos, values, width, label=name, alpha=0.75)
        else:
            ax.bar(pos, values, width, label=name, color="black", alpha=0.85,
                   yerr=np.array(err), capsize=3, ecolor="tab:red")
    ax.set_xticks(x, labels, rotation=30, ha="right")
    ax.set_ylabel("avg@N (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"{Path(summary.model.rstrip('/')).name}: JustRL benchmarks")
    ax.legend(fontsize=8, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.22), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def print_table(summary: Summary, console: Any) -> None:
    from rich.table import Table

    table = Table(title=f"{summary.model}: avg@N (%) with 95% bootstrap CI")
    for col in ("benchmark", "N", "problems", "ours", "95% CI"):
        table.add_column(col, justify="left" if col == "benchmark" else "right")
    for r in summary.published:
        table.add_column(r.model, justify="right")
    comps = {r.model: summary.comparisons(r) for r in summary.published}
    for sc in summary.scores:
        table.add_row(sc.name, str(sc.samples_per_problem), str(sc.problems), f"{sc.score:.2f}",
                      f"[{sc.ci_low:.1f}, {sc.ci_high:.1f}]",
                      *[_cell(comps[r.model][sc.name]) for r in summary.published])
    if summary.average is not None and summary.average_ci is not None:
        table.add_row("average", "", "", f"{summary.average:.2f}",
                      f"[{summary.average_ci[0]:.1f}, {summary.average_ci[1]:.1f}]",
                      *[_cell(comps[r.model]["average"]) for r in summary.published])
    console.print(table)


# --------------------------------------------------------------------------------------------
# The whole run
# --------------------------------------------------------------------------------------------


@dataclass
class EvalResult:
    out_dir: Path
    files: dict[str, Path]
    generated: int
    """Samples generated by this call (0 when everything was already there)."""
    summary: Summary
    report: Path
    chart: Path


def _check_run_dir(out_dir: Path, config: EvalConfig) -> None:
    """Refuse to mix samples of another model, prompt or seed into an output folder."""
    path = out_dir / CONFIG_FILE
    if not path.is_file():
        return
    try:
        previous = json.loads(path.read_text(encoding="utf-8")).get("settings", {})
    except ValueError:
        return
    for key in ("model", "prompt", "seed"):
        if key in previous and previous[key] != getattr(config, key):
            raise EvalError(
                f"{out_dir} holds an evaluation with {key}={previous[key]!r}, not {getattr(config, key)!r}; "
                "resuming would mix the two. Use another --out."
            )


def _load_tokenizer(model: str) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(model)
    except Exception as exc:  # OSError for a missing path/hub id, others for broken folders
        raise EvalError(f"cannot load the tokenizer of {model!r}: {exc}") from exc


def run(config: EvalConfig, *, console: Any = None, backend: Callable[[], Any] | None = None) -> EvalResult:
    """Generate what is missing, grade, and report. Safe to rerun (it resumes).

    ``backend``: a zero-argument callable returning a generator, instead of the one ``config``
    names (it must be picklable when ``workers > 1``).
    """
    from rich.console import Console

    config.validate()
    from justrl import verifiers

    if config.grader not in verifiers.known_verifiers():  # fail now, not after hours of generation
        raise EvalError(f"unknown grader {config.grader!r}; known: {', '.join(verifiers.known_verifiers())}")
    console = console or Console(stderr=True, width=max(160, Console(stderr=True).width))
    out_dir = config.out_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_run_dir(out_dir, config)

    selected = bench_mod.select(config.benchmarks)
    files = bench_mod.locate(selected, config.data_dir)
    tokenizer = _load_tokenizer(config.model)
    plans = [plan_benchmark(files[b.name], config, out_dir, lambda m: chat_text(tokenizer, m)) for b in selected]
    settings = {**config.to_dict(), "out": str(out_dir)}
    settings["nonrelease_files"] = [f.benchmark.name for f in files.values() if not f.is_release_file]
    _write_config(out_dir, settings, plans)

    generated = _generate(plans, config, console, backend or backend_spec(config))

    grading = _grade(out_dir, plans, config, tokenizer, console)
    scores = [
        score_benchmark(p.benchmark.name, p.samples_per_problem, p.path, grading["per_problem"][p.benchmark.name],
                        samples=grading["samples"][p.benchmark.name], resamples=config.bootstrap, seed=config.seed)
        for p in plans
    ]
    family = config.family or bench_mod.family_of(config.model)
    summary = summarize(config.model, scores, family=family, settings=settings,
                        resamples=config.bootstrap, seed=config.seed, grading=grading["counts"])
    (out_dir / SUMMARY_FILE).write_text(json.dumps(summary.to_dict(), indent=1), encoding="utf-8")
    report = out_dir / REPORT_FILE
    report.write_text(render_report(summary), encoding="utf-8")
    chart = plot_scores(summary, out_dir / CHART_FILE)
    print_table(summary, console)
    console.print(f"report: {report}  chart: {chart}  grades: {out_dir / RESULTS_FILE}")
    return EvalResult(out_dir, {p.benchmark.name: p.path for p in plans}, generated, summary, report, chart)


def _write_config(out_dir: Path, settings: dict[str, Any], plans: list[BenchmarkPlan]) -> None:
    from justrl import __version__

    record = {
        "justrl_version": __version__,
        "settings": settings,
        "benchmarks": {
            p.benchmark.name: {
                "file": p.path.name, "samples_per_problem": p.samples_per_problem, "seeds": p.seeds,
                "problems": len(p.problems), "data": str(p.file.path), "sha256": p.file.sha256,
                "release_file": p.file.is_release_file,
            }
            for p in plans
        },
    }
    tmp = out_dir / (CONFIG_FILE + ".tmp")
    tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
    os.replace(tmp, out_dir / CONFIG_FILE)


def _generate(plans: list[BenchmarkPlan], config: EvalConfig, console: Any, make_backend: Callable[[], Any]) -> int:
    """Generate every missing (problem, seed) of every plan; returns how many were generated."""
    sample_files = {p.benchmark.name: SampleFile(p.path) for p in plans}
    pending = {
        p.benchmark.name: [r for r in p.requests if r.key not in sample_files[p.benchmark.name].done] for p in plans
    }
    for name, sf in sample_files.items():
        if sf.dropped_bytes:
            console.print(f"{name}: dropped a partial last line ({sf.dropped_bytes} bytes) left by an interrupted run")
    generated = 0
    try:
        if not any(pending.values()):
            console.print("all samples already generated; grading")
            return 0
        params = sampling_params(config)
        with _Progress(console) as progress:
            bars = {p.benchmark.name: progress.add(p.benchmark.name, len(p.requests), len(p.requests) - len(pending[p.benchmark.name]))
                    for p in plans}

            def on_result(request: SampleRequest, completion: Any) -> None:
                nonlocal generated
                if sample_files[request.benchmark].append(request.record(completion.text)):
                    generated += 1
                    progress.advance(bars[request.benchmark], len(completion.token_ids))

            def on_submit(requests: Sequence[SampleRequest]) -> None:
                for name in {r.benchmark for r in requests}:
                    progress.start(bars[name])

            if config.workers > 1:
                from justrl import ray_eval

                # One queue over all benchmarks, so no worker idles at a benchmark's end.
                queue = [r for p in plans for r in order_for_batching(pending[p.benchmark.name])]
                with ray_eval.WorkerPool(make_backend, config.workers, cpus_per_worker=config.worker_cpus,
                                         gpus_per_worker=gpus_per_worker(config),
                                         max_retries=config.retries, log=console.print) as pool:
                    pool.generate(queue, params, config.samples_per_call(), on_result, on_submit=on_submit)
            else:
                generator = make_backend()
                for p in plans:
                    requests = order_for_batching(pending[p.benchmark.name])
                    if requests:
                        on_submit(requests)
                        generate_local(generator, requests, params, config.samples_per_call(), on_result)
    finally:
        for sf in sample_files.values():
            sf.close()
    return generated


def _judge(config: EvalConfig) -> Any:
    """The model judge of ``--judge-model``, on the evaluation's backend; None without one."""
    if not config.judge_model:
        return None
    from justrl import judge as judge_mod

    if config.backend == "vllm":
        from justrl.vllm_backend import VLLMGenerator

        generator = VLLMGenerator(config.judge_model, gpu_memory_utilization=config.gpu_memory_utilization,
                                  tensor_parallel_size=config.tensor_parallel_size)
        return judge_mod.CompassVerifierJudge(
            generator, judge_mod.chat_template_of(generator.tokenizer), name=config.judge_model)
    options = {k: v for k, v in (("device", config.device), ("dtype", config.dtype)) if v is not None}
    return judge_mod.load_judge(config.judge_model, **options)


def _grade(out_dir: Path, plans: list[BenchmarkPlan], config: EvalConfig, tokenizer: Any,
           console: Any) -> dict[str, Any]:
    """Grade the folder (``grading_results.json``) and pick out this run's files."""
    from justrl import grading

    report = grading.grade_dir(
        out_dir, verifier=config.grader, judge=_judge(config), tokenizer=tokenizer,
        show_progress=bool(getattr(console, "is_terminal", False)),
        log=lambda message: console.print(message, markup=False),
    )
    per_problem: dict[str, dict[int, float]] = {}
    samples: dict[str, int] = {}
    files: dict[str, Any] = {}
    for p in plans:
        metrics = report["files"].get(p.path.name)
        if metrics is None:
            raise EvalError(f"{p.path}: the grader did not read this file")
        name = p.benchmark.name
        per_problem[name] = {int(k): float(v) for k, v in metrics["per_problem"].items()}
        samples[name] = int(metrics["responses"])
        files[name] = {k: v for k, v in metrics.items() if k != "per_problem"}
    return {"per_problem": per_problem, "samples": samples,
            "counts": {"grader": report["grader"], "files": files}}
