"""Where a run computes, in what precision, and how its randomness is made repeatable.

Exact resume rests on two things kept here: every random choice of a step draws from a seed
derived from ``(recipe.seed, what, step)`` (:func:`derive_seed`), and on a CPU the kernels are
deterministic (:func:`deterministic_on_cpu`), so a resumed run repeats the original bit for bit.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import Iterator

import numpy as np
import torch

from justrl.errors import TrainingError


def pick_device(name: str) -> torch.device:
    """The recipe's ``device`` (``auto``: a CUDA GPU when one is visible, else the CPU)."""
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


@contextlib.contextmanager
def deterministic_on_cpu(device: torch.device) -> Iterator[None]:
    """Bitwise-repeatable kernels while open on a CPU (so a resumed run repeats the original);
    the caller's settings are restored afterwards.

    Deterministic mode also fills every new tensor's memory with NaN by default (so that reading
    uninitialised memory shows); that costs a write of each allocation (about 10% of a tiny
    model's forward and backward on a CPU) and changes no result computed from written memory,
    so it is switched off while open.
    """
    before = (torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled())
    fill_before = torch.utils.deterministic.fill_uninitialized_memory
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.utils.deterministic.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.utils.deterministic.fill_uninitialized_memory = fill_before


def derive_seed(*parts: object) -> int:
    """A 62-bit seed from any parts (``derive_seed(42, "rollout", 7)``), stable across processes."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 2


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
