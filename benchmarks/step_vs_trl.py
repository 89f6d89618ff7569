"""Seconds per GRPO step: the native engine against TRL's ``GRPOTrainer``, same model, same work.

Both engines get the demo's warm-started tiny Qwen2 policy (a copy each), the toy task's training
prompts through the same chat template, the strict +1/-1 reward, and the toy recipe's shape:
32 prompts x 8 rollouts per step, 24 new tokens at most, temperature 1.0 / top-p 1.0, 4 optimizer
updates of 8 prompts (64 sequences) per step, AdamW with the recipe's lr, weight decay and grad
clip, PPO clip 0.2 / 0.28, no KL (TRL: ``beta=0``) and token-mean loss (TRL: ``loss_type="dapo"``,
which divides by the active tokens of the whole accumulated batch, here one update).

A "step" is one generation round and its four updates: one native step, or four TRL optimizer
steps (``steps_per_generation=4``). The two run in one process and one OS thread, alternating step
by step (the native engine in a greenlet, passing a baton at each step's end, never running at
once), so that a busy machine slows both alike and each engine gets the one OpenMP team it has
alone (why that matters: :class:`Baton`). Each
turn runs under its own engine's process-wide torch settings: the native engine turns on
deterministic algorithms (for exact resume) and TRL does not, and the baton swaps them at each
hand-over. (Before it did, TRL's turns ran under the native engine's settings; with PyTorch's
NaN fill of new tensors, which the native engine then left on, TRL's step took 2.2x as long.) The
first ``--warmup`` steps of each are not counted. Peak memory is measured in two short child
processes, one per engine: the highest RSS while it builds and trains (and its growth over the
process's size before), and ``max_memory_allocated`` on a GPU.

    python benchmarks/step_vs_trl.py [--steps 12] [--warmup 2] [--device cpu|cuda]

Beside the ratio it prints each engine's per-phase split (medians of the counted steps), so a
regression shows where it is: the native engine's own timers (``timing_s/gen``, ``old_log_prob``,
``update``; ``other`` is the rest of the step: scoring, advantages, metrics), and for TRL the time
inside its ``_generate`` (gen), ``_calculate_rewards`` (score), the rest of
``_generate_and_score_completions`` (prep: old log-probs, advantages) and the rest of the step
(update: its four optimizer steps).

The last line is ``ratio native/trl: X`` (seconds per step, medians).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import greenlet
import torch

from justrl import recipe as recipe_mod
from justrl.data import toy
from justrl.train import loop as trainer
from justrl.verifiers import dapo_reward


def bench_recipe(steps: int, device: str) -> recipe_mod.Recipe:
    return recipe_mod.load("toy", {
        "total_steps": steps, "val_before_train": False, "val_every": 10**9, "save_every": 10**9,
        "loggers": [], "device": device,
    })


def trl_trainer(recipe: recipe_mod.Recipe, model_dir: Path, out_dir: str, callbacks: list):
    """TRL's GRPOTrainer configured to do what one native step does, per 4 optimizer steps."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    updates_per_step = recipe.prompts_per_step // recipe.mini_batch_prompts
    config = GRPOConfig(
        output_dir=out_dir,
        max_steps=recipe.total_steps * updates_per_step,
        per_device_train_batch_size=recipe.mini_batch_prompts * recipe.rollouts_per_prompt,
        gradient_accumulation_steps=1,
        steps_per_generation=updates_per_step,
        num_generations=recipe.rollouts_per_prompt,
        max_completion_length=recipe.max_response_tokens,
        temperature=recipe.temperature, top_p=recipe.top_p, top_k=0,
        beta=0.0, epsilon=recipe.clip_low, epsilon_high=recipe.clip_high, loss_type="dapo",
        scale_rewards="group", num_iterations=recipe.ppo_epochs, mask_truncated_completions=False,
        learning_rate=recipe.lr, weight_decay=recipe.weight_decay, adam_beta1=recipe.adam_betas[0],
        adam_beta2=recipe.adam_betas[1], max_grad_norm=recipe.grad_clip,
        lr_scheduler_type="constant_with_warmup", warmup_steps=recipe.warmup_steps * updates_per_step,
        use_cpu=recipe.device == "cpu", bf16=False, seed=recipe.seed,
        logging_steps=10**6, save_strategy="no", report_to="none", disable_tqdm=True,
        log_completions=False, dataloader_num_workers=0,
    )
    problems = toy.make_problems("train")
    dataset = Dataset.from_list([{"prompt": [{"role": "user", "content": p.prompt + recipe.prompt_suffix}],
                                  "ground_truth": p.ground_truth} for p in problems])

    def strict_reward(prompts, completions, ground_truth, **kwargs) -> list[float]:
        return [dapo_reward(c[0]["content"], gt) for c, gt in zip(completions, ground_truth)]

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return GRPOTrainer(model=model, reward_funcs=strict_reward, args=config, train_dataset=dataset,
                       processing_class=tokenizer, callbacks=callbacks)


TorchFlags = tuple[bool, bool, bool]


def torch_flags() -> TorchFlags:
    """The process-wide settings an engine may change: deterministic algorithms (and warn-only),
    and the NaN fill of uninitialised memory that deterministic mode applies."""
    return (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
            torch.utils.deterministic.fill_uninitialized_memory)


def set_torch_flags(flags: TorchFlags) -> None:
    torch.use_deterministic_algorithms(flags[0], warn_only=flags[1])
    torch.utils.deterministic.fill_uninitialized_memory = flags[2]


class Baton:
    """Two engines taking turns in one OS thread: ``hand_to(other)`` switches to the other's greenlet,
    which runs until it hands the turn back.

    Both engines run on the thread that started them (the native engine in a greenlet of its own),
    so their torch calls share one OpenMP team, as each has when it runs alone. With a second OS
    thread each engine gets a team of its own, and GNU OpenMP, seeing more of its threads than
    cores (4 on 2), cuts its workers' spin-wait to a few hundred iterations: every parallel region
    then pays a futex wake-up, which made the native step (many small operations) 2.3x as slow as
    alone, and TRL's (larger operations) far less.

    At each hand-over the giver's torch settings (:func:`torch_flags`) are kept and the taker's put
    back, so neither engine runs under the other's."""

    def __init__(self) -> None:
        self.flags: dict[str, TorchFlags] = {"native": torch_flags(), "trl": torch_flags()}
        self.seen_flags: dict[str, set[TorchFlags]] = {"native": set(), "trl": set()}
        self.greenlets: dict[str, greenlet.greenlet] = {}
        self.started: dict[str, float] = {}
        self.seconds: dict[str, list[float]] = {"native": [], "trl": []}
        self.peak: dict[str, int] = {"native": 0, "trl": 0}
        self.phases: dict[str, list[dict[str, float]]] = {"native": [], "trl": []}

    def start_turn(self, me: str) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        self.started[me] = time.perf_counter()

    def finish_step(self, me: str) -> None:
        self.seen_flags[me].add(torch_flags())
        if torch.cuda.is_available():
            torch.cuda.synchronize()
            self.peak[me] = max(self.peak[me], torch.cuda.max_memory_allocated())
        self.seconds[me].append(time.perf_counter() - self.started[me])

    def hand_to(self, other: str, me: str) -> None:
        """Give the turn to ``other``; returns when ``other`` gives it back (or, for the native
        engine's greenlet, when it has finished)."""
        self.flags[me] = torch_flags()
        set_torch_flags(self.flags[other])
        target = self.greenlets[other]
        if not target.dead:
            self.start_turn(other)
            target.switch()


def alternate(steps: int, device: str, model_dir: Path) -> dict[str, list[float]]:
    from transformers import TrainerCallback

    recipe = bench_recipe(steps, device)
    updates_per_step = recipe.prompts_per_step // recipe.mini_batch_prompts
    baton = Baton()

    trl_seconds: dict[str, float] = {"gen": 0.0, "score": 0.0, "generate_and_score": 0.0}

    class TrlTurns(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step % updates_per_step == 0:
                baton.finish_step("trl")
                spent = baton.seconds["trl"][-1]
                prep = trl_seconds["generate_and_score"] - trl_seconds["gen"] - trl_seconds["score"]
                baton.phases["trl"].append({"gen": trl_seconds["gen"], "score": trl_seconds["score"],
                                            "prep": prep, "update": spent - trl_seconds["generate_and_score"]})
                trl_seconds.update(dict.fromkeys(trl_seconds, 0.0))
                baton.hand_to("native", "trl")

    def native_on_step(step: int, values: dict) -> None:
        baton.finish_step("native")
        phases = {k: values.get(f"timing_s/{k}", 0.0) for k in ("gen", "old_log_prob", "update")}
        phases["other"] = baton.seconds["native"][-1] - sum(phases.values())
        baton.phases["native"].append(phases)
        baton.hand_to("trl", "native")

    with tempfile.TemporaryDirectory() as tmp:
        trl = trl_trainer(recipe, model_dir, f"{tmp}/trl", [TrlTurns()])
        for method, key in (("_generate", "gen"), ("_calculate_rewards", "score"),
                            ("_generate_and_score_completions", "generate_and_score")):
            setattr(trl, method, timed(getattr(trl, method), trl_seconds, key))

        def run_native() -> None:
            trainer.train(recipe, Path(tmp) / "native", console=False, on_step=native_on_step)

        baton.greenlets = {"native": greenlet.greenlet(run_native), "trl": greenlet.getcurrent()}
        baton.hand_to("native", "trl")  # native goes first; an error in its greenlet is raised here
        with contextlib.redirect_stdout(io.StringIO()):  # TRL prints its final metrics
            trl.train()
        while not baton.greenlets["native"].dead:  # let it finish its run (closing files, final save)
            baton.hand_to("native", "trl")
    return baton.seconds | {"peak_cuda": baton.peak, "phases": baton.phases,  # type: ignore[return-value]
                            "flags": baton.seen_flags}


def timed(method, seconds: dict[str, float], key: str):
    """``method`` that adds its wall time to ``seconds[key]`` (a CUDA device synchronised around it)."""

    def wrapper(*args, **kwargs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            seconds[key] += time.perf_counter() - start

    return wrapper


def phase_split(rows: list[dict[str, float]]) -> str:
    """``gen 0.120 | update 0.200 | ...``: the median of each phase over the counted steps."""
    return " | ".join(f"{k} {statistics.median(r[k] for r in rows):.3f}" for k in rows[0]) if rows else "-"


def describe_flags(seen: set[TorchFlags]) -> str:
    """``deterministic on (NaN fill off)``, or every combination an engine's steps ended under."""
    def one(flags: TorchFlags) -> str:
        return (f"deterministic on{' (warn only)' if flags[1] else ''}, NaN fill {'on' if flags[2] else 'off'}"
                if flags[0] else "deterministic off")
    return "; ".join(sorted(one(f) for f in seen)) or "-"


class RssSampler:
    """Highest resident set size seen while running, read from /proc every few milliseconds."""

    def __init__(self) -> None:
        self.start = self.peak = self.read()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def read() -> int:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self.read())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def measure_peak(engine: str, steps: int, device: str, model_dir: Path) -> dict[str, float]:
    """Peak memory of one engine alone (run in a child process): RSS, and GPU memory when on a GPU."""
    recipe = bench_recipe(steps, device)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as tmp, RssSampler() as rss:
        if engine == "native":
            trainer.train(recipe, Path(tmp) / "native", console=False)
        else:
            with contextlib.redirect_stdout(io.StringIO()):
                trl_trainer(recipe, model_dir, f"{tmp}/trl", []).train()
    cuda = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0
    return {"peak_rss_mib": rss.peak / 2**20, "rss_growth_mib": (rss.peak - rss.start) / 2**20,
            "peak_cuda_mib": cuda / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=12, help="steps per engine (default 12)")
    parser.add_argument("--warmup", type=int, default=2, help="first steps of each not counted (default 2)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--memory-of", choices=["native", "trl"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    model_dir = toy.prepare()  # the demo's warm-started policy (cached)

    if args.memory_of:
        print(json.dumps(measure_peak(args.memory_of, 3, args.device, model_dir)))
        return

    seconds = alternate(args.steps, args.device, model_dir)
    peaks = {}
    for engine in ("native", "trl"):
        child = subprocess.run([sys.executable, __file__, "--memory-of", engine, "--device", args.device],
                               capture_output=True, text=True, check=True)
        peaks[engine] = json.loads(child.stdout.strip().splitlines()[-1])
    per_step = {e: statistics.median(seconds[e][args.warmup:]) for e in ("native", "trl")}
    device = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {device}; {args.steps} steps each ({args.warmup} warm-up not counted), alternating")
    for e in ("native", "trl"):
        counted = seconds[e][args.warmup:]
        memory = (f"peak GPU memory {peaks[e]['peak_cuda_mib']:.0f} MiB" if args.device == "cuda" else
                  f"peak RSS {peaks[e]['peak_rss_mib']:.0f} MiB (+{peaks[e]['rss_growth_mib']:.0f} MiB to build and train)")
        print(f"{e:>6}: {per_step[e]:.3f} s/step (median; min {min(counted):.3f}, max {max(counted):.3f}); {memory}")
        print(f"{e:>6} phases (s, medians): {phase_split(seconds['phases'][e][args.warmup:])}")
        print(f"{e:>6} torch settings: {describe_flags(seconds['flags'][e])}")
    print(f"machine: {os.cpu_count()} cores, load average {' / '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"ratio native/trl: {per_step['native'] / per_step['trl']:.3f}")


if __name__ == "__main__":
    main()
