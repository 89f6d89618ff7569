"""Log-probs of sampled responses under the policy: packing, chunked logits, masks.

The trainer recomputes every log-prob it trains on (verl's convention): :func:`policy_log_probs`
for the old policy before any update, :func:`forward_log_probs` for each micro-batch of the update.
Both read a :class:`Packed` batch, ``[left-padded prompt | right-padded response]`` with position
ids that count only real tokens, so a padded sequence sees the positions it would see alone, and
both divide the logits by the sampling temperature, so that they match the sampler's log-probs.

A large vocabulary's logits are never materialised whole: above :data:`LOGITS_CHUNK_ELEMENTS`
they are made and reduced a few response positions at a time (:func:`chunked_log_probs`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from justrl import grpo
from justrl.generate.hf import left_pad, position_ids, right_pad
from justrl.recipe import Recipe
from justrl.train import micro_batches
from justrl.train.rollouts import Rollouts


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
    """The rollouts ``rows`` as one batch on ``device`` (responses as wide as the longest of them)."""
    prompt, prompt_mask = left_pad([rollouts.prompt_ids[i] for i in rows], pad_id)
    width = max(1, max(len(rollouts.response_ids[i]) for i in rows))
    responses, mask = right_pad([rollouts.response_ids[i] for i in rows], width, pad_id, torch.long)
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
    """Ragged rows (the sampler's log-probs) as a zero-padded ``shape`` tensor."""
    return right_pad(rows, shape[1], 0.0, torch.float32)[0]


def response_mask(rollouts: Rollouts, shape: torch.Size) -> torch.Tensor:
    """``shape`` float mask, 1 on each rollout's response tokens."""
    lengths = torch.tensor([len(r) for r in rollouts.response_ids])
    return (torch.arange(shape[1]).unsqueeze(0) < lengths.unsqueeze(1)).float()
