"""Log-probs of sampled responses under the policy: layouts, chunked logits, masks.

The trainer recomputes every log-prob it trains on (verl's convention): :func:`policy_log_probs`
for the old policy before any update, :func:`forward_log_probs` for each micro-batch of the update.
Both read a :class:`Packed` batch in one of two layouts, which give the same log-probs:

- padded: one row a rollout, ``[left-padded prompt | right-padded response]``;
- shared prompts (:func:`pack_shared`): one row a prompt, ``[prompt | response 1 | response 2 |
  ...]``, each response attending to the prompt and to itself only (a 4-D mask) and placed at the
  positions it has after the prompt, so a group's 8 rollouts read their prompt once. verl gets the
  same saving from removing padding; here it is what makes a short-response step cheap.

Position ids count only real tokens, so every token sees the positions it would see alone, and the
logits are divided by the sampling temperature, so that they match the sampler's log-probs.

A large vocabulary's logits are never materialised whole: above :data:`LOGITS_CHUNK_ELEMENTS`
they are made and reduced a few response positions at a time (:func:`chunked_log_probs`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from justrl import grpo
from justrl.generate.hf import flat_tensor, left_pad, position_ids, right_pad
from justrl.recipe import Recipe
from justrl.train import micro_batches
from justrl.train.rollouts import Rollouts


@dataclass
class Packed:
    """Sequences as the model reads them, in the padded or the shared-prompt layout."""

    input_ids: torch.Tensor
    """``(R, L)`` token ids: a row a rollout (padded) or a row a prompt (shared)."""
    attention_mask: torch.Tensor
    """``(R, L)`` 1 on real tokens (padded), or ``(R, 1, L, L)`` bool, which key each query sees (shared)."""
    position_ids: torch.Tensor
    responses: torch.Tensor
    """``(B, T)`` response token ids, a row a rollout (padding: any id, masked)."""
    response_mask: torch.Tensor
    """``(B, T)`` 1 on response tokens (the stop token included)."""
    predictors: torch.Tensor
    """``(B, T)`` index into the flattened ``(R * L)`` positions of the one whose output predicts
    ``responses[b, t]``: the prompt's last token for ``t = 0``, the response's previous token after."""


def pack(rollouts: Rollouts, rows: Sequence[int], pad_id: int, device: torch.device,
         share_prompts: bool = False) -> Packed:
    """The rollouts ``rows`` as one batch on ``device`` (responses as wide as the longest of them):
    the shared-prompt layout when ``share_prompts`` and it is smaller (:func:`pack_shared`), else padded."""
    if share_prompts:
        shared = pack_shared(rollouts, rows, pad_id, device)
        if shared is not None:
            return shared
    prompt, prompt_mask = left_pad([rollouts.prompt_ids[i] for i in rows], pad_id)
    width = max(1, max(len(rollouts.response_ids[i]) for i in rows))
    responses, mask = right_pad([rollouts.response_ids[i] for i in rows], width, pad_id, torch.long)
    attention = torch.cat([prompt_mask, mask], dim=1)
    length = attention.shape[1]
    predictors = (torch.arange(len(rows)).unsqueeze(1) * length
                  + torch.arange(prompt.shape[1] - 1, length - 1).unsqueeze(0))
    return Packed(
        input_ids=torch.cat([prompt, responses], dim=1).to(device),
        attention_mask=attention.to(device),
        position_ids=position_ids(attention).to(device),
        responses=responses.to(device),
        response_mask=mask.to(device),
        predictors=predictors.to(device),
    )


def pack_shared(rollouts: Rollouts, rows: Sequence[int], pad_id: int, device: torch.device) -> Packed | None:
    """``rows`` with one row per distinct prompt, ``[prompt | its rollouts' responses, unpadded]``,
    or None when that is not smaller than the padded layout (fewer tokens, and an attention area
    no more than twice the padded one's: long responses stay padded).

    A prompt token sees the prompt's tokens up to itself; a response token sees the whole prompt
    and its own response up to itself, at position ``len(prompt) + t``: exactly the context it has
    in the padded layout. Filler at a row's end sees only itself (no query is left without a key).
    """
    responses = [rollouts.response_ids[i] for i in rows]
    members: dict[tuple[int, ...], list[int]] = {}
    for b, i in enumerate(rows):
        members.setdefault(tuple(rollouts.prompt_ids[i]), []).append(b)
    lengths = [len(prompt) + sum(len(responses[b]) for b in bs) for prompt, bs in members.items()]
    length, count = max(lengths), len(lengths)
    width = max(1, max(len(r) for r in responses))
    padded_length = max(len(rollouts.prompt_ids[i]) for i in rows) + width
    if count * length >= len(rows) * padded_length or count * length**2 > 2 * len(rows) * padded_length**2:
        return None
    # each layout row's tokens, segments (0: the prompt, m: its m-th response) and positions, flat
    tokens: list[int] = []
    segments: list[int] = []
    positions: list[int] = []
    predictors: list[list[int]] = [[] for _ in rows]
    for r, (prompt, bs) in enumerate(members.items()):
        p = len(prompt)
        tokens += prompt
        segments += [0] * p
        positions += range(p)
        offset = r * length + p
        for m, b in enumerate(bs, start=1):
            n = len(responses[b])
            predictors[b] = [r * length + p - 1, *range(offset, offset + n - 1)][:n]
            tokens += responses[b]
            segments += [m] * n
            positions += range(p, p + n)
            offset += n
    real = torch.arange(length) < torch.tensor(lengths).unsqueeze(1)
    layout = torch.tensor([pad_id, -1, 0]).repeat(count, length, 1)  # filler: pad id, no segment, position 0
    layout[real] = flat_tensor([tokens, segments, positions], torch.long).view(3, -1).T
    input_ids, segment_ids, positions = layout.unbind(-1)
    query, key = segment_ids.unsqueeze(2), segment_ids.unsqueeze(1)
    sees = torch.ones(length, length, dtype=torch.bool).tril() & (key >= 0) & ((key == 0) | (key == query))
    sees |= torch.eye(length, dtype=torch.bool) & ~real.unsqueeze(2)
    response_ids, mask = right_pad(responses, width, pad_id, torch.long)
    return Packed(
        input_ids=input_ids.to(device),
        attention_mask=sees.unsqueeze(1).to(device),
        position_ids=positions.to(device),
        responses=response_ids.to(device),
        response_mask=mask.to(device),
        predictors=right_pad(predictors, width, 0, torch.long)[0].to(device),
    )


def shares_prompts(recipe: Recipe, model) -> bool:
    """Whether the trainer packs with :func:`pack_shared`: the recipe's ``share_prompts``, and a model
    whose logits are ``lm_head(decoder(x))`` and whose attention takes a 4-D mask (``sdpa``)."""
    return (recipe.share_prompts and plain_lm_head(model)
            and getattr(model.config, "_attn_implementation", None) == "sdpa")


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
    inputs = {"input_ids": packed.input_ids, "attention_mask": packed.attention_mask,
              "position_ids": packed.position_ids, "use_cache": False}
    if plain_lm_head(model):
        with autocast:
            hidden = model.get_decoder()(**inputs).last_hidden_state
        hidden = hidden.flatten(0, 1)[packed.predictors]  # (B, T, H): the positions that predict
        if batch * width * vocab > LOGITS_CHUNK_ELEMENTS:
            return chunked_log_probs(model.get_output_embeddings(), hidden, packed.responses, temperature,
                                     autocast, with_entropy, chunk=max(1, LOGITS_CHUNK_ELEMENTS // (batch * vocab)))
        with autocast:
            logits = model.get_output_embeddings()(hidden)
    else:  # padded layout only (shares_prompts): the last width + 1 positions' logits
        with autocast:
            logits = model(**inputs, logits_to_keep=width + 1).logits[:, :-1]
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
                     autocast_dtype: torch.dtype | None, skip: Sequence[int] = ()
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Old log-probs and entropy ``(B, T_max)`` of the rollouts under the current policy, no grad;
    the rows in ``skip`` are left at 0 (the trainer's first update fills them in)."""
    width = max(1, max(len(r) for r in rollouts.response_ids))
    log_probs = torch.zeros(len(rollouts), width)
    entropy = torch.zeros(len(rollouts), width)
    pad_id = rollouts.pad_id
    one_row_a_prompt = shares_prompts(recipe, model)
    model.eval()  # as verl's inference pass: no dropout noise in the old log-probs
    with torch.no_grad():
        left = sorted(set(range(len(rollouts))) - set(skip))
        for rows in micro_batches.for_rollouts(rollouts, left, recipe) if left else []:
            packed = pack(rollouts, rows, pad_id, device, one_row_a_prompt)
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
