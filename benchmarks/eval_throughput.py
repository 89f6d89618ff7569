"""Throughput of ``justrl eval --backend hf`` against a plain ``model.generate`` loop.

Same tiny local model (the CPU demo's Qwen2 architecture), same prompts (the first MATH-500
problems in the paper's prompt, through the chat template), same samples per problem, sampling
settings, max new tokens and batch size, in one process. The harness is timed end to end for
generation: planning, batching, per-sample seeds, the resumable JSONL writer and the progress bars
(grading and the report are not generation and are left out). The plain loop only generates.
Tokens are the generated tokens, the stop token included, in both.

Both run with the same torch thread count (default 1: on a shared 2-core machine, two OpenMP
threads stall whenever another process holds a core, which buries any difference under noise),
alternating, ``--repeats`` times; the best run of each is compared (the median is printed too).

Then the gain from ``--workers 2``: the same samples (4x as many) in this process and over two Ray
actors of one thread each, with Ray's start-up (actors loading the model) timed apart; the samples
are compared (they match but for rare float-rounding flips).

Usage: python benchmarks/eval_throughput.py [--problems 16] [--n 4] [--max-tokens 64] [--batch 16]
The last line is ``ratio justrl/plain-generate: X`` (X >= 1.0 means the harness adds no overhead).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import torch  # noqa: E402

from justrl import evaluate as E  # noqa: E402
from justrl.data import benchmarks as B  # noqa: E402
from justrl.data import toy  # noqa: E402

WORK_DIR: Path = Path(tempfile.gettempdir())  # set in main() to a folder removed at the end
DATA = B.packaged_dir()  # the nine benchmark files that ship with justrl


@dataclasses.dataclass(frozen=True)
class CountingSpec:
    """The hf backend, counting the tokens it generates (in this process)."""

    spec: E.BackendSpec

    def __call__(self):
        return _Counting(self.spec())


class _Counting:
    tokens = 0

    def __init__(self, inner):
        self.inner = inner

    def generate(self, prompts, params, seeds=None):
        out = self.inner.generate(prompts, params, seeds=seeds)
        _Counting.tokens += sum(len(c.token_ids) for c in out)
        return out


def run_harness(config: E.EvalConfig) -> tuple[float, int, Path]:
    """Seconds and tokens of the harness's generation phase (a fresh output folder each time)."""
    out = Path(tempfile.mkdtemp(prefix="eval-", dir=WORK_DIR))
    config = dataclasses.replace(config, out=str(out))
    files = B.locate(B.select(config.benchmarks), config.data_dir)
    tokenizer = E.load_tokenizer(config.model)
    plans = [
        E.plan_benchmark(files[b.name], config, out, lambda m: E.chat_text(tokenizer, m))
        for b in B.select(config.benchmarks)
    ]
    _Counting.tokens = 0
    spec = CountingSpec(E.backend_spec(config)) if config.workers == 1 else E.backend_spec(config)
    start = time.perf_counter()
    E.generate_missing(plans, config, spec)
    seconds = time.perf_counter() - start
    return seconds, _Counting.tokens, plans[0].path


def run_plain(model, tokenizer, texts: list[str], config: E.EvalConfig) -> tuple[float, int]:
    """A plain loop: left-padded batches through ``model.generate`` with the same settings."""
    eos = tokenizer.eos_token_id
    tokens = 0
    torch.manual_seed(config.seed)
    start = time.perf_counter()
    for i in range(0, len(texts), config.samples_per_call()):
        batch = tokenizer(
            texts[i : i + config.samples_per_call()],
            return_tensors="pt",
            padding=True,
            padding_side="left",
            add_special_tokens=False,
        )
        with torch.no_grad():
            out = model.generate(
                **batch,
                do_sample=True,
                temperature=config.temperature,
                top_p=config.top_p,
                top_k=0,
                max_new_tokens=config.max_tokens,
                pad_token_id=tokenizer.pad_token_id,
            )
        for row in out[:, batch["input_ids"].shape[1] :].tolist():
            tokens += row.index(eos) + 1 if eos in row else len(row)
    return time.perf_counter() - start, tokens


def measure_workers(config: E.EvalConfig, requests: list[E.SampleRequest]) -> None:
    """The same samples in this process and over 2 Ray workers (1 thread each): Ray's start-up
    (actors loading the model) and the generation itself, timed apart; samples compared."""
    from justrl.evaluate.ray_workers import WorkerPool

    items = E.order_for_batching(requests)
    params = E.sampling_params(config)
    spec = E.backend_spec(config)
    local: dict[tuple[int, int], list[int]] = {}
    start = time.perf_counter()
    E.generate_local(
        spec(), items, params, config.samples_per_call(), lambda r, c: local.__setitem__(r.key, c.token_ids)
    )
    one = time.perf_counter() - start
    spread: dict[tuple[int, int], list[int]] = {}
    start = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()), WorkerPool(spec, 2) as pool:
        pool.pids()  # both actors up, model loaded
        ready = time.perf_counter()
        pool.generate(
            items, params, config.samples_per_call(), lambda r, c: spread.__setitem__(r.key, c.token_ids)
        )
        done = time.perf_counter()
    tokens = sum(len(t) for t in local.values())
    print(
        f"{len(items)} samples: --workers 1: {tokens / one:,.0f} tok/s; --workers 2: {tokens / (done - ready):,.0f} tok/s after "
        f"{ready - start:.1f}s of Ray start-up -> gain {one / (done - ready):.2f}x "
        f"({one / (done - start):.2f}x start-up included); identical samples: "
        f"{sum(local[k] == spread.get(k) for k in local)}/{len(local)}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", type=int, default=16)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads of this process")
    ap.add_argument("--no-workers", action="store_true", help="skip the --workers 2 measurement")
    ap.add_argument(
        "--workers-scale", type=int, default=4, help="problems x this for the workers measurement"
    )
    args = ap.parse_args()
    if not (DATA / "MATH-500" / "test.parquet").is_file():
        print(f"benchmark files not found at {DATA}", file=sys.stderr)
        return 2

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="justrl-throughput-") as work:
        global WORK_DIR
        WORK_DIR = Path(work)
        return measure(args)


def measure(args: argparse.Namespace) -> int:
    model_dir = WORK_DIR / "tiny-model"
    tokenizer = toy.build_tokenizer()
    model = toy.build_model(tokenizer)  # the CPU demo's size
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    model.eval()

    config = E.EvalConfig(model=str(model_dir), benchmarks=["MATH-500"], data_dir=str(DATA))
    config = E.apply_overrides(
        config,
        [
            f"n={args.n}",
            f"limit={args.problems}",
            f"max_tokens={args.max_tokens}",
            f"batch_size={args.batch}",
            "device=cpu",
        ],
    )
    file = B.locate([B.get("MATH-500")], DATA)["MATH-500"]
    plan = E.plan_benchmark(file, config, model_dir, lambda m: E.chat_text(tokenizer, m))
    texts = [r.text for r in E.order_for_batching(plan.requests)]  # the harness's batches
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; tiny Qwen2 "
        f"({sum(p.numel() for p in model.parameters()) / 1e6:.2f} M params); {len(texts)} samples "
        f"({args.problems} MATH-500 problems x n={args.n}), max_tokens={args.max_tokens}, batch {args.batch}, "
        f"temperature {config.temperature}, top-p {config.top_p}"
    )

    with contextlib.redirect_stderr(io.StringIO()):  # warm-up: first-call costs out of the timings
        run_plain(model, tokenizer, texts[: args.batch], dataclasses.replace(config, max_tokens=4))
        run_harness(dataclasses.replace(config, limit=2, max_tokens=4))
    harness, plain = [], []
    for rep in range(args.repeats):  # alternate, so drift hits both
        with contextlib.redirect_stderr(io.StringIO()):
            s, t, path = run_harness(config)
        harness.append(t / s)
        s2, t2 = run_plain(model, tokenizer, texts, config)
        plain.append(t2 / s2)
        print(
            f"rep {rep}: justrl hf {t} tokens in {s:.2f}s = {t / s:,.0f} tok/s | "
            f"plain generate {t2} tokens in {s2:.2f}s = {t2 / s2:,.0f} tok/s"
        )
    ours, theirs = max(harness), max(plain)
    print(f"justrl hf backend: best {ours:,.0f} tok/s (median {statistics.median(harness):,.0f}); "
          f"plain model.generate loop: best {theirs:,.0f} tok/s (median {statistics.median(plain):,.0f})")

    if not args.no_workers:
        bigger = dataclasses.replace(config, limit=args.problems * args.workers_scale)
        measure_workers(
            bigger, E.plan_benchmark(file, bigger, model_dir, lambda m: E.chat_text(tokenizer, m)).requests
        )
    print(f"ratio justrl/plain-generate: {ours / theirs:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
