"""The GRPO math of the JustRL recipe: group advantages, the clipped policy loss, entropy.

Pure functions over tensors, written to give the same numbers as verl's
``verl.trainer.ppo.core_algos`` (``compute_grpo_outcome_advantage``,
``compute_policy_loss_vanilla``, ``agg_loss``) which the paper trained with; the parity is
checked in ``tests/test_grpo.py`` against the pinned verl release.

Shapes: ``B`` sequences (prompts x rollouts), ``T`` response tokens (right-padded).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

LOSS_AGG_MODES = ("token-mean", "seq-mean-token-sum", "seq-mean-token-mean")


def group_advantages(
    scores: torch.Tensor,
    group_ids: torch.Tensor | list,
    eps: float = 1e-6,
    normalize_by_std: bool = True,
) -> torch.Tensor:
    """Outcome advantages normalised within each group of rollouts of one prompt.

    Args:
        scores: ``(B,)`` one scalar reward per response.
        group_ids: ``(B,)`` the prompt each response belongs to (any hashable ids).
        eps: added to the group's std before dividing.
        normalize_by_std: ``(score - mean) / (std + eps)`` when True (GRPO), ``score - mean`` when
            False (Dr. GRPO).

    Returns:
        ``(B,)`` advantages. Conventions as verl's: the std is the unbiased one (``torch.std``),
        and a group of a single response keeps its score (mean 0, std 1).
    """
    scores = scores.detach().to(torch.float32)
    if isinstance(group_ids, torch.Tensor):
        group_ids = group_ids.tolist()
    _, inverse = _unique_inverse(list(group_ids))
    index = torch.tensor(inverse, dtype=torch.long, device=scores.device)
    n_groups = int(index.max()) + 1 if len(index) else 0
    counts = torch.zeros(n_groups, device=scores.device).index_add_(0, index, torch.ones_like(scores))
    sums = torch.zeros(n_groups, device=scores.device).index_add_(0, index, scores)
    mean = sums / counts
    sq_dev = torch.zeros(n_groups, device=scores.device).index_add_(0, index, (scores - mean[index]) ** 2)
    std = torch.sqrt(sq_dev / (counts - 1).clamp(min=1))
    single = counts == 1
    mean = torch.where(single, torch.zeros_like(mean), mean)
    std = torch.where(single, torch.ones_like(std), std)
    centred = scores - mean[index]
    return centred / (std[index] + eps) if normalize_by_std else centred


def _unique_inverse(ids: list) -> tuple[list, list[int]]:
    seen: dict = {}
    inverse = [seen.setdefault(i, len(seen)) for i in ids]
    return list(seen), inverse


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` is 1 (over all elements, or along ``dim``)."""
    mask = mask.to(values.dtype)
    if dim is None:
        return (values * mask).sum() / mask.sum().clamp(min=1e-8)
    return (values * mask).sum(dim) / mask.sum(dim).clamp(min=1e-8)


def aggregate(
    loss_mat: torch.Tensor,
    mask: torch.Tensor,
    mode: str = "token-mean",
    batch_num_tokens: float | torch.Tensor | None = None,
    batch_num_seqs: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """Reduce a ``(B, T)`` per-token loss to a scalar, as verl's ``agg_loss``.

    ``batch_num_tokens`` / ``batch_num_seqs`` are the mini-batch's totals when ``loss_mat`` is one
    micro-batch of it: dividing every micro-batch by the mini-batch's count makes the accumulated
    gradient exactly that of the whole mini-batch (verl's global-batch normalisation). When omitted,
    the counts of ``loss_mat`` itself are used.
    """
    mask = mask.to(loss_mat.dtype)
    if mode == "token-mean":
        denom = mask.sum() if batch_num_tokens is None else batch_num_tokens
        return (loss_mat * mask).sum() / denom
    if mode == "seq-mean-token-sum":
        seq_losses = (loss_mat * mask).sum(-1)
    elif mode == "seq-mean-token-mean":
        seq_losses = (loss_mat * mask).sum(-1) / (mask.sum(-1) + 1e-8)
    else:
        raise ValueError(f"unknown loss aggregation {mode!r}; known: {', '.join(LOSS_AGG_MODES)}")
    has_tokens = (mask.sum(-1) > 0).to(loss_mat.dtype)
    denom = has_tokens.sum() if batch_num_seqs is None else batch_num_seqs
    return (seq_losses * has_tokens).sum() / denom


@dataclass
class PolicyLossStats:
    """Diagnostics of one policy-loss evaluation (verl's metric names in ``as_metrics``)."""

    pg_clipfrac: float
    """Fraction of tokens where the clipped surrogate was the active (larger) loss."""
    pg_clipfrac_lower: float
    """Fraction of tokens with negative advantage where the dual-clip bound was active."""
    ppo_kl: float
    """Masked mean of old_log_prob - log_prob (k1 estimate of KL(old || new))."""

    def as_metrics(self) -> dict[str, float]:
        return {
            "actor/pg_clipfrac": self.pg_clipfrac,
            "actor/pg_clipfrac_lower": self.pg_clipfrac_lower,
            "actor/ppo_kl": self.ppo_kl,
        }


def policy_loss(
    log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    clip_low: float = 0.2,
    clip_high: float = 0.28,
    clip_c: float = 10.0,
    agg: str = "token-mean",
    batch_num_tokens: float | torch.Tensor | None = None,
    batch_num_seqs: float | torch.Tensor | None = None,
) -> tuple[torch.Tensor, PolicyLossStats]:
    """PPO clipped surrogate with asymmetric bounds ("clip higher") and dual-clip.

    Args:
        log_probs: ``(B, T)`` token log-probs under the policy being updated (carries grad).
        old_log_probs: ``(B, T)`` token log-probs under the policy that sampled the rollouts.
        advantages: ``(B, T)`` per-token advantages (GRPO: the sequence's advantage on every token),
            or ``(B,)``, broadcast over tokens.
        response_mask: ``(B, T)`` 1 for response tokens, 0 for padding.
        clip_low, clip_high: the ratio is clipped to ``[1 - clip_low, 1 + clip_high]``.
        clip_c: dual-clip bound; for negative advantages the loss is capped at ``-A * clip_c``.
        agg: loss aggregation, see :func:`aggregate`.
        batch_num_tokens, batch_num_seqs: mini-batch totals for micro-batched accumulation.

    Returns:
        The scalar loss and its :class:`PolicyLossStats`.
    """
    if clip_c <= 1.0:
        raise ValueError(f"clip_c must be > 1 for dual-clip PPO, got {clip_c}")
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(-1).expand_as(log_probs)
    mask = response_mask.to(log_probs.dtype)
    # The log-ratio is clamped to [-20, 20] before exp, as verl does, so that one wild token cannot
    # produce inf/nan.
    log_ratio = torch.clamp(log_probs - old_log_probs, min=-20.0, max=20.0)
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)
    pessimistic = torch.maximum(unclipped, clipped)
    dual_bound = -advantages * clip_c
    dual_clipped = torch.minimum(dual_bound, pessimistic)
    per_token = torch.where(advantages < 0, dual_clipped, pessimistic)
    loss = aggregate(per_token, mask, agg, batch_num_tokens, batch_num_seqs)
    with torch.no_grad():
        stats = PolicyLossStats(
            pg_clipfrac=masked_mean((clipped > unclipped).to(mask.dtype), mask).item(),
            pg_clipfrac_lower=masked_mean(
                ((pessimistic > dual_bound) & (advantages < 0)).to(mask.dtype), mask
            ).item(),
            ppo_kl=masked_mean(-log_ratio, mask).item(),
        )
    return loss, stats


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the softmax distribution at every position: ``(..., V) -> (...)``.

    ``logsumexp(logits) - sum(softmax(logits) * logits)``, the same identity verl uses; computed in
    float32 for stability.
    """
    logits = logits.float()
    probs = torch.softmax(logits, dim=-1)
    return torch.logsumexp(logits, dim=-1) - (probs * logits).sum(-1)


def token_log_probs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Log-probability of ``tokens`` ``(..., )`` under ``logits`` ``(..., V)``, in float32."""
    logits = logits.float()
    return torch.gather(logits, -1, tokens.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)
