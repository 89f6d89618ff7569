"""Prompts -> rollouts -> rewards: the data cursor, the verifier's rewards, DAPO's overlong penalty."""

from __future__ import annotations

import dataclasses

import torch

from justrl import recipe as R
from justrl import rollouts as rollouts_mod
from justrl.runs import TrainState


def test_overlong_penalty_is_dapos_soft_ramp() -> None:
    lengths = torch.tensor([10.0, 12.0, 14.0, 16.0])
    penalty = rollouts_mod.overlong_penalty(lengths, max_response_tokens=16, buffer_tokens=4, factor=1.0)
    assert penalty.tolist() == [0.0, 0.0, -0.5, -1.0]


def test_data_cursor_covers_each_epoch_once_and_repeats_from_a_saved_state() -> None:
    train_set = [rollouts_mod.Prompt([i], str(i), str(i), "test") for i in range(10)]
    state = TrainState()
    first_epoch = [p.problem_id for _ in range(2) for p in rollouts_mod.next_prompts(train_set, state, 5, seed=1)]
    assert sorted(first_epoch) == sorted(str(i) for i in range(10)) and (state.epoch, state.position) == (1, 0)
    saved = dataclasses.replace(state)
    ahead = rollouts_mod.next_prompts(train_set, state, 4, seed=1)
    assert rollouts_mod.next_prompts(train_set, saved, 4, seed=1) == ahead  # a resumed run draws the same
    assert [p.problem_id for p in ahead] != first_epoch[:4]  # each epoch has its own order


def test_rewards_are_the_verifiers_plus_the_overlong_penalty(tiny_recipe, toy_rollouts) -> None:
    recipe = tiny_recipe(max_response_tokens=1)  # one token: never a right answer, always at the limit
    _, rollouts = toy_rollouts(recipe)
    rewards, correct = rollouts_mod.score_rollouts(rollouts, recipe)
    assert torch.all(rewards == -1.0) and not correct.any()
    assert rollouts_mod.groups_with_signal(rewards, rollouts.group) == 0.0
    penalised, _ = rollouts_mod.score_rollouts(
        rollouts, R.apply(recipe, {"overlong_buffer_tokens": 1, "overlong_penalty_factor": 0.5}))
    assert torch.all(penalised == -1.5)
