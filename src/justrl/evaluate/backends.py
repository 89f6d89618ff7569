"""Generation backends of an evaluation: which one the settings name, how it is built (here or in a
Ray worker), how requests are generated in this process, and the progress bars.

A backend is anything with ``generate(texts, params, seeds=...)`` returning completions
(``justrl.generate.hf.HFGenerator``, ``justrl.generate.vllm.VLLMGenerator``, or a stand-in in tests).
It is described by a picklable :class:`BackendSpec` rather than built at once, so that with
``--workers K`` each Ray actor builds its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from justrl import logs
from justrl.errors import EvalError
from justrl.evaluate.config import EvalConfig
from justrl.evaluate.plan import SampleRequest


@dataclass(frozen=True)
class BackendSpec:
    """How to build a generation backend; picklable, so each Ray worker builds its own."""

    kind: str
    model: str
    options: dict[str, Any] = field(default_factory=dict)

    def __call__(self) -> Any:
        if self.kind == "hf":
            from justrl.generate.factory import load_hf_generator

            return load_hf_generator(self.model, **self.options)
        if self.kind == "vllm":
            from justrl.generate.vllm import VLLMGenerator

            return VLLMGenerator(self.model, **self.options)
        raise EvalError(f"unknown backend {self.kind!r} (use hf or vllm)")


def _device_options(config: EvalConfig) -> dict[str, Any]:
    """The hf backend's ``device`` and ``dtype``, where the settings give them."""
    return {k: v for k, v in (("device", config.device), ("dtype", config.dtype)) if v is not None}


def backend_spec(config: EvalConfig) -> BackendSpec:
    """The backend the settings name, with its options."""
    if config.backend == "hf":
        options: dict[str, Any] = {"batch_size": config.samples_per_call(), **_device_options(config)}
    else:
        options = {
            "gpu_memory_utilization": config.gpu_memory_utilization,
            "tensor_parallel_size": config.tensor_parallel_size,
            "enforce_eager": config.enforce_eager,
            **({"dtype": config.dtype} if config.dtype else {}),
            **({"max_model_len": config.max_model_len} if config.max_model_len else {}),
        }
    return BackendSpec(config.backend, config.model, options)


def gpus_per_worker(config: EvalConfig) -> int | None:
    """GPUs each Ray worker reserves: vllm's tensor-parallel size; for hf one on ``device=cuda``,
    none on ``device=cpu``, and unset: None, for the pool to decide from the cluster's GPUs (not
    from this process, which may run on a CPU-only head node)."""
    if config.backend == "vllm":
        return config.tensor_parallel_size
    if config.device is not None:
        return 1 if config.device.startswith("cuda") else 0
    return None


def sampling_params(config: EvalConfig) -> Any:
    """The settings' sampling parameters (each request still brings its own seed)."""
    from justrl.generate.hf import SamplingParams

    return SamplingParams(temperature=config.temperature, top_p=config.top_p,
                          max_new_tokens=config.max_tokens, seed=config.seed)


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


def judge_engine(config: EvalConfig) -> Any:
    """The judge's engine settings: its own GPU share, tensor-parallel size and context."""
    from justrl.evaluate.judge import JudgeEngine

    return JudgeEngine(
        backend=config.backend, device=config.device, dtype=config.dtype,
        gpu_memory_utilization=config.judge_gpu_memory_utilization,
        tensor_parallel_size=config.judge_tensor_parallel_size, enforce_eager=config.enforce_eager,
        max_model_len=config.judge_max_model_len, batch_tokens=config.judge_batch_tokens,
    )


def load_judge(config: EvalConfig) -> Any:
    """The model judge of ``--judge-model``, on the evaluation's backend; None without one. Its
    model loads when grading first has answers for it (after the policy's engine has ended)."""
    if not config.judge_model:
        return None
    from justrl.evaluate import judge as judge_mod

    return judge_mod.load_judge(config.judge_model, engine=judge_engine(config))


class GenerationProgress:
    """One rich bar per benchmark: generated/total samples, tokens/s, elapsed and ETA.

    The bars draw on :func:`justrl.logs.console` (so log messages appear above them) and are not
    drawn when :func:`justrl.logs.progress_enabled` is false (``--quiet``, or no terminal).
    """

    def __init__(self) -> None:
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
            TimeRemainingColumn(), console=logs.console(), disable=not logs.progress_enabled(),
        )
        self._tokens: dict[Any, int] = {}
        self._start: dict[Any, float] = {}

    def __enter__(self) -> GenerationProgress:
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
