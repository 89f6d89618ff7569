"""One command that answers the project's GPU questions in one device call (<= 450 s), at
DeepSeek-R1-Distill-Qwen-1.5B's shape.

The model is built from the architecture alone (Qwen2: hidden 1536, 28 layers, 12 heads, 2 KV
heads, intermediate 8960, vocabulary 151,936; random weights, nothing downloaded); the tokenizer is
the CPU demo's byte-level one (its ids are a subset of the model's). torch, transformers and CUDA
versions are printed first. Sections run in this order, each with its own time limit (they add up
to 450 s), each reporting its failure and letting the next one run; ``torch._dynamo.reset()``
between sections, and the JSON (``--json``) rewritten after every section, so a killed run still
returns what it measured:

1. ``correctness``: the 1.5B widths with 2 layers, float32, greedy: plain :class:`HFGenerator` vs
   hf-static eager vs hf-static compiled: rows identical, first divergent step, max log-prob
   difference; then seeded sampling at temperature 1 with compaction (same tokens as the plain path,
   how many compactions ran).
2. ``generation``: rollout tokens/s of plain ``model.generate`` vs hf-static vs vLLM (when
   installed) at 512 and 64 sequences of 256-token prompts and 256 sampled tokens; hf-static's
   compile time apart (its first, cold call minus the warm one).
3. ``long-pass``: one training pass at the paper preset's memory settings (float32 master weights,
   bfloat16 autocast, gradient checkpointing, chunked log-probs, one 16k-token sequence per
   micro-batch) and the AdamW step: tokens/s, MFU, peak allocated and reserved memory, beside
   :func:`justrl.dynamics.budget.peak_memory_estimate`'s figure for the same pass.
4. ``grpo-step``: one native GRPO step (``justrl.train.loop.train``, bfloat16 autocast, the default
   rollout backend) at reduced size, 32 prompts x 8 rollouts of up to 2,048 tokens: seconds per
   phase, peak memory.
5. ``eval-hf``: the ``hf`` evaluation backend (``justrl.evaluate.run``) on 64 MATH-500 prompts;
   skipped with a note when math-verify (the grader) is not installed.

Nothing needs installing before it runs beyond torch and transformers. On a GPU machine:

    PYTHONPATH=src python benchmarks/gpu_suite.py --json gpu_suite.json

On a machine without CUDA it prints why it skipped and exits 0; ``--tiny`` runs every section at
toy size on any device in under a minute (the CPU test of this script). The last line is always
``ratio rollout/plain-generate: X`` (hf-static over plain generate at the largest batch; ``n/a``
with the reason if not measured).
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
import torch._dynamo  # noqa: E402

R1_DISTILL_1_5B = dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                       num_key_value_heads=2, vocab_size=151936, max_position_embeddings=131072,
                       rope_theta=10000.0, rms_norm_eps=1e-6, tie_word_embeddings=False)
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=512, max_position_embeddings=4096, tie_word_embeddings=False)
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "H800": 989.0, "A100": 312.0, "L40S": 362.0}
"""Dense bf16 peak by chip (SXM figures), the MFU denominator."""


@dataclass
class Sizes:
    correctness_layers: int = 2
    correctness_rows: int = 8
    correctness_tokens: int = 64
    gen_batches: tuple[int, ...] = (512, 64)
    prompt_tokens: int = 256
    new_tokens: int = 256
    grpo_prompts: int = 32
    grpo_rollouts: int = 8
    grpo_response_tokens: int = 2048
    long_sequences: int = 8
    long_tokens: int = 16384
    eval_prompts: int = 64
    eval_max_tokens: int = 1024


TINY_SIZES = Sizes(correctness_rows=4, correctness_tokens=12, gen_batches=(8, 2), prompt_tokens=8, new_tokens=8, grpo_prompts=4, grpo_rollouts=2,
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
    json_path: Path | None = None
    header: dict[str, Any] = field(default_factory=dict)
    _tokenizer: Any = None
    _saved: Path | None = None

    # --- shared pieces -------------------------------------------------------------------------

    def tokenizer(self):
        if self._tokenizer is None:
            from justrl.data import toy

            self._tokenizer = toy.build_tokenizer()
        return self._tokenizer

    def build_model(self, dtype: torch.dtype, **changes: Any):
        """The shape with random weights, made directly on the device (no host copy of 1.78B weights)."""
        from transformers import Qwen2Config, Qwen2ForCausalLM

        config = Qwen2Config(**{**self.shape, **changes}, eos_token_id=self.tokenizer().eos_token_id,
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

    def reserved_gib(self) -> float:
        return torch.cuda.max_memory_reserved() / 2**30 if self.device.type == "cuda" else 0.0

    def write_json(self) -> None:
        if self.json_path is not None:
            self.json_path.write_text(json.dumps({**self.header, **self.results}, indent=1))

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
            torch._dynamo.reset()  # no compiled graph (or its CUDA-graph pool) outlives its section
            gc.collect()
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
        self.results.setdefault(name, {})["seconds"] = round(time.monotonic() - start, 1)
        self.write_json()
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


# --- 1. correctness ------------------------------------------------------------------------------

def compare_rows(expected, got) -> dict[str, float]:
    """Rows identical, first divergent step (-1: none) and max log-prob difference over common steps."""
    identical, first, worst = 0, -1, 0.0
    for a, b in zip(expected, got, strict=True):
        same = a.token_ids == b.token_ids
        identical += same
        if not same:
            step = next((i for i, (x, y) in enumerate(zip(a.token_ids, b.token_ids)) if x != y),
                        min(len(a.token_ids), len(b.token_ids)))
            first = step if first < 0 else min(first, step)
        common = next((i for i, (x, y) in enumerate(zip(a.token_ids, b.token_ids)) if x != y),
                      min(len(a.token_ids), len(b.token_ids)))
        worst = max([worst] + [abs(x - y) for x, y in zip(a.logprobs[:common], b.logprobs[:common])])
    return {"rows": len(expected), "rows identical": identical, "first divergence": first,
            "max logprob diff": worst}


def correctness(suite: Suite) -> None:
    from justrl.generate.hf import HFGenerator, SamplingParams
    from justrl.generate.static import StaticCacheGenerator

    sizes, tokenizer = suite.sizes, suite.tokenizer()
    model = suite.build_model(torch.float32, num_hidden_layers=sizes.correctness_layers).eval()
    prompts = [p[: 4 + 3 * i] for i, p in enumerate(suite.random_prompts(sizes.correctness_rows, 64))]
    greedy = SamplingParams(temperature=0.0, max_new_tokens=sizes.correctness_tokens)
    plain = HFGenerator(model, tokenizer).generate_from_ids(prompts, greedy)
    # compiled: inductor (CUDA graphs on CUDA); on the CPU aot_eager traces the same graph quickly
    backend = "inductor" if suite.device.type == "cuda" else "aot_eager"
    for label, compiled in (("static eager", False), ("static compiled", True)):
        static = StaticCacheGenerator(model, tokenizer, compile=compiled, compile_backend=backend, length_bucket=64)
        for key, value in compare_rows(plain, static.generate_from_ids(prompts, greedy)).items():
            suite.report("correctness", f"greedy plain vs {label}: {key}", value, "")
    sampled = SamplingParams(temperature=1.0, max_new_tokens=sizes.correctness_tokens, seed=3)
    # random weights sample a near-uniform token: an eighth of the vocabulary as stop tokens makes
    # rows end at different steps, so the static path compacts its batch along the way
    stops = set(range(0, suite.shape["vocab_size"], 8))
    static = StaticCacheGenerator(model, tokenizer, compile=False, length_bucket=64, check_every=2)
    plain_sampler = HFGenerator(model, tokenizer)
    static.stop_token_ids = plain_sampler.stop_token_ids = stops
    expected = plain_sampler.generate_from_ids(prompts, sampled)
    for key, value in compare_rows(expected, static.generate_from_ids(prompts, sampled)).items():
        suite.report("correctness", f"sampled plain vs static (compaction on): {key}", value, "")
    suite.report("correctness", "compactions", static.compactions, "", "batches moved into a smaller bucket")


# --- 2. generation -------------------------------------------------------------------------------

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
    # largest batch first: the ratio is measured before anything can run out of time
    for batch in sizes.gen_batches:
        prompts = suite.random_prompts(batch, sizes.prompt_tokens)
        ids = torch.tensor(prompts, device=suite.device)
        with torch.no_grad():
            out, secs = timed(suite, lambda ids=ids: model.generate(
                input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=1.0,
                top_p=1.0, top_k=0, max_new_tokens=sizes.new_tokens, min_new_tokens=sizes.new_tokens,
                pad_token_id=eos))
        plain_rate = batch * (out.shape[1] - ids.shape[1]) / secs
        suite.report("generation", f"plain generate {batch} seqs", plain_rate, "tokens/s", f"{secs:.1f} s")
        _, cold = timed(suite, lambda prompts=prompts: ours.generate_from_ids(prompts, params))
        done, warm = timed(suite, lambda prompts=prompts: ours.generate_from_ids(prompts, params))
        ours_rate = sum(len(c.token_ids) for c in done) / warm
        suite.report("generation", f"hf-static {batch} seqs", ours_rate, "tokens/s", f"{warm:.1f} s, warm")
        suite.report("generation", f"hf-static {batch} seqs compile time", max(0.0, cold - warm), "s",
                     "first call minus the warm one")
        if batch == max(sizes.gen_batches):
            suite.results["generation"]["ratio"] = ours_rate / plain_rate
            suite.ratio = f"{ours_rate / plain_rate:.2f} (hf-static at {batch} sequences, warm)"
    suite.report("generation", "peak memory", suite.peak_gib(), "GiB")
    suite.report("generation", "peak reserved", suite.reserved_gib(), "GiB")
    ours = model = None  # free the HF weights and caches before vLLM takes its share
    vllm_generation(suite)


def vllm_generation(suite: Suite) -> None:
    """vLLM's tokens/s on the same prompts, when vLLM is installed (and on CUDA)."""
    import importlib.util

    if importlib.util.find_spec("vllm") is None or suite.device.type != "cuda":
        print("[generation] vllm: not measured (not installed, or no CUDA)", flush=True)
        suite.results["generation"]["vllm"] = "not installed or no CUDA"
        return
    import vllm

    gc.collect()
    torch.cuda.empty_cache()
    llm = vllm.LLM(model=str(suite.saved_model()), dtype="bfloat16", gpu_memory_utilization=0.5, seed=1)
    params = vllm.SamplingParams(temperature=1.0, top_p=1.0, max_tokens=suite.sizes.new_tokens,
                                 min_tokens=suite.sizes.new_tokens)
    for batch in suite.sizes.gen_batches:
        prompts = [{"prompt_token_ids": p} for p in suite.random_prompts(batch, suite.sizes.prompt_tokens)]
        done, secs = timed(suite, lambda prompts=prompts: llm.generate(prompts, params, use_tqdm=False))
        tokens = sum(len(o.outputs[0].token_ids) for o in done)
        suite.report("generation", f"vllm {batch} seqs", tokens / secs, "tokens/s", f"{secs:.1f} s")


# --- 4. one GRPO step ------------------------------------------------------------------------------

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
    for key in ("response_length/mean", "perf/max_memory_allocated_gb", "perf/max_memory_reserved_gb",
                "rollout/logprob_diff"):
        if key in seen:
            suite.report("grpo-step", key, seen[key], "")
    suite.report("grpo-step", "peak memory", suite.peak_gib(), "GiB")


# --- 3. a 16k-token training pass and the optimizer step -----------------------------------------------------------------

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
        positions = torch.arange(tokens, device=suite.device)[None]
        fields = {"input_ids": ids, "attention_mask": ones, "position_ids": positions,
                  "responses": ids[:, 1:], "response_mask": ones[:, 1:],
                  "predictors": positions[:, :-1]}  # each token predicted from the one before it
        return packed_type(**{k: v for k, v in fields.items() if k in packed_type.__dataclass_fields__})

    def micro_batches(count: int, tokens: int) -> None:
        for seq in range(count):
            p = packed(tokens, 100 + seq)
            log_probs, _ = forward_log_probs(model, p, 1.0, autocast, with_entropy=False)
            (-(log_probs * p.response_mask).sum() / (count * tokens)).backward()

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6, weight_decay=0.1)

    def update() -> None:
        micro_batches(sizes.long_sequences, sizes.long_tokens)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()  # AdamW's two moments are allocated here, as in the trainer's first update
        optimizer.zero_grad(set_to_none=True)

    micro_batches(1, min(1024, sizes.long_tokens))  # warm-up: kernels, allocator
    model.zero_grad(set_to_none=True)
    if suite.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    _, secs = timed(suite, update)
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
    suite.report("long-pass", "peak allocated", suite.peak_gib(), "GiB", "weights, gradients, activations, AdamW")
    suite.report("long-pass", "peak reserved", suite.reserved_gib(), "GiB")
    from justrl import recipe as recipe_mod
    from justrl.dynamics.budget import MemoryShape, peak_memory_estimate

    pass_recipe = recipe_mod.load("justrl-deepseek-1.5b", {
        "max_prompt_tokens": 1, "max_response_tokens": sizes.long_tokens - 1,
        "micro_batch_tokens": sizes.long_tokens, "gradient_checkpointing": True})
    est = peak_memory_estimate(pass_recipe, MemoryShape.from_config(model.config, sum(p.numel() for p in model.parameters())))
    estimate = est.states_gib + est.gradients_gib + est.activations_gib  # no rollout copy in this pass
    suite.report("long-pass", "estimated peak", estimate, "GiB",
                 "dynamics.budget.peak_memory_estimate, update phase without the rollout copy")
    if suite.device.type == "cuda":
        suite.report("long-pass", "measured / estimated", suite.peak_gib() / estimate, "")


# --- 5. the hf eval backend ------------------------------------------------------------------------

def eval_hf(suite: Suite) -> None:
    import importlib.util

    from justrl import evaluate
    from justrl.generate.factory import make_hf_generator

    if importlib.util.find_spec("math_verify") is None:
        print("[eval-hf] not measured: math-verify (the grader) is not installed", flush=True)
        suite.results.setdefault("eval-hf", {})["note"] = "math-verify not installed"
        return
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
    "correctness": (correctness, 60.0),
    "generation": (generation, 170.0),
    "long-pass": (long_pass, 70.0),
    "grpo-step": (grpo_step, 100.0),
    "eval-hf": (eval_hf, 50.0),
}
"""Run in this order, each within its limit (450 s in all) and what is left of ``--budget``."""


def find_data_dir(given: str | None) -> Path | None:
    root = Path(__file__).resolve().parents[1]
    candidates = [Path(given)] if given else [root / "src" / "justrl" / "data" / "files" / "benchmarks",
                                              root / "src" / "justrl" / "data" / "benchmarks",
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
    import transformers

    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    header = {"device": name, "torch": torch.__version__, "transformers": transformers.__version__,
              "cuda": torch.version.cuda, "shape": "tiny" if args.tiny else "R1-Distill-Qwen-1.5B"}
    print("gpu_suite: " + ", ".join(f"{k} {v}" for k, v in header.items()), flush=True)
    suite = Suite(shape=TINY if args.tiny else R1_DISTILL_1_5B, sizes=TINY_SIZES if args.tiny else Sizes(),
                  device=device, data_dir=find_data_dir(args.data_dir), deadline=time.monotonic() + args.budget,
                  json_path=Path(args.json) if args.json else None, header=header)
    suite.write_json()
    for section in args.sections.split(","):
        if section not in SECTIONS:
            print(f"[{section}] unknown section (known: {', '.join(SECTIONS)})")
            continue
        run, limit = SECTIONS[section]
        suite.section(section, run, limit)
    shutil.rmtree(suite.workdir, ignore_errors=True)
    print(f"ratio rollout/plain-generate: {suite.ratio}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
