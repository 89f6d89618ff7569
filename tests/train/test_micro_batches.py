"""Micro-batch cuts: fixed count, and a token budget that covers every row once within the budget."""

from __future__ import annotations

import random

import pytest

from justrl.train.micro_batches import fixed_count, micro_batches, padded_tokens, token_budget


def test_fixed_count_keeps_order() -> None:
    assert fixed_count([4, 1, 3, 0, 2], 2) == [[4, 1], [3, 0], [2]]


def test_padded_tokens_is_what_pack_allocates() -> None:
    prompts, responses = [3, 5, 2], [10, 1, 0]
    assert padded_tokens([0, 1], prompts, responses) == 2 * (5 + 10)
    assert padded_tokens([2], prompts, responses) == 1 * (2 + 1)  # an empty response still takes a column
    assert padded_tokens([], prompts, responses) == 0


def test_token_budget_covers_every_row_once_within_the_budget() -> None:
    rng = random.Random(0)
    prompts = [rng.randint(5, 40) for _ in range(64)]
    responses = [rng.choice([rng.randint(1, 30), rng.randint(200, 600)]) for _ in range(64)]
    rows = list(range(0, 64, 2))  # a mini-batch is any subset of the step's rows
    batches = token_budget(rows, prompts, responses, budget=1200)
    assert sorted(i for b in batches for i in b) == rows
    assert all(padded_tokens(b, prompts, responses) <= 1200 for b in batches)
    # short rows share micro-batches: fewer passes than one row each, more than the fixed 8
    assert len(rows) / 8 < len(batches) < len(rows)


def test_a_row_over_the_budget_runs_alone() -> None:
    batches = token_budget([0, 1, 2], [10, 10, 10], [500, 5, 5], budget=100)
    assert [0] in batches and sorted(i for b in batches for i in b) == [0, 1, 2]


def test_the_recipe_picks_the_cut() -> None:
    rows, prompts, responses = [0, 1, 2, 3], [1, 1, 1, 1], [1, 1, 1, 1]
    assert micro_batches(rows, prompts, responses, sequences=3, tokens=None) == [[0, 1, 2], [3]]
    assert micro_batches(rows, prompts, responses, sequences=3, tokens=0) == [[0, 1, 2], [3]]
    assert len(micro_batches(rows, prompts, responses, sequences=1, tokens=8)) == 1
    with pytest.raises(ValueError):
        token_budget(rows, prompts, responses, budget=0)
