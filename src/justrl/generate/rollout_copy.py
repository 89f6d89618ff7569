"""A low-precision copy of the policy that the rollouts run on, refreshed in place after each update.

The trainer keeps float32 master weights and runs its own forward passes under bfloat16 autocast.
Sampling under autocast instead would re-cast every weight on every decode step, keep the dynamic
cache's keys in float32 (rotary embeddings promote them) beside bfloat16 values, and make a
static cache fail on the mismatch. The rollouts therefore run on a bfloat16 copy of the policy:
built once (:func:`make_rollout_copy`) and overwritten with ``copy_`` after each optimizer step
(:func:`refresh_rollout_copy`), so every tensor keeps its address (compiled CUDA graphs captured on
the copy stay valid) and nothing is allocated per step.
"""

from __future__ import annotations

import copy

import torch


def make_rollout_copy(model: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """A ``dtype`` copy of ``model`` (same device, eval mode, no gradients), for sampling only."""
    clone = copy.deepcopy(model).to(dtype=dtype)
    clone.eval()
    clone.requires_grad_(False)
    config = getattr(clone, "config", None)
    if config is not None:
        config.torch_dtype = dtype  # what transformers' caches read to size themselves
    return clone


@torch.no_grad()
def refresh_rollout_copy(rollout_copy: torch.nn.Module, source: torch.nn.Module) -> None:
    """Overwrite the copy's parameters and buffers with ``source``'s, in place (cast on the fly)."""
    targets = dict(rollout_copy.named_parameters())
    targets.update(dict(rollout_copy.named_buffers()))
    sources = dict(source.named_parameters())
    sources.update(dict(source.named_buffers()))
    if targets.keys() != sources.keys():
        missing = sorted(set(sources) ^ set(targets))[:3]
        raise ValueError(f"the rollout copy and the policy differ in tensors: {missing}")
    for name, target in targets.items():
        target.copy_(sources[name])
