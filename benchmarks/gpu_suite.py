"""One command that measures the project on one GPU, at DeepSeek-R1-Distill-Qwen-1.5B's shape.

The model is built from the architecture alone (Qwen2: hidden 1536, 28 layers, 12 heads, 2 KV
heads, intermediate 8960, vocabulary 151,936; random weights, nothing downloaded); the tokenizer is
the CPU demo's byte-level one (its ids are a subset of the model's). Sections, each with its own
time limit, each reporting its failure and letting the next one run:

1. ``generation``: plain ``model.generate`` (dynamic cache) against our rollout path
   (:class:`justrl.generate.static.StaticCacheGenerator`: static cache, compiled decode step)
   at 64 / 256 / 512 sequences of 256-token prompts and 256 sampled tokens, in tokens/s; ours
   cold (compilation included) and warm.
2. ``grpo-step``: one native GRPO step (``justrl.train.loop.train``) at reduced size, 32 prompts x 8
   rollouts of up to 2,048 tokens: seconds per phase and peak memory.
3. ``long-pass``: one training forward+backward (float32 master weights, bfloat16 autocast,
   gradient checkpointing, chunked log-probs) over 8 sequences of 16k tokens, one per micro-batch:
   tokens/s, MFU and peak memory.
4. ``eval-hf``: the ``hf`` evaluation backend (``justrl.evaluate.run``) on 64 MATH-500 prompts.

Run on a GPU machine (torch and transformers installed; the wheels of scripts/gpu_bundle.sh for
the eval section's grader):

    PYTHONPATH=src python benchmarks/gpu_suite.py [--json results.json] [--budget 450]

On a machine without CUDA it prints why it skipped and exits 0; ``--tiny`` runs every section at
toy size on any device (the CPU test of this script). The last line is always
``ratio rollout/plain-generate: X`` (at the largest batch; ``n/a`` with the reason if not measured).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

R1_DISTILL_1_5B = dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                       num_key_value_heads=2, vocab_size=151936, max_position_embeddings=131072,
                       rope_theta=10000.0, rms_norm_eps=1e-6, tie_word_embeddings=False)
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=512, max_position_embeddings=4096, tie_word_embeddings=False)
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "H800": 989.0, "A100": 312.0, "L40S": 362.0}
"""Dense bf16 peak by chip (SXM figures), the MFU denominator."""


@dataclass
class Sizes:
    gen_batches: tuple[int, ...] = (64, 256, 512)
    prompt_tokens: int = 256
    new_tokens: int = 256
    grpo_prompts: int = 32
    grpo_rollouts: int = 8
    grpo_response_tokens: int = 2048
    long_sequences: int = 8
    long_tokens: int = 16384
    eval_prompts: int = 64
    eval_max_tokens: int = 1024


TINY_SIZES = Sizes(gen_batches=(2, 4, 8), prompt_tokens=8, new_tokens=8, grpo_prompts=4, grpo_rollouts=2,
                   grpo_response_tokens=16, long_sequences=2, long_tokens=64, eval_prompts=4, eval_max_tokens=8)


class SectionTimeout(Exception):
    pass


@dataclass
class Suite:
    shape: dict[str, Any]
    sizes: Sizes
    device: torch.device
    data_dir: Path | None
    deadline: float
    results: dict[str, Any] = field(default_factory=dict)
    ratio: str = "n/a (generation section did not finish)"
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="gpu-suite-")))
    _tokenizer: Any = None
    _saved: Path | None = None

    # --- shared pieces -------------------------------------------------------------------------

    def tokenizer(self):
        if self._tokenizer is None:
            from justrl.data import toy

            self._tokenizer = toy.build_tokenizer()
        return self._tokenizer

    def build_model(self, dtype: torch.dtype):
        """The shape with random weights, made directly on the device (no host copy of 1.78B weights)."""
        from transformers import Qwen2Config, Qwen2ForCausalLM

        config = Qwen2Config(**self.shape, eos_token_id=self.tokenizer().eos_token_id,
                             pad_token_id=self.tokenizer().pad_token_id)
        torch.manual_seed(0)
        with self.device:
            model = Qwen2ForCausalLM(config).to(dtype)
        return model

    def saved_model(self) -> Path:
        """The shape saved with the demo tokenizer, for the code paths that load from a folder."""
        if self._saved is None:
            model = self.build_model(torch.bfloat16)
            path = self.workdir / "model"
            model.save_pretrained(path)
            self.tokenizer().save_pretrained(path)
            del model
            self._saved = path
        return self._saved

    def random_prompts(self, count: int, length: int) -> list[list[int]]:
        generator = torch.Generator().manual_seed(count)
        low = len(self.tokenizer())  # ids the demo tokenizer does not have: never a stop token
        return torch.randint(low, self.shape["vocab_size"], (count, length), generator=generator).tolist()

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def peak_gib(self) -> float:
        return torch.cuda.max_memory_allocated() / 2**30 if self.device.type == "cuda" else 0.0

    def report(self, section: str, key: str, value: float, unit: str, note: str = "") -> None:
        self.results.setdefault(section, {})[key] = value
        print(f"[{section}] {key}: {value:,.2f} {unit}{f'  ({note})' if note else ''}", flush=True)

    # --- running sections ----------------------------------------------------------------------

    def section(self, name: str, run: Callable[[Suite], None], limit_s: float) -> None:
        limit = min(limit_s, self.deadline - time.monotonic())
        if limit < 10:
            print(f"[{name}] skipped: the suite's time budget is spent", flush=True)
            return
        print(f"[{name}] start (limit {limit:.0f} s)", flush=True)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        start = time.monotonic()
        try:
            with alarm(limit):
                run(self)
        except SectionTimeout:
            print(f"[{name}] timed out after {limit:.0f} s", flush=True)
        except Exception as exc:  # one broken section must not cost the others
            print(f"[{name}] failed: {type(exc).__name__}: {exc}", flush=True)
            print("".join(traceback.format_exc().splitlines(keepends=True)[-12:]), flush=True)
        finally:
            gc.collect()
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
        print(f"[{name}] done in {time.monotonic() - start:.1f} s", flush=True)


@contextlib.contextmanager
def alarm(seconds: float) -> Iterator[None]:
    """Raise :class:`SectionTimeout` in this (main) thread after ``seconds``."""
    def fire(signum, frame):
        raise SectionTimeout()

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def timed(suite: Suite, run: Callable[[], Any]) -> tuple[Any, float]:
    suite.sync()
    start = time.perf_counter()
    out = run()
    suite.sync()
    return out, time.perf_counter() - start


def import_first(name: str, modules: tuple[str, ...]) -> Any:
    """``name`` from the first module that has it (the trainer's helpers may live in submodules)."""
    import importlib

    for module in modules:
        with contextlib.suppress(ImportError, AttributeError):
            return getattr(importlib.import_module(module), name)
    raise ImportError(f"{name} not found in {', '.join(modules)}")


# --- 1. generation -------------------------------------------------------------------------------

def generation(suite: Suite) -> None:
    from justrl.generate.hf import SamplingParams
    from justrl.generate.static import StaticCacheGenerator

    model = suite.build_model(torch.bfloat16).eval()
    tokenizer, sizes, eos = suite.tokenizer(), suite.sizes, suite.tokenizer().eos_token_id
    ours = StaticCacheGenerator(model, tokenizer, batch_size=max(sizes.gen_batches))
    params = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=sizes.new_tokens, seed=1)
    with torch.no_grad():  # warm the kernels of both paths' eager parts once
        model.generate(input_ids=torch.tensor(suite.random_prompts(2, 8), device=suite.device),
                       max_new_tokens=4, do_sample=True, top_k=0, pad_token_id=eos)
    # largest batch first: the ratio the issue asks for is measured before anything can run out of time
    for batch in sorted(sizes.gen_batches, reverse=True):
        prompts = suite.random_prompts(batch, sizes.prompt_tokens)
        ids = torch.tensor(prompts, device=suite.device)
        with torch.no_grad():
            out, secs = timed(suite, lambda ids=ids: model.generate(
                input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=1.0,
                top_p=1.0, top_k=0, max_new_tokens=sizes.new_tokens, min_new_tokens=sizes.new_tokens,
                pad_token_id=eos))
        plain_rate = batch * (out.shape[1] - ids.shape[1]) / secs
        suite.report("generation", f"plain generate {batch} seqs", plain_rate, "tokens/s", f"{secs:.1f} s")
        for label in ("cold", "warm"):
            done, secs = timed(suite, lambda prompts=prompts: ours.generate_from_ids(prompts, params))
            ours_rate = sum(len(c.token_ids) for c in done) / secs
            suite.report("generation", f"rollout path {batch} seqs {label}", ours_rate, "tokens/s",
                         f"{secs:.1f} s{', compilation included' if label == 'cold' else ''}")
        if batch == max(sizes.gen_batches):
            suite.results["generation"]["ratio"] = ours_rate / plain_rate
            suite.ratio = f"{ours_rate / plain_rate:.2f} (at {batch} sequences, warm)"
    suite.report("generation", "peak memory", suite.peak_gib(), "GiB")


# --- 2. one GRPO step ------------------------------------------------------------------------------

class _StepDone(Exception):
    """Raised from ``on_step`` so the run ends before it writes a checkpoint of the full optimizer."""


def grpo_step(suite: Suite) -> None:
    from justrl import recipe as recipe_mod
    from justrl.train import loop as trainer

    sizes = suite.sizes
    overrides: dict[str, Any] = {
        "model": str(suite.saved_model()), "prompts_per_step": sizes.grpo_prompts,
        "rollouts_per_prompt": sizes.grpo_rollouts, "mini_batch_prompts": max(1, sizes.grpo_prompts // 4),
        "micro_batch_sequences": 8, "max_response_tokens": sizes.grpo_response_tokens,
        "max_prompt_tokens": 64, "total_steps": 1, "val_data": [], "val_before_train": False,
        "save_every": 1000, "loggers": ["jsonl"], "device": suite.device.type, "dtype": "auto",
        "gradient_checkpointing": True, "lr": 1e-6,
    }
    fields = recipe_mod.Recipe.__dataclass_fields__
    if "micro_batch_tokens" in fields:
        overrides["micro_batch_tokens"] = 4 * (sizes.grpo_response_tokens + 64)
    if "rollout_backend" in fields:
        overrides["rollout_backend"] = "auto"
    recipe = recipe_mod.load("toy", overrides)
    seen: dict[str, float] = {}

    def stop(step: int, values: dict[str, float]) -> None:
        seen.update(values)
        raise _StepDone()

    with contextlib.suppress(_StepDone):
        trainer.train(recipe, suite.workdir / "grpo-run", console=False, on_step=stop)
    for key in sorted(k for k in seen if k.startswith("timing_s/")):
        suite.report("grpo-step", key, seen[key], "s")
    for key in ("response_length/mean", "perf/max_memory_allocated_gb", "rollout/logprob_diff"):
        if key in seen:
            suite.report("grpo-step", key, seen[key], "")
    suite.report("grpo-step", "peak memory", suite.peak_gib(), "GiB")


# --- 3. a 16k-token training pass -----------------------------------------------------------------

def long_pass(suite: Suite) -> None:
    forward_log_probs = import_first("forward_log_probs", ("justrl.train.logprobs", "justrl.train.loop"))
    packed_type = import_first("Packed", ("justrl.train.logprobs", "justrl.train.loop"))
    sizes = suite.sizes
    model = suite.build_model(torch.float32)
    model.gradient_checkpointing_enable()
    model.train()
    autocast = torch.bfloat16 if suite.device.type == "cuda" else None

    def packed(tokens: int, seed: int):
        ids = torch.tensor(suite.random_prompts(seed, tokens)[0], device=suite.device).unsqueeze(0)
        ones = torch.ones_like(ids)
        return packed_type(input_ids=ids, attention_mask=ones, position_ids=torch.arange(tokens, device=suite.device)[None],
                           responses=ids[:, 1:], response_mask=ones[:, 1:])

    def micro_batches(count: int, tokens: int) -> None:
        for seq in range(count):
            p = packed(tokens, 100 + seq)
            log_probs, _ = forward_log_probs(model, p, 1.0, autocast, with_entropy=False)
            (-(log_probs * p.response_mask).sum() / (count * tokens)).backward()

    micro_batches(1, min(1024, sizes.long_tokens))  # warm-up: kernels, allocator
    model.zero_grad(set_to_none=True)
    if suite.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    _, secs = timed(suite, lambda: micro_batches(sizes.long_sequences, sizes.long_tokens))
    tokens = sizes.long_sequences * sizes.long_tokens
    suite.report("long-pass", f"forward+backward {sizes.long_sequences} x {sizes.long_tokens} tokens",
                 tokens / secs, "tokens/s", f"{secs:.1f} s")
    shape = suite.shape
    params = sum(p.numel() for p in model.parameters()) - model.get_input_embeddings().weight.numel()
    flops = (6 * params * tokens + 6 * shape["num_hidden_layers"] * shape["hidden_size"]
             * sizes.long_tokens ** 2 * sizes.long_sequences)
    name = torch.cuda.get_device_name() if suite.device.type == "cuda" else "cpu"
    peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    if peak:
        suite.report("long-pass", "MFU", 100 * flops / secs / (peak * 1e12), "%",
                     f"6*N*T + causal attention, N={params / 1e9:.2f}B without embeddings, {name} peak {peak:.0f} TFLOP/s")
    suite.report("long-pass", "achieved", flops / secs / 1e12, "TFLOP/s")
    suite.report("long-pass", "peak memory", suite.peak_gib(), "GiB", "weights, gradients and activations; no optimizer")


# --- 4. the hf eval backend ------------------------------------------------------------------------

def eval_hf(suite: Suite) -> None:
    from justrl import evaluate
    from justrl.generate.factory import make_hf_generator

    if suite.data_dir is None:
        raise FileNotFoundError("no MATH-500/test.parquet found: pass --data-dir (scripts/gpu_bundle.sh copies it)")
    tok_dir = suite.workdir / "eval-model"
    suite.tokenizer().save_pretrained(tok_dir)
    model = suite.build_model(torch.bfloat16).eval()
    model.save_pretrained(tok_dir)  # the eval folder records a fingerprint of the weights it scored
    made: list[Any] = []

    def backend():
        made.append(make_hf_generator(model, suite.tokenizer(), "auto", batch_size=suite.sizes.eval_prompts))
        return made[-1]

    config = evaluate.EvalConfig(model=str(tok_dir), benchmarks=["MATH-500"], data_dir=str(suite.data_dir),
                                 out=str(suite.workdir / "eval"), n=1, limit=suite.sizes.eval_prompts,
                                 max_tokens=suite.sizes.eval_max_tokens, batch_size=suite.sizes.eval_prompts,
                                 bootstrap=100, family="none")
    with contextlib.redirect_stdout(sys.stderr):
        result, secs = timed(suite, lambda: evaluate.run(config, backend=backend))
    samples = next(iter(result.files.values())).read_text().splitlines()
    suite.report("eval-hf", f"{len(samples)} MATH-500 samples (max {suite.sizes.eval_max_tokens} tokens)", secs,
                 "s", f"generation, grading and report; generator {type(made[0]).__name__}")
    suite.report("eval-hf", "peak memory", suite.peak_gib(), "GiB")


SECTIONS: dict[str, tuple[Callable[[Suite], None], float]] = {
    "generation": (generation, 210.0),
    "long-pass": (long_pass, 60.0),
    "grpo-step": (grpo_step, 150.0),
    "eval-hf": (eval_hf, 120.0),
}
"""Run in this order, each within its limit and what is left of ``--budget``."""


def find_data_dir(given: str | None) -> Path | None:
    root = Path(__file__).resolve().parents[1]
    candidates = [Path(given)] if given else [root / "src" / "justrl" / "data" / "benchmarks",
                                              root / ".whl" / "benchmarks"]
    return next((c for c in candidates if (c / "MATH-500" / "test.parquet").is_file()), None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated: " + ", ".join(SECTIONS))
    parser.add_argument("--budget", type=float, default=450.0, help="seconds for the whole suite")
    parser.add_argument("--data-dir", help="folder with MATH-500/test.parquet (default: the copy packaged in src/justrl/data/files/benchmarks)")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--tiny", action="store_true", help="toy sizes on any device (tests the script itself)")
    args = parser.parse_args(argv)
    if not args.tiny and not torch.cuda.is_available():
        print(f"gpu_suite: skipped: no CUDA GPU visible to torch {torch.__version__}; run it on a GPU machine "
              "(PYTHONPATH=src python benchmarks/gpu_suite.py), or --tiny for a toy-sized run here")
        print("ratio rollout/plain-generate: n/a (skipped: no GPU)")
        return 0
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    from justrl import logs

    logs.quiet_transformers()
    suite = Suite(shape=TINY if args.tiny else R1_DISTILL_1_5B, sizes=TINY_SIZES if args.tiny else Sizes(),
                  device=device, data_dir=find_data_dir(args.data_dir), deadline=time.monotonic() + args.budget)
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    print(f"gpu_suite on {name}: torch {torch.__version__}, shape {'tiny' if args.tiny else 'R1-Distill-Qwen-1.5B'}",
          flush=True)
    for section in args.sections.split(","):
        if section not in SECTIONS:
            print(f"[{section}] unknown section (known: {', '.join(SECTIONS)})")
            continue
        run, limit = SECTIONS[section]
        suite.section(section, run, limit)
    shutil.rmtree(suite.workdir, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"device": name, "torch": torch.__version__, **suite.results}, indent=1))
    print(f"ratio rollout/plain-generate: {suite.ratio}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
