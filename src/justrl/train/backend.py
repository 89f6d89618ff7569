"""The trainer's rollout backend (the recipe's ``rollout_backend``) and its per-step duties.

``hf`` / ``hf-static`` / ``auto`` sample with the policy module itself (:mod:`justrl.generate.hf`,
:mod:`justrl.generate.static`), so they always see the current weights. ``vllm`` samples with a
separate, colocated engine (:mod:`justrl.generate.colocate`) that must sleep while the policy is
updated and be given the new weights afterwards: :func:`before_update` and :func:`after_update`
are where the trainer says so, and they do nothing for the other backends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from justrl import logs
from justrl.generate.factory import make_hf_generator
from justrl.recipe import Recipe

log = logs.get(__name__)


TRUNCATED_SAMPLING_BIAS = (
    "top_p={top_p} < 1 with vLLM rollouts: vLLM samples from the nucleus-truncated, renormalised "
    "distribution (and reports its log-probs), while the update's importance ratio pi/pi_old divides by the "
    "full distribution's probability, so the ratio is biased and the update is off-policy "
    "(rollout/logprob_diff shows the gap); the paper samples at top_p=1.0"
)
_warned_truncated_sampling = False


def warn_truncated_sampling(top_p: float) -> bool:
    """Warn, once a process, that ``top_p < 1`` biases the importance ratio of vLLM rollouts.

    Returns whether this call warned.
    """
    global _warned_truncated_sampling
    if top_p >= 1 or _warned_truncated_sampling:
        return False
    _warned_truncated_sampling = True
    log.warning(TRUNCATED_SAMPLING_BIAS.format(top_p=top_p))
    return True


def make_rollout_generator(recipe: Recipe, model, tokenizer, model_path: str | Path, device: torch.device,
                           autocast_dtype: torch.dtype | None) -> Any:
    """The generator ``recipe.rollout_backend`` names, for the policy ``model`` loaded from ``model_path``."""
    if recipe.rollout_backend == "vllm":
        warn_truncated_sampling(recipe.top_p)
        from justrl.generate.colocate import ColocatedVLLM

        return ColocatedVLLM(
            str(model_path), device_type=device.type, dtype="bfloat16" if device.type == "cuda" else "float32",
            max_model_len=recipe.max_prompt_tokens + max(recipe.max_response_tokens, recipe.val_max_tokens),
            gpu_memory_utilization=recipe.vllm_gpu_memory_utilization, seed=recipe.seed)
    return make_hf_generator(model, tokenizer, recipe.rollout_backend,
                             batch_size=recipe.rollout_batch_rows(), autocast_dtype=autocast_dtype)


def validation_batch_size(recipe: Recipe, batch_size: int) -> int:
    """Rows per validation batch: the rollout batch's KV-cache budget (rows x tokens) spent at the
    validation length, never more rows than a rollout batch (the paper's 31,744 validation tokens
    against 15,360 rollout tokens: about half the rows, the same cache memory)."""
    rollout_tokens = recipe.max_prompt_tokens + recipe.max_response_tokens
    validation_tokens = recipe.max_prompt_tokens + recipe.val_max_tokens
    return max(1, min(batch_size, batch_size * rollout_tokens // validation_tokens))


@contextlib.contextmanager
def sized_for_validation(generator: Any, recipe: Recipe) -> Iterator[None]:
    """While open, a transformers generator runs batches of :func:`validation_batch_size` rows."""
    batch_size = getattr(generator, "batch_size", None)
    if not isinstance(batch_size, int):  # vLLM schedules its own batches
        yield
        return
    generator.batch_size = validation_batch_size(recipe, batch_size)
    try:
        yield
    finally:
        generator.batch_size = batch_size


def before_update(generator: Any) -> None:
    """Free the rollout engine's device memory for the update (colocated vLLM: sleep; hf-static:
    drop its static caches)."""
    for name in ("sleep", "release_memory"):
        free = getattr(generator, name, None)
        if callable(free):
            free()


def after_update(generator: Any, model) -> None:
    """Give the rollout engine the updated policy's weights: colocated vLLM reloads them and wakes;
    a transformers generator sampling with a bfloat16 copy overwrites the copy in place."""
    load = getattr(generator, "load_weights", None)
    if callable(load):
        load(model)
    refresh = getattr(generator, "refresh_weights", None)
    if callable(refresh):
        refresh()


def start_peak_memory(device: torch.device) -> None:
    """Begin a step's peak-memory window (CUDA only)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_metrics(device: torch.device) -> dict[str, float]:
    """``perf/max_memory_allocated_gb`` and ``perf/max_memory_reserved_gb`` (verl's names; GiB, as
    verl computes them) on CUDA; nothing on the CPU. Reserved is what the allocator holds from the
    driver (allocated plus its cached blocks): the figure that decides whether vLLM can wake."""
    if device.type != "cuda":
        return {}
    return {"perf/max_memory_allocated_gb": torch.cuda.max_memory_allocated(device) / 2**30,
            "perf/max_memory_reserved_gb": torch.cuda.max_memory_reserved(device) / 2**30}
