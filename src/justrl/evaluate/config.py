"""The settings of an evaluation (:class:`EvalConfig`): defaults are the paper's protocol, and every
one but the command-line flags can be changed with ``key=value`` (typed by :mod:`justrl.config`).

The settings are recorded in the output folder (``eval_config.json``), so a report can always say
how its numbers were made, and a rerun can check it continues the same evaluation.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from justrl import config as config_mod
from justrl.data import benchmarks as bench_mod
from justrl.errors import EvalError

# The release's PROMPT_TEMPLATE: one space after the problem, no newline.
EVAL_PROMPT = "{problem} Please reason step by step, and put your final answer within \\boxed{{}}."
OUTPUT_FORMATS = ("justrl", "lm-eval")
CONFIG_FILE = "eval_config.json"
"""The settings, seeds and data checksums of the evaluation in an output folder."""


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
    format: str = "justrl"
    """Extra output: ``justrl`` (none) or ``lm-eval`` (also ``results_<date>.json`` and
    ``samples_<task>_<date>.jsonl`` below ``OUT/lm-eval/``, as lm-evaluation-harness writes them)."""

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
    max_model_len: int | None = None
    """vllm: the engine's context (prompt + response); default: the model config's."""
    allow_truncated_budget: bool = False
    """vllm: run even when the longest prompt + ``max_tokens`` exceeds the context (those responses
    stop at the context); otherwise refused before generation. The budget really given is recorded."""
    judge_gpu_memory_utilization: float = 0.9
    """vllm judge: share of GPU memory its engine may take (it starts after the policy's has ended)."""
    judge_tensor_parallel_size: int = 1
    """vllm judge: GPUs for its engine (the release: 1)."""
    judge_max_model_len: int | None = None
    """vllm judge: its engine's context; default: its longest prompt + 2,048, within the model's."""
    judge_batch_tokens: int | None = None
    """Judge: tokens per generate call, longest prompts first; default 65,536 (hf), 1,048,576 (vllm)."""
    worker_cpus: float = 1.0
    """Ray: CPUs reserved per worker (hf backend)."""
    retries: int = 3
    """Ray: times a shard is retried after its worker dies."""

    _FLAG_FIELDS: typing.ClassVar[tuple[str, ...]] = (
        "model", "benchmarks", "backend", "workers", "data_dir", "out", "judge_model", "format",
    )

    def validate(self) -> None:
        problems = [f"{f.name} must be a finite number (got {getattr(self, f.name)})"
                    for f in dataclasses.fields(self)
                    if isinstance(getattr(self, f.name), float) and not math.isfinite(getattr(self, f.name))]
        if problems:  # NaN passes every range check below
            raise EvalError("invalid evaluation settings: " + "; ".join(problems))
        if self.seed < 0:
            problems.append(f"seed must be >= 0 (got {self.seed})")
        if self.format not in OUTPUT_FORMATS:
            problems.append(f"format must be one of {', '.join(OUTPUT_FORMATS)}, got {self.format!r}")
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
        problems += self._engine_problems()
        if problems:
            raise EvalError("invalid evaluation settings: " + "; ".join(problems))

    def _engine_problems(self) -> list[str]:
        problems = []
        if self.device is not None and self.device.startswith("cuda:") and self.workers > 1:
            problems.append(
                f"device={self.device} names one GPU, but each of the {self.workers} Ray workers sees only "
                "the GPU Ray gives it (as cuda:0); use device=cuda, or leave device unset"
            )
        for key in ("gpu_memory_utilization", "judge_gpu_memory_utilization"):
            if not 0 < getattr(self, key) <= 1:
                problems.append(f"{key} must be in (0, 1]")
        for key in ("tensor_parallel_size", "judge_tensor_parallel_size", "max_model_len",
                    "judge_max_model_len", "judge_batch_tokens"):
            value = getattr(self, key)
            if value is not None and value < 1:
                problems.append(f"{key} must be >= 1")
        return problems

    def samples_per_call(self) -> int:
        return self.batch_size or (512 if self.backend == "vllm" else 32)

    def out_dir(self) -> Path:
        if self.out:
            return Path(self.out)
        return Path("runs") / "eval" / default_out_name(self.model)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def default_out_name(model: str) -> str:
    """The default output folder's name: the model's, led by its run's name where the model is a
    run's ``final/`` or one of its checkpoints (``runs/eval/toy-final``, not ``runs/eval/final``
    for every trained run)."""
    path = Path(model.rstrip("/"))
    if path.exists():
        path = path.resolve()
    name = path.name or "model"
    if name == "final" or name.startswith(("step_", "step-", "checkpoint")):
        owner = path.parent
        if owner.name == "checkpoints":
            owner = owner.parent
        if owner.name:
            return f"{owner.name}-{name}"
    return name


def check_device(device: str | None) -> None:
    """Refuse a torch device this machine does not have, before any model loads."""
    if device is None:
        return
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise EvalError(f"device={device!r}: not a torch device ({exc})") from None
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (parsed.index or 0) >= count:
            raise EvalError(f"device={device!r}: this machine has {count} CUDA device(s); use device=cpu "
                            "or leave device unset")


def override_keys() -> list[str]:
    """The settings a ``key=value`` argument may change."""
    return [f.name for f in dataclasses.fields(EvalConfig) if f.name not in EvalConfig._FLAG_FIELDS]


def apply_overrides(config: EvalConfig, items: Iterable[str]) -> EvalConfig:
    """``config`` with ``["n=2", "temperature=0.6", ...]`` applied (typed, unknown keys refused)."""
    updates = config_mod.parse_overrides(items, error=EvalError)
    if "prompt" in updates:  # "\n" in a template given on the command line is a newline and "\\" one
        # backslash; any other backslash is kept as typed (the paper's suffix: a literal "\boxed{}")
        updates["prompt"] = re.sub(r"\\([\\n])", lambda m: "\n" if m.group(1) == "n" else "\\",
                                   updates["prompt"])
    new = config_mod.apply(config, updates, source="the command line", allowed=override_keys(),
                           what="setting", error=EvalError)
    new.validate()
    return new
