"""The sampling plan: which (problem, seed) pairs a benchmark needs, what text each one sends to
the model, and which file its line goes to.

Everything here is a pure function of the settings and the benchmark file: the seeds are drawn from
``(seed, task)``, the prompts from the template and the chat template, the file name from the
sampling settings. That is what lets a rerun recompute the same plan and generate only what its
output files lack (see :mod:`justrl.evaluate.samples`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from justrl.data import benchmarks as bench_mod
from justrl.data.benchmarks import Benchmark, BenchmarkFile
from justrl.data.problems import Problem
from justrl.errors import EvalError, ModelLoadError
from justrl.evaluate.config import EvalConfig


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
    """One benchmark's part of the evaluation: its problems, seeds, output file and requests."""

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
    """The template with ``{problem}`` replaced: only that field, so a literal ``\\boxed{}`` (the
    paper's own suffix) is kept as written; ``{{``/``}}`` still read as ``{``/``}`` (the
    ``str.format`` escapes of the default template)."""
    return fill_template(template, problem.prompt.strip())


def fill_template(template: str, problem: str) -> str:
    parts = template.split("{problem}")
    return problem.join(part.replace("{{", "{").replace("}}", "}") for part in parts)


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


def order_for_batching(requests: Sequence[SampleRequest]) -> list[SampleRequest]:
    """Longest prompts first (an out-of-memory shows at once), one problem's samples together:
    batches of equal-length prompts waste no padding."""
    return sorted(requests, key=lambda r: (-len(r.text), r.example_id))


def load_tokenizer(model: str, what: str = "model") -> Any:
    """The model's tokenizer, whose chat template turns each prompt into the text to continue."""
    from transformers import AutoTokenizer

    from justrl.generate.model_files import check_source

    check_source(model, what)
    try:
        return AutoTokenizer.from_pretrained(model)
    except Exception as exc:  # OSError for a missing path/hub id, others for broken folders
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"cannot load the tokenizer of {model!r}: {first}") from exc
