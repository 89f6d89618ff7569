"""The native JustRL engine: single-stage GRPO on a CPU or one GPU, in one readable loop.

:func:`train` is the whole run, top to bottom:

    run directory -> policy -> problems -> optimizer -> (resume) -> validation
    loop: prompts -> rollouts -> rewards -> group advantages -> old log-probs
          -> mini-batch updates -> metrics -> validation -> checkpoint
    -> final policy + summary

Everything it does is decided by the :class:`~justrl.recipe.Recipe`; the helpers below it are in
the order the loop calls them. There are no stages and no schedules beyond the recipe's warm-up:
that is the point of JustRL.

Conventions shared with verl (so that the numbers mean the same thing):

- Old log-probs are recomputed by the trainer before any update (not taken from the sampler); the
  sampler's own log-probs are only compared with them (``rollout/logprob_diff``).
- Log-probs and entropy use ``logits / temperature``; ``actor/entropy`` is measured on the
  sampling policy in that same pass.
- The learning rate follows ``get_constant_schedule_with_warmup`` stepped once per training step
  (so, as in verl, the first step's lr is 0 when there is a warm-up).
- A micro-batch's loss is divided by its mini-batch's token (or sequence) count, so gradient
  accumulation gives exactly the mini-batch's gradient.

Exact resume: every random choice is derived from ``(recipe.seed, step)`` or restored from the
checkpoint, so on CPU a resumed run repeats, number for number, what the uninterrupted run did.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import random
import shutil
import signal
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from justrl import grpo, micro_batches, rollout_backend, toy
from justrl import metrics as metrics_mod
from justrl import recipe as recipe_mod
from justrl.errors import TrainingError
from justrl.generation import HFGenerator, SamplingParams, left_pad, position_ids
from justrl.recipe import Recipe

MAX_NONFINITE_IN_A_ROW = 3
"""Consecutive optimizer updates with a non-finite loss or gradient after which the run stops."""
KEEP_CHECKPOINTS = 2
"""Complete checkpoints kept in ``checkpoints/`` (older ones are deleted after a new one lands)."""
COMPLETE_MARKER = "COMPLETE"
"""Written last inside a checkpoint; a checkpoint without it is never resumed from."""
RESUME_MAY_CHANGE = ("total_steps", "loggers")
"""Recipe fields a resumed run may change (neither alters the steps already taken)."""


@dataclass
class TrainResult:
    """What :func:`train` returns (and writes to ``summary.json``)."""

    run_dir: str
    steps: int
    """The last completed training step."""
    stopped: str
    """``finished``, ``interrupted`` (Ctrl-C, checkpoint saved) or ``non-finite``."""
    acc_before: float | None
    """Mean held-out accuracy before training (validation at step 0)."""
    acc_after: float | None
    """Mean held-out accuracy at the last validation."""
    wall_seconds: float
    """Wall time of the run (summed over resumed sessions), warm start and validation included."""
    entropy_first: float | None = None
    entropy_last: float | None = None
    entropy_min: float | None = None
    score_first: float | None = None
    score_last: float | None = None


@dataclass
class TrainState:
    """Everything besides model and optimizer that a checkpoint must hold to resume exactly."""

    step: int = 0
    epoch: int = 0
    """Data cursor: the pass over the training problems ..."""
    position: int = 0
    """... and the next problem's place in that pass's shuffled order."""
    tokens_total: int = 0
    nonfinite_in_a_row: int = 0
    acc_before: float | None = None
    acc_last: float | None = None
    wall_seconds: float = 0.0
    entropy: list[float] = field(default_factory=list)
    score: list[float] = field(default_factory=list)
    health: dict[str, Any] = field(default_factory=dict)


def train(
    recipe: Recipe | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    *,
    console: bool = True,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Run (or resume) the recipe's GRPO training; returns the summary also written to disk.

    Args:
        recipe: the resolved recipe; with ``resume`` it may be None (the run directory's is used).
        run_dir: where everything goes (default ``runs/<name>-<date>-<time>``).
        resume: continue from the newest complete checkpoint in ``run_dir``.
        console: show the progress bar and messages (the log file is always written).
        on_step: called with ``(step, metrics)`` after each step's metrics are logged.
    """
    session_start = time.perf_counter()
    quiet_transformers()

    # --- the run directory: a fresh one, or the one being resumed (same recipe only) -------------
    run_dir, recipe, checkpoint = open_run_dir(recipe, run_dir, resume)
    log = RunLog(run_dir / "train.log", console)
    log.info(f"run directory {run_dir} (recipe {recipe.name}{', resuming' if resume else ''})")

    # --- device, precision, determinism ----------------------------------------------------------
    device = pick_device(recipe.device)
    autocast_dtype = pick_autocast(recipe.dtype, device)
    was_deterministic = (torch.are_deterministic_algorithms_enabled(),
                         torch.is_deterministic_algorithms_warn_only_enabled())
    if device.type == "cpu":  # bitwise-repeatable steps, so that a resumed run repeats the original
        torch.use_deterministic_algorithms(True, warn_only=True)
    seed_everything(recipe.seed)

    # --- the policy: any causal LM + tokenizer that from_pretrained loads -------------------------
    model_path = checkpoint or resolve_model(recipe.model, log, console)
    model, tokenizer = load_policy(model_path, device, recipe.gradient_checkpointing)
    generator = rollout_backend.make_rollout_generator(recipe, model, tokenizer, model_path, device,
                                                       autocast_dtype)
    log.info(f"policy {recipe.model} ({sum(p.numel() for p in model.parameters()):,} parameters) "
             f"on {device}{f' with {autocast_dtype} autocast' if autocast_dtype else ''}")

    # --- problems, as token ids of their chat-formatted prompts -----------------------------------
    train_set = encode_prompts(load_problems(recipe.train_data, "train"), tokenizer, recipe, log.info)
    val_sets = {name: encode_prompts(load_problems(name, "test"), tokenizer, recipe, log.info)
                for name in recipe.val_data}
    if len(train_set) < recipe.prompts_per_step:
        raise TrainingError(f"{recipe.train_data}: {len(train_set)} usable prompts, fewer than "
                            f"prompts_per_step={recipe.prompts_per_step}")

    # --- optimizer: AdamW, linear warm-up then constant, grad clip in the update ------------------
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, betas=recipe.adam_betas,
                                  weight_decay=recipe.weight_decay)
    warmup = recipe.warmup_steps
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: s / max(1, warmup) if s < warmup else 1.0)

    # --- state: fresh, or restored from the checkpoint --------------------------------------------
    state = TrainState()
    health = metrics_mod.HealthMonitor()
    if checkpoint is not None:
        load_checkpoint(checkpoint, optimizer, schedule, state, health)
        log.info(f"resumed from {checkpoint} (step {state.step})")
    # drop the records of steps after the checkpoint (all of them when there is none)
    metrics_mod.truncate_jsonl(run_dir / "metrics.jsonl", state.step if checkpoint is not None else -1)
    sinks = metrics_mod.make_sinks(recipe.loggers, run_dir, recipe.total_steps, state.step, log.info)
    log.attach_console(sinks)

    def record(step: int, values: dict[str, float]) -> None:
        for sink in sinks:
            sink.log(step, values)
        log.file_only(f"step {step}: " + json.dumps(values))

    # --- validation before training ---------------------------------------------------------------
    if state.step == 0 and recipe.val_before_train and val_sets:
        val = validate(generator, val_sets, recipe)
        state.acc_before = state.acc_last = val["val/acc"]
        record(0, val)
        log.info(f"validation before training: accuracy {state.acc_before:.1%}")

    # --- the loop ---------------------------------------------------------------------------------
    stopped = "finished"
    try:
        with stop_on_interrupt(log) as interrupted:
            for step in range(state.step + 1, recipe.total_steps + 1):
                t_step = time.perf_counter()
                timing: dict[str, float] = {}
                rollout_backend.start_peak_memory(device)

                # 1. a batch of prompts, in a seeded order that a resumed run repeats
                batch = next_prompts(train_set, state, recipe.prompts_per_step, recipe.seed)

                # 2. rollouts_per_prompt responses to each, at the rollout temperature
                with timer(timing, "gen"):
                    rollouts = generate_rollouts(generator, batch, recipe,
                                                 seed=derive_seed(recipe.seed, "rollout", step))

                # 3. rewards from the verifier, 4. advantages normalised within each prompt's group
                rewards, correct = score_rollouts(rollouts, recipe)
                advantages = grpo.group_advantages(rewards, rollouts.group, eps=recipe.adv_epsilon,
                                                   normalize_by_std=recipe.normalize_adv_by_std)

                # 5. log-probs of the sampled tokens under the sampling policy, as the trainer sees them
                with timer(timing, "old_log_prob"):
                    old_log_probs, entropy = policy_log_probs(model, rollouts, recipe, device, autocast_dtype)
                sampler_log_probs = padded(rollouts.sampler_log_probs, old_log_probs.shape)
                mask = response_mask(rollouts, old_log_probs.shape)

                # 6. prompts_per_step / mini_batch_prompts optimizer updates (x ppo_epochs)
                with timer(timing, "update"):
                    rollout_backend.before_update(generator)  # colocated vLLM: asleep while training
                    updates = update_policy(model, optimizer, rollouts, old_log_probs, advantages, recipe,
                                            device, autocast_dtype,
                                            shuffle_seed=derive_seed(recipe.seed, "shuffle", step),
                                            nonfinite_in_a_row=state.nonfinite_in_a_row)
                    rollout_backend.after_update(generator, model)  # ... and given the new weights
                lr = schedule.get_last_lr()[0]
                with warnings.catch_warnings():  # all updates skipped: "scheduler stepped before optimizer"
                    warnings.simplefilter("ignore", UserWarning)
                    schedule.step()
                state.nonfinite_in_a_row = updates.nonfinite_in_a_row

                # 7. metrics (verl's names)
                lengths = torch.tensor([len(r) for r in rollouts.response_ids], dtype=torch.float32)
                logprob_diff = grpo.masked_mean((sampler_log_probs - old_log_probs).abs(), mask)
                state.tokens_total += sum(len(p) for p in rollouts.prompt_ids) + int(lengths.sum())
                state.step = step
                values = {
                    "critic/score/mean": rewards.mean().item(),
                    "critic/score/std": rewards.std().item() if len(rewards) > 1 else 0.0,
                    # over response tokens, as verl logs it (a sequence mean is ~0 by construction)
                    "critic/advantages/mean": grpo.masked_mean(advantages[:, None].expand_as(mask), mask).item(),
                    "acc/mean": correct.float().mean().item(),
                    "batch/groups_with_signal": groups_with_signal(rewards, rollouts.group),
                    "actor/entropy": grpo.aggregate(entropy, mask, recipe.loss_agg).item(),
                    "response_length/mean": lengths.mean().item(),
                    "response_length/max": lengths.max().item(),
                    "response_length/clip_ratio": float(np.mean(rollouts.truncated)),
                    "prompt_length/mean": float(np.mean([len(p) for p in rollouts.prompt_ids])),
                    **updates.metrics,
                    "actor/lr": lr,  # the lr this step's updates used (verl 0.9.1 logs the next step's)
                    "actor/nonfinite_skipped": float(updates.skipped),
                    "rollout/logprob_diff": logprob_diff.item(),
                    "tokens/total": float(state.tokens_total),
                }
                state.entropy.append(values["actor/entropy"])
                state.score.append(values["critic/score/mean"])
                if val_sets and (step % recipe.val_every == 0 or step == recipe.total_steps):
                    with timer(timing, "val"):
                        val = validate(generator, val_sets, recipe)
                    state.acc_last = val["val/acc"]
                    values.update(val)
                stop_now = state.nonfinite_in_a_row >= MAX_NONFINITE_IN_A_ROW
                values["timing_s/step"] = time.perf_counter() - t_step
                values.update(rollout_backend.peak_memory_metrics(device))
                values.update({f"timing_s/{k}": v for k, v in timing.items()})
                for alarm in health.check(values):
                    log.warning(alarm)
                if updates.skipped:
                    log.warning(f"step {step}: skipped {updates.skipped} of {updates.count} updates with a "
                                "non-finite loss or gradient")
                record(step, values)
                if on_step is not None:
                    on_step(step, values)

                # 8. checkpoint (atomically), then stop if asked to
                ctrl_c = interrupted()
                if not stop_now and (step % recipe.save_every == 0 or step == recipe.total_steps or ctrl_c):
                    state.wall_seconds += time.perf_counter() - session_start
                    session_start = time.perf_counter()
                    state.health = health.state_dict()
                    save_checkpoint(run_dir, model, tokenizer, optimizer, schedule, state)
                if stop_now:
                    log.error(f"stopping: {state.nonfinite_in_a_row} optimizer updates in a row had a "
                              f"non-finite loss or gradient (step {step}). The last good checkpoint is in "
                              f"{run_dir / 'checkpoints'}; lower the learning rate or check the data.")
                    stopped = "non-finite"
                    break
                if ctrl_c:
                    log.info(f"interrupted: checkpoint of step {step} saved; continue with "
                             f"`justrl train --run-dir {run_dir} --resume`")
                    stopped = "interrupted"
                    break
    finally:
        for sink in sinks:
            sink.close()
        log.detach_console()
        torch.use_deterministic_algorithms(was_deterministic[0], warn_only=was_deterministic[1])

    # --- the final policy and the summary ---------------------------------------------------------
    state.wall_seconds += time.perf_counter() - session_start
    if stopped == "finished":
        save_pretrained_atomically(model, tokenizer, run_dir / "final")
    result = TrainResult(
        run_dir=str(run_dir), steps=state.step, stopped=stopped,
        acc_before=state.acc_before, acc_after=state.acc_last, wall_seconds=round(state.wall_seconds, 1),
        entropy_first=state.entropy[0] if state.entropy else None,
        entropy_last=state.entropy[-1] if state.entropy else None,
        entropy_min=min(state.entropy) if state.entropy else None,
        score_first=state.score[0] if state.score else None,
        score_last=state.score[-1] if state.score else None,
    )
    write_json_atomically(run_dir / "summary.json", asdict(result))
    draw_dynamics(run_dir, recipe, log)
    log.info(summary_text(result, recipe))
    log.close()
    return result


def draw_dynamics(run_dir: Path, recipe: Recipe, log: RunLog) -> None:
    """``dynamics.png``: the run's entropy, reward, length and validation curves (``justrl plot``)."""
    from justrl import plots

    try:
        plots.plot_runs([plots.load_run(run_dir, recipe.name)], run_dir / "dynamics.png",
                        smoothing=0.6, title=f"{recipe.name}: training dynamics")
    except (OSError, ValueError) as exc:  # a figure is a convenience: never fail a finished run on it
        log.warning(f"could not draw {run_dir / 'dynamics.png'}: {exc}")


# =================================================================================================
# The run directory
# =================================================================================================

def open_run_dir(recipe: Recipe | None, run_dir: str | Path | None, resume: bool
                 ) -> tuple[Path, Recipe, Path | None]:
    """``(run_dir, recipe, newest complete checkpoint or None)``.

    Refuses, before writing anything: another recipe's directory, a directory that already holds a
    run (without ``resume``), and a recipe the native engine cannot run (a KL term).
    """
    if run_dir is None:
        if resume:
            raise TrainingError("--resume needs --run-dir: the directory of the run to continue")
        assert recipe is not None
        run_dir = Path("runs") / f"{recipe.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = Path(run_dir)
    saved_path = run_dir / "recipe.yaml"
    saved = recipe_mod.load(str(saved_path)) if saved_path.is_file() else None
    if saved is not None and recipe is not None:
        differ = {k: (v, saved.to_dict()[k]) for k, v in recipe.to_dict().items()
                  if v != saved.to_dict()[k] and (k not in RESUME_MAY_CHANGE or not resume)}
        if differ:
            detail = "; ".join(f"{k}: {old!r} in the run directory, {new!r} now"
                               for k, (new, old) in sorted(differ.items()))
            raise TrainingError(
                f"{run_dir} holds a run of a different recipe ({detail}). Resume it with the recipe it "
                f"was started with (omit --recipe and overrides), or choose another --run-dir.")
    if resume:
        if saved is None:
            raise TrainingError(f"{run_dir} holds no recipe.yaml, so there is no run to resume there")
        recipe = recipe or saved
        checkpoint = latest_checkpoint(run_dir)
    else:
        if saved is not None or (run_dir / "metrics.jsonl").exists():
            raise TrainingError(f"{run_dir} already holds a run; pass --resume to continue it, or "
                                "choose another --run-dir")
        checkpoint = None
    assert recipe is not None
    if recipe.kl_coef != 0:
        raise TrainingError(
            f"kl_coef={recipe.kl_coef}: the native engine has no reference model, so it trains "
            "without a KL term (the paper's setting, kl_coef=0). Use kl_coef=0, or --engine verl.")
    run_dir.mkdir(parents=True, exist_ok=True)
    recipe.save(run_dir / "recipe.yaml")
    return run_dir, recipe, checkpoint


class RunLog:
    """Messages to ``train.log`` (always) and to the console (above the progress bar, if any)."""

    def __init__(self, path: Path, console: bool) -> None:
        self._file = path.open("a", encoding="utf-8")
        self._console = console
        self._print: Callable[[str], None] = self._plain_print

    @staticmethod
    def _plain_print(message: str) -> None:
        import sys

        print(message, file=sys.stderr, flush=True)

    def attach_console(self, sinks: Sequence[Any]) -> None:
        bars = [s for s in sinks if isinstance(s, metrics_mod.ConsoleSink)]
        if bars:
            self._print = bars[0].print

    def detach_console(self) -> None:
        self._print = self._plain_print

    def file_only(self, message: str) -> None:
        self._file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")
        self._file.flush()

    def info(self, message: str) -> None:
        self.file_only(message)
        if self._console:
            self._print(message)

    def warning(self, message: str) -> None:
        self.info(f"WARNING: {message}")

    def error(self, message: str) -> None:
        self.info(f"ERROR: {message}")

    def close(self) -> None:
        self._file.close()


def summary_text(result: TrainResult, recipe: Recipe) -> str:
    lines = [f"{result.stopped} after step {result.steps} in {result.wall_seconds:.0f}s"]
    if result.acc_before is not None and result.acc_after is not None:
        lines.append(
            f"held-out accuracy (sampled at temperature {recipe.val_temperature:g}): "
            f"{result.acc_before:.1%} -> {result.acc_after:.1%} "
            f"({100 * (result.acc_after - result.acc_before):+.1f} points)")
    if result.entropy_first is not None:
        lines.append(f"entropy {result.entropy_first:.3f} -> {result.entropy_last:.3f} "
                     f"(min {result.entropy_min:.3f}); reward {result.score_first:+.2f} -> "
                     f"{result.score_last:+.2f}")
    final = "; final policy: final/" if result.stopped == "finished" else ""
    lines.append(f"run directory: {result.run_dir} (curves: dynamics.png{final})")
    return "\n".join(lines)


# =================================================================================================
# Device, seeds, policy, problems
# =================================================================================================

def quiet_transformers() -> None:
    """No tqdm bars from transformers' loading and saving (they would cut through the progress bar)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError("device=cuda but no CUDA GPU is visible; use device=cpu or auto")
    return torch.device(name)


def pick_autocast(dtype: str, device: torch.device) -> torch.dtype | None:
    """Weights and optimizer stay float32; bfloat16 is used, through autocast, for the forward passes."""
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    if dtype == "bfloat16":
        return torch.bfloat16
    if dtype == "float32":
        return None
    raise TrainingError(f"dtype must be auto, float32 or bfloat16 (got {dtype!r})")


def derive_seed(*parts: object) -> int:
    """A 62-bit seed from any parts (``derive_seed(42, "rollout", 7)``), stable across processes."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 2


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_model(name: str, log: RunLog, console: bool) -> str:
    """The recipe's ``model`` as ``from_pretrained`` takes it (``toy``: the warm-started demo model)."""
    if name != toy.TOY_MODEL:
        return name
    with warm_start_progress(console) as progress:
        return str(toy.prepare(log=log.info, progress=progress))


@contextlib.contextmanager
def warm_start_progress(console: bool):
    if not console:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]warm start"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(), transient=True) as bar:
        task = bar.add_task("warm start", total=None, loss="")

        def progress(step: int, steps: int, loss: float) -> None:
            bar.update(task, completed=step, total=steps, loss=f"{loss:.3f}")

        yield progress


def load_policy(path: str | Path, device: torch.device, gradient_checkpointing: bool):
    """Model (float32 master weights) and tokenizer from a local folder or hub id."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).to(device)
    if gradient_checkpointing:
        model.gradient_checkpointing_enable()
    model.train()
    return model, tokenizer


@dataclass(frozen=True)
class Prompt:
    """A problem and its prompt as the policy sees it."""

    ids: list[int]
    ground_truth: str
    problem_id: str
    source: str


def load_problems(name: str, split: str) -> list[Any]:
    """Problems of a data set: the toy task, a benchmark name (AIME24), a file, or a hub data set."""
    if name == toy.TOY_SOURCE:
        return toy.make_problems(split)
    from justrl import benchmarks, problems

    if not Path(name).exists():
        try:
            bench = benchmarks.get(name)
        except benchmarks.BenchmarkDataError:
            pass
        else:
            return benchmarks.load_problems(benchmarks.locate([bench])[bench.name])
    return problems.load(name)


def encode_prompts(problems: Sequence[Any], tokenizer, recipe: Recipe,
                   log: Callable[[str], None] = print) -> list[Prompt]:
    """Prompts with the recipe's suffix, through the chat template; over-long ones are dropped."""
    from justrl.problems import unwrap_boxed

    out = []
    for p in problems:
        text = p.prompt + recipe.prompt_suffix
        if recipe.use_chat_template:
            text = tokenizer.apply_chat_template([{"role": "user", "content": text}],
                                                 add_generation_prompt=True, tokenize=False)
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        else:
            ids = tokenizer(text)["input_ids"]
        if len(ids) > recipe.max_prompt_tokens:
            continue
        out.append(Prompt(list(ids), unwrap_boxed(p.ground_truth), p.id, p.source))
    if len(out) < len(problems):
        log(f"dropped {len(problems) - len(out)} of {len(problems)} prompts longer than "
                 f"max_prompt_tokens={recipe.max_prompt_tokens}")
    return out


# =================================================================================================
# One step: prompts, rollouts, rewards, log-probs, updates
# =================================================================================================

def next_prompts(train_set: Sequence[Prompt], state: TrainState, count: int, seed: int) -> list[Prompt]:
    """The next ``count`` prompts of the epoch's seeded shuffle; advances the cursor in ``state``."""
    out: list[Prompt] = []
    while len(out) < count:
        order = list(range(len(train_set)))
        random.Random(derive_seed(seed, "data", state.epoch)).shuffle(order)
        take = order[state.position:state.position + count - len(out)]
        out += [train_set[i] for i in take]
        state.position += len(take)
        if state.position >= len(train_set):
            state.epoch, state.position = state.epoch + 1, 0
    return out


@dataclass
class Rollouts:
    """A step's sampled responses, one entry per sequence (prompt-major: group ``g`` is contiguous)."""

    prompt_ids: list[list[int]]
    response_ids: list[list[int]]
    sampler_log_probs: list[list[float]]
    truncated: list[bool]
    texts: list[str]
    ground_truths: list[str]
    group: list[int]
    pad_id: int
    """Filler id for padding (always masked)."""

    def __len__(self) -> int:
        return len(self.response_ids)


def generate_rollouts(generator: HFGenerator, batch: Sequence[Prompt], recipe: Recipe, seed: int) -> Rollouts:
    n = recipe.rollouts_per_prompt
    prompt_ids = [p.ids for p in batch for _ in range(n)]
    params = SamplingParams(temperature=recipe.temperature, top_p=recipe.top_p,
                            max_new_tokens=recipe.max_response_tokens, seed=seed)
    completions = generator.generate_from_ids(prompt_ids, params)
    return Rollouts(
        prompt_ids=prompt_ids,
        response_ids=[c.token_ids for c in completions],
        sampler_log_probs=[c.logprobs for c in completions],
        truncated=[c.finish_reason == "length" for c in completions],
        texts=[c.text for c in completions],
        ground_truths=[p.ground_truth for p in batch for _ in range(n)],
        group=[g for g in range(len(batch)) for _ in range(n)],
        pad_id=generator.pad_token_id,
    )


def score_rollouts(rollouts: Rollouts, recipe: Recipe) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rewards (B,), correct (B,))``: the verifier's +1/-1, plus the overlong penalty when on."""
    from justrl.verifiers import verify_batch

    verdicts = verify_batch(recipe.verifier, rollouts.texts, rollouts.ground_truths)
    correct = torch.tensor([v.correct for v in verdicts])
    rewards = torch.where(correct, recipe.reward_correct, recipe.reward_incorrect).to(torch.float32)
    if recipe.overlong_buffer_tokens > 0:
        lengths = torch.tensor([len(r) for r in rollouts.response_ids], dtype=torch.float32)
        rewards = rewards + overlong_penalty(lengths, recipe.max_response_tokens,
                                             recipe.overlong_buffer_tokens, recipe.overlong_penalty_factor)
    return rewards, correct


def overlong_penalty(lengths: torch.Tensor, max_response_tokens: int, buffer_tokens: int,
                     factor: float) -> torch.Tensor:
    """DAPO's soft overlong punishment (verl ``DAPORewardManager``), added to the reward.

    0 up to ``max_response_tokens - buffer_tokens`` tokens, then falling linearly to ``-factor`` at
    ``max_response_tokens``: ``min(0, -(length - expected) / buffer_tokens * factor)``.
    """
    expected = max_response_tokens - buffer_tokens
    return torch.clamp(-(lengths - expected) / buffer_tokens * factor, max=0.0)


def groups_with_signal(rewards: torch.Tensor, group: Sequence[int]) -> float:
    """Share of prompts whose rollouts did not all get the same reward (only those move the policy)."""
    by_group: dict[int, set[float]] = {}
    for g, r in zip(group, rewards.tolist()):
        by_group.setdefault(g, set()).add(r)
    return sum(len(v) > 1 for v in by_group.values()) / max(1, len(by_group))


@dataclass
class Packed:
    """Sequences as the model reads them: ``[left-padded prompt | right-padded response]``."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    responses: torch.Tensor
    """``(B, T)`` response token ids (padding: any id, masked)."""
    response_mask: torch.Tensor
    """``(B, T)`` 1 on response tokens (the stop token included)."""


def pack(rollouts: Rollouts, rows: Sequence[int], pad_id: int, device: torch.device) -> Packed:
    prompt, prompt_mask = left_pad([rollouts.prompt_ids[i] for i in rows], pad_id)
    width = max(1, max(len(rollouts.response_ids[i]) for i in rows))
    responses = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for k, i in enumerate(rows):
        ids = rollouts.response_ids[i]
        responses[k, :len(ids)] = torch.tensor(ids, dtype=torch.long)
        mask[k, :len(ids)] = 1
    attention = torch.cat([prompt_mask, mask], dim=1)
    return Packed(
        input_ids=torch.cat([prompt, responses], dim=1).to(device),
        attention_mask=attention.to(device),
        position_ids=position_ids(attention).to(device),
        responses=responses.to(device),
        response_mask=mask.to(device),
    )


LOGITS_CHUNK_ELEMENTS = 2**27
"""Above this many logits per forward (B x T x vocab), they are made and reduced in chunks of
response positions, recomputed in backward: a 1.5B Qwen's 8 x 15k x 152k float32 logits (75 GB)
never exist at once."""


def forward_log_probs(model, packed: Packed, temperature: float, autocast_dtype: torch.dtype | None,
                      with_entropy: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(log_probs (B, T), entropy (B, T) or None)`` of the response tokens at ``temperature``."""
    batch, width = packed.responses.shape
    autocast = (torch.autocast(packed.input_ids.device.type, dtype=autocast_dtype)
                if autocast_dtype is not None else contextlib.nullcontext())
    vocab = model.config.get_text_config().vocab_size
    if batch * width * vocab > LOGITS_CHUNK_ELEMENTS and plain_lm_head(model):
        with autocast:
            hidden = model.get_decoder()(input_ids=packed.input_ids, attention_mask=packed.attention_mask,
                                         position_ids=packed.position_ids, use_cache=False).last_hidden_state
        return chunked_log_probs(model.get_output_embeddings(), hidden[:, -width - 1:-1], packed.responses,
                                 temperature, autocast, with_entropy,
                                 chunk=max(1, LOGITS_CHUNK_ELEMENTS // (batch * vocab)))
    with autocast:
        logits = model(input_ids=packed.input_ids, attention_mask=packed.attention_mask,
                       position_ids=packed.position_ids, use_cache=False,
                       logits_to_keep=width + 1).logits[:, :-1]
    logits = logits.float() / temperature
    log_probs = grpo.token_log_probs(logits, packed.responses)
    entropy = grpo.entropy_from_logits(logits) if with_entropy else None
    return log_probs, entropy


def plain_lm_head(model) -> bool:
    """Whether the model's logits are just ``lm_head(decoder(x))`` (no soft-capping or scaling)."""
    config = model.config.get_text_config()
    return (model.get_output_embeddings() is not None and hasattr(model, "get_decoder")
            and getattr(config, "final_logit_softcapping", None) is None
            and getattr(config, "logit_scale", None) in (None, 1.0))


def chunked_log_probs(lm_head, hidden: torch.Tensor, tokens: torch.Tensor, temperature: float, autocast,
                      with_entropy: bool, chunk: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`forward_log_probs` from hidden states ``(B, T, H)``, ``chunk`` positions at a time."""
    from torch.utils.checkpoint import checkpoint

    def piece(h: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with autocast:
            logits = lm_head(h)
        logits = logits.float() / temperature
        entropy = (grpo.entropy_from_logits(logits) if with_entropy
                   else torch.zeros_like(t, dtype=torch.float32))
        return grpo.token_log_probs(logits, t), entropy

    parts = [checkpoint(piece, hidden[:, i:i + chunk], tokens[:, i:i + chunk], use_reentrant=False)
             if torch.is_grad_enabled() else piece(hidden[:, i:i + chunk], tokens[:, i:i + chunk])
             for i in range(0, tokens.shape[1], chunk)]
    log_probs = torch.cat([p[0] for p in parts], dim=1)
    return log_probs, torch.cat([p[1] for p in parts], dim=1) if with_entropy else None


def policy_log_probs(model, rollouts: Rollouts, recipe: Recipe, device: torch.device,
                     autocast_dtype: torch.dtype | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Old log-probs and entropy ``(B, T_max)`` of all rollouts under the current policy, no grad."""
    width = max(1, max(len(r) for r in rollouts.response_ids))
    log_probs = torch.zeros(len(rollouts), width)
    entropy = torch.zeros(len(rollouts), width)
    pad_id = rollouts.pad_id
    model.eval()  # as verl's inference pass: no dropout noise in the old log-probs
    with torch.no_grad():
        for rows in micro_batches.for_rollouts(rollouts, range(len(rollouts)), recipe):
            packed = pack(rollouts, rows, pad_id, device)
            lp, ent = forward_log_probs(model, packed, recipe.temperature, autocast_dtype, with_entropy=True)
            assert ent is not None
            log_probs[rows, :lp.shape[1]] = lp.cpu()
            entropy[rows, :ent.shape[1]] = ent.cpu()
    return log_probs, entropy


def padded(rows: Sequence[Sequence[float]], shape: torch.Size) -> torch.Tensor:
    out = torch.zeros(shape)
    for i, row in enumerate(rows):
        out[i, :len(row)] = torch.tensor(row, dtype=torch.float32)
    return out


def response_mask(rollouts: Rollouts, shape: torch.Size) -> torch.Tensor:
    lengths = torch.tensor([len(r) for r in rollouts.response_ids])
    return (torch.arange(shape[1]).unsqueeze(0) < lengths.unsqueeze(1)).float()


@dataclass
class UpdateStats:
    """What :func:`update_policy` did: update count, skipped ones, and mean diagnostics."""

    count: int
    skipped: int
    nonfinite_in_a_row: int
    """Skipped updates in a row at the end (counting those before the step)."""
    metrics: dict[str, float]


def update_policy(model, optimizer: torch.optim.Optimizer, rollouts: Rollouts, old_log_probs: torch.Tensor,
                  advantages: torch.Tensor, recipe: Recipe, device: torch.device,
                  autocast_dtype: torch.dtype | None, shuffle_seed: int,
                  nonfinite_in_a_row: int = 0) -> UpdateStats:
    """``ppo_epochs x prompts_per_step / mini_batch_prompts`` optimizer updates over shuffled mini-batches.

    Each mini-batch is processed in micro-batches (``micro_batch_sequences`` rows, or a
    ``micro_batch_tokens`` budget: :mod:`justrl.micro_batches`) whose gradients
    accumulate to exactly the mini-batch's (the loss is normalised by the mini-batch's counts).
    An update whose loss or gradient norm is not finite is skipped (gradients dropped); after
    ``MAX_NONFINITE_IN_A_ROW`` such updates in a row (``nonfinite_in_a_row`` came from earlier
    steps) the remaining updates are not attempted.
    """
    per_update = recipe.mini_batch_prompts * recipe.rollouts_per_prompt
    pad_id = rollouts.pad_id
    lengths = [len(r) for r in rollouts.response_ids]
    params = [p for p in model.parameters() if p.requires_grad]
    sums = {"actor/pg_loss": 0.0, "actor/pg_clipfrac": 0.0, "actor/pg_clipfrac_lower": 0.0,
            "actor/ppo_kl": 0.0, "actor/grad_norm": 0.0}
    count = skipped = good = 0
    streak = nonfinite_in_a_row
    model.train()
    for epoch in range(recipe.ppo_epochs):
        if streak >= MAX_NONFINITE_IN_A_ROW:
            break
        if recipe.shuffle_mini_batches:
            shuffle = torch.Generator().manual_seed(shuffle_seed + epoch)
            order = torch.randperm(len(rollouts), generator=shuffle)
        else:
            order = torch.arange(len(rollouts))
        for start in range(0, len(rollouts), per_update):
            if streak >= MAX_NONFINITE_IN_A_ROW:
                break
            mini = order[start:start + per_update].tolist()
            mini_tokens = sum(lengths[i] for i in mini)
            optimizer.zero_grad(set_to_none=True)
            loss_total, stats, finite = 0.0, {"actor/pg_clipfrac": 0.0, "actor/pg_clipfrac_lower": 0.0,
                                              "actor/ppo_kl": 0.0}, True
            for rows in micro_batches.for_rollouts(rollouts, mini, recipe):
                packed = pack(rollouts, rows, pad_id, device)
                log_probs, entropy = forward_log_probs(model, packed, recipe.temperature, autocast_dtype,
                                                       with_entropy=recipe.entropy_coef != 0)
                width = log_probs.shape[1]
                loss, pl_stats = grpo.policy_loss(
                    log_probs, old_log_probs[rows, :width].to(device), advantages[rows].to(device),
                    packed.response_mask, clip_low=recipe.clip_low, clip_high=recipe.clip_high,
                    clip_c=recipe.clip_c, agg=recipe.loss_agg,
                    batch_num_tokens=mini_tokens, batch_num_seqs=len(mini))
                if entropy is not None:
                    loss = loss - recipe.entropy_coef * grpo.aggregate(
                        entropy, packed.response_mask, recipe.loss_agg, mini_tokens, len(mini))
                if not torch.isfinite(loss):
                    finite = False
                    break
                loss.backward()
                loss_total += loss.item()
                share = float(packed.response_mask.sum()) / max(1, mini_tokens)  # token-weighted
                for key, value in pl_stats.as_metrics().items():
                    stats[key] += value * share
            grad_norm = (torch.nn.utils.clip_grad_norm_(params, recipe.grad_clip).item()
                         if finite else float("nan"))
            count += 1
            if not (finite and math.isfinite(grad_norm)):
                optimizer.zero_grad(set_to_none=True)
                skipped += 1
                streak += 1
                continue
            optimizer.step()
            good += 1
            streak = 0
            sums["actor/pg_loss"] += loss_total
            sums["actor/grad_norm"] += grad_norm
            for key, value in stats.items():
                sums[key] += value
    optimizer.zero_grad(set_to_none=True)
    metrics = {k: (v / good if good else float("nan")) for k, v in sums.items()}
    return UpdateStats(count=count, skipped=skipped, nonfinite_in_a_row=streak, metrics=metrics)


# =================================================================================================
# Validation
# =================================================================================================

def validate(generator: HFGenerator, val_sets: dict[str, list[Prompt]], recipe: Recipe) -> dict[str, float]:
    """Held-out accuracy: ``val_samples`` samples per problem at the validation temperature / top-p.

    The seeds are the same at every validation, so successive validations differ only by the
    policy (common random numbers make before/after comparisons less noisy).
    """
    from justrl.verifiers import verify_batch

    params = SamplingParams(temperature=recipe.val_temperature, top_p=recipe.val_top_p,
                            max_new_tokens=recipe.val_max_tokens, seed=derive_seed(recipe.seed, "val"))
    out: dict[str, float] = {}
    accuracies = []
    for name, prompts in val_sets.items():
        n = recipe.val_samples
        completions = generator.generate_from_ids([p.ids for p in prompts for _ in range(n)], params)
        truths = [p.ground_truth for p in prompts for _ in range(n)]
        verdicts = verify_batch(recipe.verifier, [c.text for c in completions], truths)
        acc = float(np.mean([v.correct for v in verdicts]))
        out[f"val-core/{name}/acc/mean@{n}"] = acc
        accuracies.append(acc)
    out["val/acc"] = float(np.mean(accuracies))
    return out


# =================================================================================================
# Checkpoints: atomic, complete or ignored
# =================================================================================================

def save_checkpoint(run_dir: Path, model, tokenizer, optimizer, schedule, state: TrainState) -> Path:
    """``checkpoints/step_N/``: policy (HF format), optimizer, lr schedule, RNG states, train state.

    Written into a temporary folder, synced, marked complete, then renamed into place: a folder
    named ``step_N`` is always whole.
    """
    root = run_dir / "checkpoints"
    final = root / f"step_{state.step}"
    if (final / COMPLETE_MARKER).is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-step_{state.step}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    torch.save({
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "rng": {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
    }, tmp / "trainer.pt")
    (tmp / "train_state.json").write_text(json.dumps(asdict(state)))
    (tmp / COMPLETE_MARKER).write_text(f"step {state.step}\n")
    for path in tmp.iterdir():
        fsync(path)
    if final.exists():  # an incomplete leftover of an earlier attempt
        shutil.rmtree(final)
    os.rename(tmp, final)
    fsync(root)
    complete = sorted(complete_checkpoints(run_dir))
    for _, path in complete[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(path, ignore_errors=True)
    return final


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def complete_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    out = []
    for path in (run_dir / "checkpoints").glob("step_*"):
        suffix = path.name[len("step_"):]
        if suffix.isdigit() and (path / COMPLETE_MARKER).is_file():
            out.append((int(suffix), path))
    return out


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint (temporary and unmarked folders are never picked)."""
    complete = complete_checkpoints(run_dir)
    for leftover in (run_dir / "checkpoints").glob(".tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    return max(complete)[1] if complete else None


def load_checkpoint(path: Path, optimizer, schedule, state: TrainState,
                    health: metrics_mod.HealthMonitor) -> None:
    """Restore optimizer, schedule, RNG states and train state (the policy was loaded from ``path``)."""
    saved = torch.load(path / "trainer.pt", weights_only=False)
    optimizer.load_state_dict(saved["optimizer"])
    schedule.load_state_dict(saved["schedule"])
    rng = saved["rng"]
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    for key, value in json.loads((path / "train_state.json").read_text()).items():
        setattr(state, key, value)
    health.load_state_dict(state.health)


def save_pretrained_atomically(model, tokenizer, target: Path) -> None:
    tmp = target.with_name(f".tmp-{target.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    os.rename(tmp, target)


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


# =================================================================================================
# Small utilities
# =================================================================================================

@contextlib.contextmanager
def timer(timing: dict[str, float], key: str):
    start = time.perf_counter()
    yield
    timing[key] = time.perf_counter() - start


@contextlib.contextmanager
def stop_on_interrupt(log: RunLog):
    """Turn the first Ctrl-C into a request to stop after the current step (with a checkpoint).

    Yields a function telling whether a stop was requested. A second Ctrl-C aborts at once. Outside
    the main thread (where signals cannot be caught) Ctrl-C keeps its default behaviour.
    """
    requested = False

    def handler(signum, frame):
        nonlocal requested
        if requested:
            raise KeyboardInterrupt
        requested = True
        log.info("Ctrl-C: finishing this step and saving a checkpoint (Ctrl-C again to abort now)")

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        yield lambda: False
        return
    try:
        yield lambda: requested
    finally:
        signal.signal(signal.SIGINT, previous)
