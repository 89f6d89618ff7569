"""The native JustRL engine: single-stage GRPO on a CPU or one GPU, in one readable loop.

:func:`train` is the whole run, top to bottom:

    run directory -> policy -> problems -> optimizer -> (resume) -> validation
    loop: prompts -> rollouts -> rewards -> group advantages -> old log-probs
          -> mini-batch updates -> metrics -> validation -> checkpoint
    -> final policy + summary

It calls :func:`update_policy` and :func:`validate` below, and the plumbing of three modules, in
the order a reader meets them: :mod:`justrl.train.rollouts` (prompts -> rollouts -> rewards),
:mod:`justrl.train.logprobs` (packing, log-probs, masks) and :mod:`justrl.train.runs` (run folder,
checkpoints, summary). Everything it does is decided by the :class:`~justrl.recipe.Recipe`. There
are no stages and no schedules beyond the recipe's warm-up: that is the point of JustRL.

Conventions shared with verl (so that the numbers mean the same thing):

- Old log-probs are recomputed by the trainer under the policy that sampled (not taken from the
  sampler); the sampler's own log-probs are only compared with them (``rollout/logprob_diff``).
  Those of the first update's rows come from that update's own forward pass, which runs under the
  same weights (a dropout-free model computes the same in training mode).
- Log-probs and entropy use ``logits / temperature``; ``actor/entropy`` is measured on the
  sampling policy in that same pass.
- The learning rate follows transformers' ``get_constant_schedule_with_warmup`` stepped once per
  training step (so, as in verl, the first step's lr is 0 when there is a warm-up).
- A micro-batch's loss is divided by its mini-batch's token (or sequence) count, so gradient
  accumulation gives exactly the mini-batch's gradient.

The data order and the validation grader are the release's (see the recipe): with ``data_seed`` one
``torch.randperm`` a pass, as verl's sampler draws it; the prompt in ``prompt_format``; validation
graded by ``val_verifier`` at ``val_max_tokens``.

Exact resume: every random choice is derived from ``(recipe.seed, step)`` (``data_seed`` and
``rollout_seed`` where set) or restored from the checkpoint, so on CPU a resumed run repeats,
number for number, what the uninterrupted run did.

Messages go through :mod:`logging` (``justrl.train.loop``, ``justrl.train.runs``, ...); ``train.log`` in
the run directory gets all of them and each step's metrics.
"""

from __future__ import annotations

import json
import math
import signal
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from justrl import grpo, io, logs
from justrl.dynamics import metrics as metrics_mod
from justrl.errors import TrainingError
from justrl.generate.hf import HFGenerator, SamplingParams
from justrl.recipe import Recipe
from justrl.train import backend as rollout_backend
from justrl.train import micro_batches, runs
from justrl.train.devices import (
    derive_seed,
    deterministic_on_cpu,
    pick_autocast,
    pick_device,
    seed_everything,
)
from justrl.train.logprobs import (
    forward_log_probs,
    pack,
    padded,
    policy_log_probs,
    response_mask,
    shares_prompts,
)
from justrl.train.rollouts import (
    Prompt,
    Rollouts,
    encode_prompts,
    generate_rollouts,
    groups_with_signal,
    load_problems,
    next_prompts,
    rollout_seed,
    score_rollouts,
)
from justrl.train.runs import TrainResult, TrainState

__all__ = ["MAX_NONFINITE_IN_A_ROW", "TrainResult", "TrainingError", "UpdateStats", "train",
           "update_policy", "validate"]

log = logs.get(__name__)

MAX_NONFINITE_IN_A_ROW = 3
"""Consecutive optimizer updates with a non-finite loss or gradient after which the run stops."""


def train(
    recipe: Recipe | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    *,
    console: bool = True,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Run (or resume) the recipe's GRPO training; returns the summary also written to disk.

    It opens (and locks) the run folder; :func:`_train_locked` is then the whole run, top to
    bottom, longer than the project's usual 120 lines on purpose: a reader sees every step of the
    loop in order, and the plumbing it calls lives in :mod:`justrl.train.rollouts`,
    :mod:`justrl.train.logprobs` and :mod:`justrl.train.runs`.

    Args:
        recipe: the resolved recipe; with ``resume`` it may be None (the run directory's is used).
        run_dir: where everything goes (default ``runs/<name>-<date>-<time>``).
        resume: continue from the newest complete checkpoint in ``run_dir``.
        console: show the progress bar and let messages reach the console (through the ``justrl``
            logger's handlers); False keeps the run silent. ``train.log`` is always written.
        on_step: called with ``(step, metrics)`` after each step's metrics are logged.
    """
    session_start = time.perf_counter()
    logs.quiet_transformers()

    # --- the run directory: a fresh one, or the one being resumed (same recipe only) -------------
    run_dir, recipe, checkpoint = runs.open_run_dir(recipe, run_dir, resume)
    with io.FolderLock(run_dir, "training run"):  # one writer per run folder, for the whole run
        return _train_locked(recipe, run_dir, checkpoint, resume, console, on_step, session_start)


def _train_locked(recipe: Recipe, run_dir: Path, checkpoint: Path | None, resume: bool, console: bool,
                  on_step: Callable[[int, dict[str, float]], None] | None, session_start: float) -> TrainResult:
    """The body of :func:`train` (the whole run, top to bottom), with the run folder locked."""
    # --- device, precision, determinism (bitwise-repeatable CPU kernels, for exact resume) --------
    device = pick_device(recipe.device)
    autocast_dtype = pick_autocast(recipe.dtype, device)
    with runs.run_log(run_dir, console), deterministic_on_cpu(device):
        log.info("run directory %s (recipe %s%s)", run_dir, recipe.name, ", resuming" if resume else "")
        io.sweep_staging(run_dir)  # what a killed writer wrote aside and never renamed (logged)
        if checkpoint is not None:  # the newest that loads, told in train.log when one is skipped
            checkpoint = runs.resumable_checkpoint(run_dir)
        seed_everything(recipe.seed)

        # --- the problems first: a bad data path fails before any model loads ----------------------
        train_problems = load_problems(recipe.train_data, "train", dedupe=recipe.train_dedup,
                                       answer_from=recipe.answer_from)
        val_problems = {name: load_problems(name, "test") for name in recipe.val_data}

        # --- the policy: any causal LM + tokenizer that from_pretrained loads ---------------------
        model_path = checkpoint or runs.resolve_model(recipe.model, console)
        model, tokenizer = runs.load_policy(model_path, device, recipe.gradient_checkpointing)
        generator = rollout_backend.make_rollout_generator(recipe, model, tokenizer, model_path, device,
                                                           autocast_dtype)
        log.info("policy %s (%s parameters) on %s%s", recipe.model,
                 f"{sum(p.numel() for p in model.parameters()):,}", device,
                 f" with {autocast_dtype} autocast" if autocast_dtype else "")

        no_dropout = dropout_free(model)  # the first update's pass then gives its old log-probs

        # --- problems, as token ids of their chat-formatted prompts -------------------------------
        train_set = encode_prompts(train_problems, tokenizer, recipe)
        val_sets = {name: encode_prompts(problems, tokenizer, recipe) for name, problems in val_problems.items()}
        if len(train_set) < recipe.prompts_per_step:
            raise TrainingError(f"{recipe.train_data}: {len(train_set)} usable prompts, fewer than "
                                f"prompts_per_step={recipe.prompts_per_step}")
        runs.record_recipe(run_dir, recipe)  # start-up succeeded: from now on the folder holds this run

        # --- optimizer: AdamW, linear warm-up then constant, grad clip in the update --------------
        from transformers import get_constant_schedule_with_warmup

        optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, betas=recipe.adam_betas,
                                      weight_decay=recipe.weight_decay,
                                      fused=device.type in ("cpu", "cuda"))  # one kernel a step, not one per tensor
        schedule = get_constant_schedule_with_warmup(optimizer, num_warmup_steps=recipe.warmup_steps)

        # --- state: fresh, or restored from the checkpoint ----------------------------------------
        state = TrainState()
        health = metrics_mod.HealthMonitor()
        if checkpoint is not None:
            runs.load_checkpoint(checkpoint, optimizer, schedule, state, health)
            log.info("resumed from %s (step %d)", checkpoint, state.step)
        # drop the records of steps after the checkpoint (all of them when there is none)
        metrics_mod.truncate_jsonl(run_dir / "metrics.jsonl", state.step if checkpoint is not None else -1)
        sinks = metrics_mod.make_sinks(recipe.loggers, run_dir, recipe.total_steps, state.step,
                                       progress_bar=console and logs.progress_enabled(),
                                       name=recipe.name, config=recipe.to_dict())  # W&B gets the recipe

        def record(step: int, values: dict[str, float]) -> None:
            for sink in sinks:
                sink.log(step, values)
            runs.step_log.info("step %d: %s", step, json.dumps(values))

        # --- validation before training -----------------------------------------------------------
        stopped = "finished"
        stop_signal: int | None = None
        try:
            if state.step == 0 and recipe.val_before_train and val_sets:
                val = validate(generator, val_sets, recipe)
                state.acc_before = state.acc_last = val["val/acc"]
                record(0, val)
                log.info("validation before training: accuracy %.1f%%", 100 * state.acc_before)

            # --- the loop -------------------------------------------------------------------------
            with runs.stop_on_interrupt() as interrupted:
                for step in range(state.step + 1, recipe.total_steps + 1):
                    t_step = time.perf_counter()
                    timing: dict[str, float] = {}
                    rollout_backend.start_peak_memory(device)

                    # 1. a batch of prompts, in a seeded order that a resumed run repeats
                    batch = next_prompts(train_set, state, recipe.prompts_per_step, recipe.seed, recipe.data_seed)

                    # 2. rollouts_per_prompt responses to each, at the rollout temperature
                    with metrics_mod.timer(timing, "gen"):
                        rollouts = generate_rollouts(generator, batch, recipe,
                                                     seed=derive_seed(rollout_seed(recipe), "rollout", step))

                    # 3. rewards from the verifier, 4. advantages normalised within each prompt's group
                    rewards, correct = score_rollouts(rollouts, recipe)
                    advantages = grpo.group_advantages(rewards, rollouts.group, eps=recipe.adv_epsilon,
                                                       normalize_by_std=recipe.normalize_adv_by_std)

                    # 5. log-probs of the sampled tokens under the sampling policy, as the trainer sees them
                    #    (the first update's rows: in that update's own forward pass, see update_policy)
                    shuffle_seed = derive_seed(recipe.seed, "shuffle", step)
                    first = (first_mini_batch(recipe, len(rollouts), shuffle_seed)
                             if no_dropout and state.nonfinite_in_a_row < MAX_NONFINITE_IN_A_ROW else [])
                    with metrics_mod.timer(timing, "old_log_prob"):
                        old_log_probs, entropy = policy_log_probs(model, rollouts, recipe, device,
                                                                  autocast_dtype, skip=first)
                    sampler_log_probs = padded(rollouts.sampler_log_probs, old_log_probs.shape)
                    mask = response_mask(rollouts, old_log_probs.shape)

                    # 6. prompts_per_step / mini_batch_prompts optimizer updates (x ppo_epochs)
                    with metrics_mod.timer(timing, "update"):
                        rollout_backend.before_update(generator)  # colocated vLLM: asleep while training
                        updates = update_policy(model, optimizer, rollouts, old_log_probs, advantages,
                                                recipe, device, autocast_dtype, shuffle_seed=shuffle_seed,
                                                nonfinite_in_a_row=state.nonfinite_in_a_row,
                                                on_policy_entropy=entropy if first else None)
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
                        "critic/advantages/mean": grpo.masked_mean(advantages[:, None].expand_as(mask),
                                                                   mask).item(),
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
                        with metrics_mod.timer(timing, "val"):
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
                        log.warning("step %d: skipped %d of %d updates with a non-finite loss or gradient",
                                    step, updates.skipped, updates.count)
                    record(step, values)
                    if on_step is not None:
                        on_step(step, values)

                    # 8. checkpoint (atomically), then stop if asked to
                    stop_signal = interrupted()
                    if not stop_now and (step % recipe.save_every == 0 or step == recipe.total_steps
                                         or stop_signal is not None):
                        state.wall_seconds += time.perf_counter() - session_start
                        session_start = time.perf_counter()
                        state.health = health.state_dict()
                        runs.save_checkpoint(run_dir, model, tokenizer, optimizer, schedule, state)
                    if stop_now:
                        log.error("stopping: %d optimizer updates in a row had a non-finite loss or "
                                  "gradient (step %d). The last good checkpoint is in %s; lower the "
                                  "learning rate or check the data.", state.nonfinite_in_a_row, step,
                                  run_dir / "checkpoints")
                        stopped = "non-finite"
                        break
                    if stop_signal is not None:
                        log.info("interrupted: checkpoint of step %d saved; continue with "
                                 "`justrl train --run-dir %s --resume`", step, run_dir)
                        stopped = "interrupted"
                        break
        finally:
            for sink in sinks:
                sink.close()

        # --- the final policy and the summary -----------------------------------------------------
        state.wall_seconds += time.perf_counter() - session_start
        if stopped == "finished":
            runs.save_final_policy(model, tokenizer, run_dir)
        return runs.write_summary(run_dir, recipe, state, stopped,
                                  signal.Signals(stop_signal).name if stopped == "interrupted" and stop_signal
                                  else None)


@dataclass
class UpdateStats:
    """What :func:`update_policy` did: update count, skipped ones, and mean diagnostics."""

    count: int
    skipped: int
    nonfinite_in_a_row: int
    """Skipped updates in a row at the end (counting those before the step)."""
    metrics: dict[str, float]


def mini_batch_order(recipe: Recipe, count: int, shuffle_seed: int, epoch: int) -> list[int]:
    """The rollouts in the order the update cuts them into mini-batches in ``epoch``."""
    if recipe.shuffle_mini_batches:
        return torch.randperm(count, generator=torch.Generator().manual_seed(shuffle_seed + epoch)).tolist()
    return list(range(count))


def first_mini_batch(recipe: Recipe, count: int, shuffle_seed: int) -> list[int]:
    """The rows of a step's first update, the one that runs under the sampling policy itself."""
    return mini_batch_order(recipe, count, shuffle_seed, 0)[:recipe.mini_batch_prompts * recipe.rollouts_per_prompt]


def dropout_free(model) -> bool:
    """Whether the model computes the same in training mode as in eval mode (no dropout anywhere),
    so the first update's forward pass gives the old log-probs that verl's inference pass would."""
    config = model.config.get_text_config()
    rates = [v for k, v in vars(config).items() if "dropout" in k and isinstance(v, (int, float))]
    return not any(rates) and not any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in model.modules())


def update_policy(model, optimizer: torch.optim.Optimizer, rollouts: Rollouts, old_log_probs: torch.Tensor,
                  advantages: torch.Tensor, recipe: Recipe, device: torch.device,
                  autocast_dtype: torch.dtype | None, shuffle_seed: int,
                  nonfinite_in_a_row: int = 0, on_policy_entropy: torch.Tensor | None = None) -> UpdateStats:
    """``ppo_epochs x prompts_per_step / mini_batch_prompts`` optimizer updates over shuffled mini-batches.

    Each mini-batch is processed in micro-batches (``micro_batch_sequences`` rows, or a
    ``micro_batch_tokens`` budget: :mod:`justrl.train.micro_batches`) whose gradients
    accumulate to exactly the mini-batch's (the loss is normalised by the mini-batch's counts).
    An update whose loss or gradient norm is not finite is skipped (gradients dropped); after
    ``MAX_NONFINITE_IN_A_ROW`` such updates in a row (``nonfinite_in_a_row`` came from earlier
    steps) the remaining updates are not attempted.

    With ``on_policy_entropy``, the old log-probs of the first update's rows
    (:func:`first_mini_batch`) were not computed: nothing has changed the policy before that update,
    so its own forward pass gives them (detached, the ratio 1), and they are written into
    ``old_log_probs``, with the entropy into ``on_policy_entropy``, as the inference pass would have.
    """
    per_update = recipe.mini_batch_prompts * recipe.rollouts_per_prompt
    pad_id = rollouts.pad_id
    lengths = [len(r) for r in rollouts.response_ids]
    params = [p for p in model.parameters() if p.requires_grad]
    one_row_a_prompt = shares_prompts(recipe, model)
    sums = {"actor/pg_loss": 0.0, "actor/pg_clipfrac": 0.0, "actor/pg_clipfrac_lower": 0.0,
            "actor/ppo_kl": 0.0, "actor/grad_norm": 0.0}
    count = skipped = good = 0
    streak = nonfinite_in_a_row
    model.train()
    for epoch in range(recipe.ppo_epochs):
        if streak >= MAX_NONFINITE_IN_A_ROW:
            break
        order = mini_batch_order(recipe, len(rollouts), shuffle_seed, epoch)
        for start in range(0, len(rollouts), per_update):
            if streak >= MAX_NONFINITE_IN_A_ROW:
                break
            mini = order[start:start + per_update]
            on_policy = on_policy_entropy is not None and epoch == 0 and start == 0
            mini_tokens = sum(lengths[i] for i in mini)
            optimizer.zero_grad(set_to_none=True)
            loss_total, stats, finite = 0.0, {"actor/pg_clipfrac": 0.0, "actor/pg_clipfrac_lower": 0.0,
                                              "actor/ppo_kl": 0.0}, True
            for rows in micro_batches.for_rollouts(rollouts, mini, recipe):
                packed = pack(rollouts, rows, pad_id, device, one_row_a_prompt)
                log_probs, entropy = forward_log_probs(model, packed, recipe.temperature, autocast_dtype,
                                                       with_entropy=recipe.entropy_coef != 0 or on_policy)
                width = log_probs.shape[1]
                if on_policy:
                    assert on_policy_entropy is not None and entropy is not None
                    old_log_probs[rows, :width] = log_probs.detach().cpu()
                    on_policy_entropy[rows, :width] = entropy.detach().cpu()
                loss, pl_stats = grpo.policy_loss(
                    log_probs, old_log_probs[rows, :width].to(device), advantages[rows].to(device),
                    packed.response_mask, clip_low=recipe.clip_low, clip_high=recipe.clip_high,
                    clip_c=recipe.clip_c, agg=recipe.loss_agg,
                    batch_num_tokens=mini_tokens, batch_num_seqs=len(mini))
                if recipe.entropy_coef != 0:
                    assert entropy is not None
                    loss = loss - recipe.entropy_coef * grpo.aggregate(
                        entropy, packed.response_mask, recipe.loss_agg, mini_tokens, len(mini))
                if not (finite and torch.isfinite(loss)):
                    finite = False
                    if on_policy:
                        continue  # the update is skipped, but the rest of its old log-probs are still due
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
        with rollout_backend.sized_for_validation(generator, recipe):
            completions = generator.generate_from_ids([p.ids for p in prompts for _ in range(n)], params)
        truths = [p.ground_truth for p in prompts for _ in range(n)]
        verdicts = verify_batch(recipe.val_verifier, [c.text for c in completions], truths)
        acc = float(np.mean([v.correct for v in verdicts]))
        out[f"val-core/{name}/acc/mean@{n}"] = acc
        accuracies.append(acc)
    out["val/acc"] = float(np.mean(accuracies))
    return out
