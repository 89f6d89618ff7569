"""Cutting a mini-batch into micro-batches: a fixed sequence count, or a token budget.

Micro-batches only bound memory: each micro-batch's loss is divided by its *mini-batch's* token (or
sequence) count and the gradients accumulate, so any cut gives the same update. With responses of
a few hundred to 15k tokens, a fixed count either wastes the device on short batches or runs out
of memory on long ones; a token budget (verl's ``use_dynamic_bsz`` with
``ppo_max_token_len_per_gpu``) keeps every forward pass about the same size.

The size of a micro-batch is what :func:`justrl.train.loop.pack` allocates: ``rows x (longest prompt +
longest response)`` (prompts are left-padded, responses right-padded to the longest of the batch).
"""

from __future__ import annotations

from collections.abc import Sequence


def fixed_count(rows: Sequence[int], count: int) -> list[list[int]]:
    """``rows`` in order, ``count`` at a time (the last micro-batch may be smaller)."""
    return [list(rows[i:i + count]) for i in range(0, len(rows), count)]


def padded_tokens(rows: Sequence[int], prompt_lengths: Sequence[int], response_lengths: Sequence[int]) -> int:
    """Tokens :func:`justrl.train.loop.pack` allocates for these rows (padding included)."""
    if not rows:
        return 0
    return len(rows) * (max(prompt_lengths[i] for i in rows) + max(max(1, response_lengths[i]) for i in rows))


def token_budget(rows: Sequence[int], prompt_lengths: Sequence[int], response_lengths: Sequence[int],
                 budget: int) -> list[list[int]]:
    """Micro-batches of ``rows`` whose padded size stays within ``budget`` tokens.

    Rows are taken longest first (so similar lengths share a batch and padding stays small) and a
    micro-batch is closed when the next row would push it over the budget; a row longer than the
    budget on its own gets a micro-batch of its own. Every row appears exactly once.
    """
    if budget <= 0:
        raise ValueError(f"the token budget must be > 0 (got {budget})")
    order = sorted(rows, key=lambda i: (prompt_lengths[i] + response_lengths[i], -i), reverse=True)
    batches: list[list[int]] = []
    current: list[int] = []
    for row in order:
        if current and padded_tokens([*current, row], prompt_lengths, response_lengths) > budget:
            batches.append(current)
            current = []
        current.append(row)
    if current:
        batches.append(current)
    return batches


def micro_batches(rows: Sequence[int], prompt_lengths: Sequence[int], response_lengths: Sequence[int], *,
                  sequences: int, tokens: int | None) -> list[list[int]]:
    """The recipe's cut: a ``tokens`` budget when it is set (> 0), else ``sequences`` per micro-batch."""
    if tokens:
        return token_budget(rows, prompt_lengths, response_lengths, tokens)
    return fixed_count(rows, sequences)


def for_rollouts(rollouts, rows: Sequence[int], recipe) -> list[list[int]]:
    """:func:`micro_batches` of a step's ``rows`` with the recipe's ``micro_batch_tokens`` / ``_sequences``."""
    return micro_batches(rows, [len(p) for p in rollouts.prompt_ids], [len(r) for r in rollouts.response_ids],
                         sequences=recipe.micro_batch_sequences, tokens=recipe.micro_batch_tokens)
