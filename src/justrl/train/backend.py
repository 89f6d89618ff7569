"""The trainer's rollout backend (the recipe's ``rollout_backend``) and its per-step duties.

``hf`` / ``hf-static`` / ``auto`` sample with the policy module itself (:mod:`justrl.generate.hf`,
:mod:`justrl.generate.static`), so they always see the current weights. ``vllm`` samples with a
separate, colocated engine (:mod:`justrl.generate.colocate`) that must sleep while the policy is
updated and be given the new weights afterwards: :func:`before_update` and :func:`after_update`
are where the trainer says so, and they do nothing for the other backends.
"""

from __future__ import annotations

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
                             batch_size=max(64, recipe.micro_batch_sequences), autocast_dtype=autocast_dtype)


def before_update(generator: Any) -> None:
    """Free the rollout engine's device memory for the update (colocated vLLM: sleep)."""
    sleep = getattr(generator, "sleep", None)
    if callable(sleep):
        sleep()


def after_update(generator: Any, model) -> None:
    """Give a separate rollout engine the updated policy's weights (colocated vLLM: reload, wake)."""
    load = getattr(generator, "load_weights", None)
    if callable(load):
        load(model)


def start_peak_memory(device: torch.device) -> None:
    """Begin a step's peak-memory window (CUDA only)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_metrics(device: torch.device) -> dict[str, float]:
    """``perf/max_memory_allocated_gb`` (verl's name; GiB, as verl computes it) on CUDA; nothing on the CPU."""
    if device.type != "cuda":
        return {}
    return {"perf/max_memory_allocated_gb": torch.cuda.max_memory_allocated(device) / 2**30}
