"""A model's context window, and whether prompt + ``max_tokens`` fits in it.

vLLM stops a request at the model's context (``max_model_len``) and reports ``"length"``, exactly
as when ``max_tokens`` runs out; a model whose context is shorter than prompt + 31,744 would thus
be scored at a shorter budget without a word. And one prompt longer than the context makes vLLM
refuse the whole ``generate`` call. :func:`check_budget` refuses both before any generation, unless
the caller accepts a truncated budget, and says what the longest prompt really gets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from justrl.errors import ContextLengthError, ModelLoadError

CONTEXT_KEYS = (
    "max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "max_sequence_length",
)
"""Config fields that bound a model's context; vLLM takes the smallest one present."""


def context_of(config: Any) -> int | None:
    """The context length a Hugging Face model config allows (the smallest bound it states)."""
    config = getattr(config, "text_config", None) or config
    bounds = [getattr(config, key, None) for key in CONTEXT_KEYS]
    found = [int(b) for b in bounds if isinstance(b, int) and b > 0]
    return min(found) if found else None


def model_context(model: str, max_model_len: int | None = None) -> int | None:
    """The context of ``model`` (folder or hub id), or ``max_model_len`` when the engine is given one."""
    if max_model_len is not None:
        return max_model_len
    from transformers import AutoConfig

    try:
        return context_of(AutoConfig.from_pretrained(model))
    except Exception as exc:  # OSError for a missing path/hub id, others for broken folders
        raise ModelLoadError(f"cannot read the config of {model!r}: {exc}") from exc


@dataclass(frozen=True)
class Budget:
    """The token budget a run really gives: what was asked, and what the longest prompt gets."""

    max_tokens: int
    """New tokens asked for per response."""
    effective_max_tokens: int
    """New tokens every response is sure to get: ``max_tokens``, or less when truncation is allowed."""
    context: int | None
    """The model's context window (prompt + response); None when unknown."""
    longest_prompt: int
    """Tokens in the longest prompt."""
    longest_prompt_label: str
    truncated: bool
    """Some prompts leave less than ``max_tokens`` room before the context ends."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_budget(
    prompt_tokens: Mapping[str, int], max_tokens: int, context: int | None, *, allow_truncated: bool = False
) -> Budget:
    """The run's :class:`Budget`, or :class:`ContextLengthError` naming the longest prompt when
    prompt + ``max_tokens`` exceeds ``context`` (allowed with ``allow_truncated``; a prompt that
    leaves no room at all never is)."""
    label, longest = max(prompt_tokens.items(), key=lambda kv: kv[1], default=("", 0))
    if context is None or longest + max_tokens <= context:
        return Budget(max_tokens, max_tokens, context, longest, label, False)
    room = context - longest
    if room < 1:
        raise ContextLengthError(
            f"prompt {label} has {longest} tokens, no fewer than the model's context of {context}: it cannot "
            "be answered at all (and vLLM would refuse the whole batch); use a model with a longer context"
        )
    if not allow_truncated:
        raise ContextLengthError(
            f"max_tokens={max_tokens} does not fit: prompt {label} ({longest} tokens) + {max_tokens} exceeds "
            f"the model's context of {context} tokens; set max_tokens={room} (or lower), or "
            "allow_truncated_budget=true to let long prompts stop at the context"
        )
    return Budget(max_tokens, room, context, longest, label, True)
