"""Sampling responses from a policy: one :class:`Generator` protocol and the transformers backend.

A backend turns chat-formatted prompt strings into :class:`Completion` objects (text, token ids,
per-token log-probs, why it stopped). Training and evaluation both go through the protocol, so a
faster backend (vLLM, in its own module) can replace :class:`HFGenerator` without touching either.

Conventions every backend keeps:

- Prompts are tokenised as given (``add_special_tokens=False``): the chat template has already put
  in whatever special tokens the model expects, as verl does.
- A response ends at the first stop token (the tokenizer's and the generation config's EOS ids),
  which is part of ``token_ids``, or after ``max_new_tokens`` tokens (``finish_reason="length"``).
- ``logprobs[i]`` is the log-probability of ``token_ids[i]`` under the temperature-scaled
  distribution ``softmax(logits / temperature)`` before any top-p truncation: the quantity the
  trainer recomputes for the same tokens (verl's convention), so the two can be compared.
- Sample ``i`` is drawn with its own seed (``seeds[i]``, default ``params.seed + i``), so the
  response to a (prompt, seed) pair does not depend on which other prompts share its batch.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from justrl.generate.rollout_copy import make_rollout_copy, refresh_rollout_copy


@dataclass(frozen=True)
class SamplingParams:
    """How to sample. ``temperature == 0`` means greedy decoding."""

    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    seed: int = 0
    """Seed of sample ``i`` when no explicit seeds are given: ``seed + i``."""


@dataclass
class Completion:
    """One sampled response."""

    text: str
    """The response decoded without special tokens (the stop token is not in it)."""
    token_ids: list[int]
    """The response's tokens, the stop token included when there was one."""
    logprobs: list[float]
    """Sampler log-prob of each token in ``token_ids`` (see the module docstring)."""
    finish_reason: str
    """``"stop"`` (a stop token was sampled) or ``"length"`` (``max_new_tokens`` reached)."""


class Generator(Protocol):
    """Anything that samples responses for a list of prompt strings."""

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, seeds: Sequence[int] | None = None
    ) -> list[Completion]: ...


class HFGenerator:
    """Batched sampling with a transformers causal LM and its KV cache, on CPU or GPU.

    Prompts are left-padded; position ids count only real tokens, so a padded prompt sees the same
    positions as it would alone. A prompt given to several rows is read once (its KV cache copied
    to each). Rows that have stopped are dropped from the batch (and its cache).
    Each row draws its uniforms from its own ``torch.Generator`` and picks its token by inverse-CDF
    sampling, which keeps everything vectorised while making a row's randomness its own.

    Args:
        model: a ``PreTrainedModel`` with a causal-LM head.
        tokenizer: its tokenizer (the pad id is only used as filler; real tokens are tracked by mask).
        batch_size: prompts per forward pass (memory bound; results do not depend on it).
        autocast_dtype: sample in this dtype (e.g. bfloat16 on a GPU with float32 weights): when the
            weights are in another dtype, the generator samples with a copy of ``model`` in this
            dtype (:mod:`justrl.generate.rollout_copy`), which :meth:`refresh_weights` brings up to
            date after the policy is updated; None samples with ``model`` itself.
    """

    def __init__(self, model, tokenizer, *, batch_size: int = 64,
                 autocast_dtype: torch.dtype | None = None) -> None:
        self.policy = model
        """The module the caller trains (or evaluates); :attr:`model` is what samples."""
        self.model = model
        if autocast_dtype is not None and next(model.parameters()).dtype != autocast_dtype:
            self.model = make_rollout_copy(model, autocast_dtype)
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.stop_token_ids = stop_token_ids(model, tokenizer)
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(
            self.stop_token_ids)
        # transformers renamed the KV-cache argument from ``past_key_values`` to ``cache`` (5.2x);
        # pass whichever this model's forward takes, so neither version warns on every token.
        forward_args = inspect.signature(model.forward).parameters
        self._cache_arg = "cache" if "cache" in forward_args else "past_key_values"

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def refresh_weights(self) -> None:
        """Bring the sampling copy up to date with :attr:`policy` (in place); nothing without a copy."""
        if self.model is not self.policy:
            refresh_rollout_copy(self.model, self.policy)

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, seeds: Sequence[int] | None = None
    ) -> list[Completion]:
        prompt_ids = self.tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
        return self.generate_from_ids(prompt_ids, params, seeds)

    def generate_from_ids(
        self, prompt_ids: Sequence[Sequence[int]], params: SamplingParams,
        seeds: Sequence[int] | None = None,
    ) -> list[Completion]:
        """:meth:`generate` for prompts that are already token ids."""
        if seeds is None:
            seeds = [params.seed + i for i in range(len(prompt_ids))]
        if len(seeds) != len(prompt_ids):
            raise ValueError(f"{len(seeds)} seeds for {len(prompt_ids)} prompts")
        out: list[Completion] = []
        was_training = self.model.training
        self.model.eval()
        try:
            for start in range(0, len(prompt_ids), self.batch_size):
                end = start + self.batch_size
                out += self._generate_batch(prompt_ids[start:end], params, seeds[start:end])
        finally:
            self.model.train(was_training)
        return out

    @torch.no_grad()
    def _generate_batch(self, prompt_ids: Sequence[Sequence[int]], params: SamplingParams,
                        seeds: Sequence[int]) -> list[Completion]:
        device, n = self.device, len(prompt_ids)
        # a prompt that several rows share (a GRPO group, avg@k) is read once, its cache then copied
        distinct: dict[tuple[int, ...], int] = {}
        copy_of = torch.tensor([distinct.setdefault(tuple(p), len(distinct)) for p in prompt_ids], device=device)
        input_ids, attention = left_pad(list(distinct), self.pad_token_id, device)
        positions = position_ids(attention)
        uniforms = row_uniforms(seeds, params.max_new_tokens, device)
        stop = torch.tensor(sorted(self.stop_token_ids), device=device)
        steps = max(params.max_new_tokens, 1)
        token_table = torch.zeros((n, steps), dtype=torch.long, device=device)
        logprob_table = torch.zeros((n, steps), dtype=torch.float32, device=device)
        lengths = torch.zeros(n, dtype=torch.long, device=device)
        stopped_rows = torch.zeros(n, dtype=torch.bool, device=device)
        active = torch.arange(n, device=device)  # batch row -> original index

        logits, cache = self._forward(input_ids, attention, positions, cache=None)
        if len(distinct) < n:
            cache.batch_select_indices(copy_of)
            logits, attention, positions = logits[copy_of], attention[copy_of], positions[copy_of]
        for step in range(params.max_new_tokens):
            token, token_logprob = sample(logits, uniforms[:, step], params.temperature, params.top_p)
            token_table[active, step] = token
            logprob_table[active, step] = token_logprob.float()
            lengths[active] = step + 1
            stopped = torch.isin(token, stop)
            stopped_rows[active[stopped]] = True
            if step == params.max_new_tokens - 1 or bool(stopped.all()):
                break
            if bool(stopped.any()):
                keep = (~stopped).nonzero().squeeze(-1)
                cache.batch_select_indices(keep)
                active, token, attention, positions, uniforms = (
                    active[keep], token[keep], attention[keep], positions[keep], uniforms[keep])
            attention = torch.cat([attention, attention.new_ones(len(active), 1)], dim=1)
            positions = positions[:, -1:] + 1
            logits, cache = self._forward(token.unsqueeze(-1), attention, positions, cache)

        counts = lengths.tolist()
        tokens = [row[:k] for row, k in zip(token_table.tolist(), counts)]
        logprobs = [row[:k] for row, k in zip(logprob_table.tolist(), counts)]
        finish = ["stop" if s else "length" for s in stopped_rows.tolist()]
        return completions(self.tokenizer, tokens, logprobs, finish)

    def _forward(self, input_ids, attention, positions, cache):
        out = self.model(input_ids=input_ids, attention_mask=attention, position_ids=positions,
                         use_cache=True, logits_to_keep=1, **{self._cache_arg: cache})
        new_cache = out.cache if self._cache_arg == "cache" else out.past_key_values
        return out.logits[:, -1].float(), new_cache


def row_uniforms(seeds: Sequence[int], steps: int, device: torch.device | str) -> torch.Tensor:
    """``(len(seeds), steps)`` float64 uniforms, row ``i`` drawn from its own generator seeded ``seeds[i]``.

    Drawn up front on the CPU (one transfer, no host sync while decoding), so a row's randomness
    is its own and every backend built on :func:`sample` draws the same tokens for the same seeds.
    """
    return torch.stack([
        torch.rand(max(steps, 1), generator=torch.Generator().manual_seed(int(s)), dtype=torch.float64)
        for s in seeds
    ]).to(device)


def completions(tokenizer, tokens: Sequence[list[int]], logprobs: Sequence[list[float]],
                finish: Sequence[str]) -> list[Completion]:
    """Completions from per-row tokens, log-probs and finish reasons (stop token left out of the text)."""
    texts = tokenizer.batch_decode([ids[:-1] if reason == "stop" else ids for ids, reason in zip(tokens, finish)],
                                   skip_special_tokens=True)
    return [Completion(text=text, token_ids=list(ids), logprobs=list(lps), finish_reason=reason)
            for text, ids, lps, reason in zip(texts, tokens, logprobs, finish)]


def stop_token_ids(model, tokenizer) -> set[int]:
    """EOS ids of the tokenizer and of the model's generation config (which may list several)."""
    ids: set[int] = set()
    for source in (tokenizer.eos_token_id, getattr(getattr(model, "generation_config", None),
                                                   "eos_token_id", None)):
        if isinstance(source, int):
            ids.add(source)
        elif source is not None:
            ids.update(int(i) for i in source)
    if not ids:
        raise ValueError("the tokenizer and the model's generation config name no EOS token")
    return ids


def left_pad(sequences: Sequence[Sequence[int]], pad_id: int, device: torch.device | str = "cpu"
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask)``, both ``(B, max_len)``, real tokens flush right."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    width = int(lengths.max())
    attention = (torch.arange(width) >= width - lengths.unsqueeze(1)).long()
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    # the real positions, row by row, left to right: the order of the concatenated sequences
    input_ids[attention.bool()] = flat_tensor(sequences, torch.long)
    return input_ids.to(device), attention.to(device)


def right_pad(rows: Sequence[Sequence[int | float]], width: int, fill: int | float, dtype: torch.dtype
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(values, mask)``, both ``(B, width)``: each row's values flush left, ``fill`` after them;
    ``mask`` (long) is 1 on the values. Rows longer than ``width`` are refused."""
    lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
    if len(rows) and int(lengths.max()) > width:
        raise ValueError(f"a row of {int(lengths.max())} values is wider than {width}")
    mask = (torch.arange(width) < lengths.unsqueeze(1)).long()
    values = torch.full((len(rows), width), fill, dtype=dtype)
    values[mask.bool()] = flat_tensor(rows, dtype)
    return values, mask


def flat_tensor(rows: Iterable[Iterable[int | float]], dtype: torch.dtype) -> torch.Tensor:
    """The values of ``rows`` one after another, as a 1-D tensor (built through NumPy, which reads a
    Python list several times faster than ``torch.tensor`` does)."""
    values = list(itertools.chain.from_iterable(rows))
    return torch.from_numpy(np.array(values, dtype=torch.empty(0, dtype=dtype).numpy().dtype))


def position_ids(attention: torch.Tensor) -> torch.Tensor:
    """Positions that count only attended tokens: 0 at each row's first real token (pads get 0)."""
    return (attention.cumsum(-1) - 1).clamp(min=0)


def sample(logits: torch.Tensor, uniforms: torch.Tensor, temperature: float, top_p: float
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """One token per row by inverse-CDF sampling; returns ``(tokens (B,), logprobs (B,))``.

    Args:
        logits: ``(B, V)`` next-token logits (float32).
        uniforms: ``(B,)`` one uniform in [0, 1) per row (float64).
        temperature: divides the logits; 0 picks the argmax (greedy).
        top_p: nucleus; the smallest set of most likely tokens whose probability reaches ``top_p``.

    The log-prob is that of ``softmax(logits / temperature)`` (untempered for greedy), before top-p.
    """
    if temperature == 0:
        logp = torch.log_softmax(logits, dim=-1)
        token = logp.argmax(-1)
        return token, logp.gather(-1, token.unsqueeze(-1)).squeeze(-1)
    logp = torch.log_softmax(logits / temperature, dim=-1)
    probs = logp.double().exp()
    if top_p < 1.0:
        probs, order = probs.sort(dim=-1, descending=True)
        mass_before = probs.cumsum(-1) - probs
        probs = probs.masked_fill(mass_before >= top_p, 0.0)  # the top token always stays
    cdf = probs.cumsum(-1)
    pick = torch.searchsorted(cdf, (uniforms * cdf[:, -1]).unsqueeze(-1), right=True)
    pick = pick.clamp(max=probs.shape[-1] - 1)
    token = order.gather(-1, pick).squeeze(-1) if top_p < 1.0 else pick.squeeze(-1)
    return token, logp.gather(-1, token.unsqueeze(-1)).squeeze(-1)
