"""Which transformers generator to build: the factory above both of them.

``hf`` is :class:`~justrl.generate.hf.HFGenerator` (dynamic KV cache), ``hf-static`` is
:class:`~justrl.generate.static.StaticCacheGenerator` (static cache, compiled decode). This module
imports both so that neither imports the other.
"""

from __future__ import annotations

import torch

from justrl.errors import ModelLoadError
from justrl.generate.hf import HFGenerator
from justrl.generate.static import StaticCacheGenerator

ROLLOUT_BACKENDS = ("auto", "hf", "hf-static")
"""Transformers generators by name: ``hf`` (:class:`HFGenerator`), ``hf-static``
(:class:`~justrl.generate.static.StaticCacheGenerator`), ``auto`` (hf-static on CUDA, hf elsewhere)."""


def make_hf_generator(model, tokenizer, backend: str = "auto", *, batch_size: int = 64,
                      autocast_dtype: torch.dtype | None = None) -> HFGenerator:
    """The transformers generator ``backend`` names (see :data:`ROLLOUT_BACKENDS`) for a loaded model."""
    if backend not in ROLLOUT_BACKENDS:
        raise ValueError(f"backend must be one of {ROLLOUT_BACKENDS} (got {backend!r})")
    on_cuda = next(model.parameters()).device.type == "cuda"
    if backend == "hf-static" or (backend == "auto" and on_cuda):
        return StaticCacheGenerator(model, tokenizer, batch_size=batch_size, autocast_dtype=autocast_dtype)
    return HFGenerator(model, tokenizer, batch_size=batch_size, autocast_dtype=autocast_dtype)


def load_hf_generator(model: str, *, device: str | None = None, dtype: str | None = None,
                      batch_size: int = 32, backend: str = "auto") -> HFGenerator:
    """A transformers generator (:func:`make_hf_generator`) for a hub id or local folder, ready to sample.

    Default device: CUDA when there is one, else CPU; default dtype: bfloat16 on a GPU, float32
    on the CPU (where bfloat16 matmuls are slow). ``backend="auto"`` gives the static-cache,
    compiled path on CUDA and the plain one on the CPU.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = dtype or ("bfloat16" if device.startswith("cuda") else "float32")
    torch_dtype = getattr(torch, dtype, None)
    if not isinstance(torch_dtype, torch.dtype):
        raise ModelLoadError(f"dtype: unknown torch dtype {dtype!r}")
    try:
        lm = AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype)
    except Exception as exc:  # OSError for a missing path/hub id, others for broken folders
        raise ModelLoadError(f"cannot load the model {model!r}: {exc}") from exc
    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
    except Exception as exc:
        raise ModelLoadError(f"cannot load the tokenizer of {model!r}: {exc}") from exc
    return make_hf_generator(lm.to(device), tokenizer, backend, batch_size=batch_size)
