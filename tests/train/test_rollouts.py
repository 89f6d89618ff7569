"""Prompts -> rollouts -> rewards: the data cursor, the verifier's rewards, DAPO's overlong penalty."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from justrl import recipe as R
from justrl.train import rollouts as rollouts_mod
from justrl.train.runs import TrainState


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


DAPO_ROW = json.loads((Path(__file__).parents[1] / "fixtures" / "dapo_math_17k_row.json").read_text())


def test_a_dapo_row_is_sent_as_exactly_the_releases_user_message(tiny_model) -> None:
    """The native engine's prompt for one real DAPO-Math-17k row (tests/fixtures/dapo_math_17k_row.json)
    is the release's user message through the chat template, token for token."""
    from transformers import AutoTokenizer

    from justrl.data.problems import problem_from_row

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    problem = problem_from_row(DAPO_ROW["row"], 0, "dapo")
    paper = R.load("justrl-deepseek-1.5b")
    assert rollouts_mod.user_message(problem, paper) == DAPO_ROW["release_user_message"]
    chat = tokenizer.apply_chat_template([{"role": "user", "content": DAPO_ROW["release_user_message"]}],
                                         add_generation_prompt=True, tokenize=False)
    (prompt,) = rollouts_mod.encode_prompts([problem], tokenizer, paper)
    assert prompt.ids == tokenizer(chat, add_special_tokens=False)["input_ids"]
    assert prompt.ground_truth == "34" and prompt.source == "math_dapo"
    clean = rollouts_mod.user_message(problem, R.apply(paper, {"prompt_format": "clean"}))
    assert clean == DAPO_ROW["release_user_message"][len("Solve the following math problem step by step. The "
                                                       "last line of your response should be of the form Answer: "
                                                       "$Answer (without quotes) where $Answer is the answer to "
                                                       "the problem.\n\n"):].replace(
        '\n\nRemember to put your answer on its own line after "Answer:".', "")


def test_release_order_is_verls_sampler_with_data_seed(tmp_path) -> None:
    """With data_seed, batches are consecutive slices of the order verl 0.9.1's own sampler draws
    with data.seed (the release's fork: torch.randperm with the same seeded generator), a pass's
    last partial batch dropped as verl's drop_last does, and a resumed cursor draws the same."""
    from omegaconf import OmegaConf
    from verl.trainer.ppo.utils import create_rl_sampler

    train_set = [rollouts_mod.Prompt([i], str(i), str(i), "test") for i in range(10)]
    sampler = create_rl_sampler(OmegaConf.create({"shuffle": True, "seed": 1}), list(range(10)))
    verl_epochs = [list(sampler), list(sampler)]
    state = TrainState()
    drawn = [[int(p.problem_id) for p in rollouts_mod.next_prompts(train_set, state, 4, seed=42, data_seed=1)]
             for _ in range(4)]
    assert drawn == [verl_epochs[0][0:4], verl_epochs[0][4:8], verl_epochs[1][0:4], verl_epochs[1][4:8]]
    assert (state.epoch, state.position) == (1, 8)
    resumed = dataclasses.replace(state, epoch=1, position=4)
    assert [int(p.problem_id) for p in rollouts_mod.next_prompts(train_set, resumed, 4, seed=0, data_seed=1)] \
        == verl_epochs[1][4:8]


def test_release_validation_rows_and_repeated_training_rows(tmp_path) -> None:
    aime = rollouts_mod.load_problems("release:AIME24", "test")
    assert len(aime) == 30 and aime[1].ground_truth == "025" and aime[0].source == "AIME24"
    rows = tmp_path / "train.jsonl"
    rows.write_text("".join(json.dumps({"problem": "1+1?", "answer": "2"}) + "\n" for _ in range(3)))
    assert len(rollouts_mod.load_problems(str(rows), "train", dedupe=False)) == 3
    assert len(rollouts_mod.load_problems(str(rows), "train", dedupe=True)) == 1
    paper = R.load("justrl-deepseek-1.5b")
    assert rollouts_mod.rollout_seed(paper) == 0
    assert rollouts_mod.rollout_seed(R.apply(paper, {"rollout_seed": None})) == paper.seed
