"""The two engines agree where they must: for one batch of prompts and responses, verl 0.9.1's
old log-probs and GRPO advantages equal the native engine's (float32 tolerance).

verl's side is verl's own code, in the layout its FSDP actor feeds the model without padding
removal: ``[prompt left-padded to max_prompt_length | response right-padded to
max_response_length]``, position ids from ``compute_position_id_with_mask``, logits of the response
positions divided by the temperature, ``logprobs_from_logits``; advantages from
``compute_grpo_outcome_advantage``. The native side is ``justrl.train.logprobs.policy_log_probs`` (its own
packing and micro-batches) and ``justrl.grpo.group_advantages``."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from justrl import grpo
from justrl import recipe as R
from justrl.train import logprobs
from justrl.train.rollouts import Rollouts

pytest.importorskip("verl")


@pytest.fixture(scope="module")
def batch(tiny_model):
    """Eight prompts x four responses of random tokens, ragged lengths, with +1/-1 rewards."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32, attn_implementation="sdpa")
    model.eval()
    rng = random.Random(0)
    vocab = model.config.vocab_size
    prompts = [[rng.randrange(3, vocab) for _ in range(rng.randint(3, 12))] for _ in range(8)]
    n = 4
    prompt_ids = [p for p in prompts for _ in range(n)]
    response_ids = [[rng.randrange(3, vocab) for _ in range(rng.randint(1, 10))] for _ in prompt_ids]
    scores = [rng.choice([1.0, -1.0]) for _ in prompt_ids]
    rollouts = Rollouts(prompt_ids=prompt_ids, response_ids=response_ids,
                        sampler_log_probs=[[0.0] * len(r) for r in response_ids],
                        truncated=[False] * len(prompt_ids), texts=[""] * len(prompt_ids),
                        ground_truths=[""] * len(prompt_ids), group=[i // n for i in range(len(prompt_ids))],
                        pad_id=0)
    return model, rollouts, torch.tensor(scores)


def _verl_layout(rollouts: Rollouts, prompt_len: int, response_len: int):
    from verl.utils.model import compute_position_id_with_mask

    rows, masks = [], []
    for prompt, response in zip(rollouts.prompt_ids, rollouts.response_ids):
        pad_left, pad_right = prompt_len - len(prompt), response_len - len(response)
        rows.append([rollouts.pad_id] * pad_left + prompt + response + [rollouts.pad_id] * pad_right)
        masks.append([0] * pad_left + [1] * (len(prompt) + len(response)) + [0] * pad_right)
    input_ids, attention = torch.tensor(rows), torch.tensor(masks)
    return input_ids, attention, compute_position_id_with_mask(attention)


def test_old_log_probs_equal_verls(batch) -> None:
    from verl.utils.torch_functional import logprobs_from_logits

    model, rollouts, _ = batch
    recipe = R.load("toy", ["temperature=0.7"])  # a temperature other than 1 is divided out on both sides
    native, _ = logprobs.policy_log_probs(model, rollouts, recipe, torch.device("cpu"), None)
    response_len = 12
    input_ids, attention, positions = _verl_layout(rollouts, 16, response_len)
    responses = input_ids[:, -response_len:]
    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=attention, position_ids=positions).logits
        logits = logits[:, -response_len - 1:-1, :] / recipe.temperature
        verl_lp = logprobs_from_logits(logits, responses)
    for i, response in enumerate(rollouts.response_ids):
        torch.testing.assert_close(native[i, :len(response)], verl_lp[i, :len(response)], atol=1e-5, rtol=1e-5)
    assert float(native.abs().sum()) > 0


@pytest.mark.parametrize("normalize", [True, False])
def test_grpo_advantages_equal_verls(batch, normalize: bool) -> None:
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage

    _, rollouts, scores = batch
    width = max(len(r) for r in rollouts.response_ids)
    mask = logprobs.response_mask(rollouts, torch.Size((len(rollouts), width)))
    token_rewards = torch.zeros_like(mask)
    last = torch.tensor([len(r) - 1 for r in rollouts.response_ids])
    token_rewards[torch.arange(len(rollouts)), last] = scores  # verl puts the outcome on the last token
    index = np.array([f"prompt-{g}" for g in rollouts.group], dtype=object)
    verl_adv, _ = compute_grpo_outcome_advantage(token_rewards, mask, index, epsilon=1e-6,
                                                 norm_adv_by_std_in_grpo=normalize)
    native = grpo.group_advantages(scores, rollouts.group, eps=1e-6, normalize_by_std=normalize)
    torch.testing.assert_close(verl_adv, native.unsqueeze(1) * mask, atol=1e-6, rtol=1e-6)
    assert float(native.abs().sum()) > 0
