"""The GRPO math equals verl's (the engine the paper trained with), number for number."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from justrl import grpo

core_algos = pytest.importorskip("verl.trainer.ppo.core_algos")
from verl.workers.config.actor import ActorConfig  # noqa: E402


def _verl_actor_config(clip_low: float, clip_high: float, clip_c: float, agg: str) -> ActorConfig:
    return ActorConfig(
        strategy="fsdp", ppo_mini_batch_size=4, ppo_micro_batch_size_per_gpu=2, rollout_n=1,
        clip_ratio_low=clip_low, clip_ratio_high=clip_high, clip_ratio_c=clip_c, loss_agg_mode=agg,
    )


def _random_batch(gen: torch.Generator, batch: int, length: int, extreme: bool):
    log_probs = -torch.rand(batch, length, generator=gen) * 5
    spread = 30.0 if extreme else 0.5
    old_log_probs = log_probs + (torch.rand(batch, length, generator=gen) - 0.5) * spread
    advantages = torch.randn(batch, 1, generator=gen).expand(batch, length).clone()
    lengths = torch.randint(0, length + 1, (batch,), generator=gen)
    lengths[0] = length  # at least one full row, so the mask is never all zero
    mask = (torch.arange(length)[None, :] < lengths[:, None]).float()
    return log_probs, old_log_probs, advantages, mask


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("seed", range(5))
def test_group_advantages_match_verl(seed: int, normalize: bool) -> None:
    gen = torch.Generator().manual_seed(seed)
    n_groups, group = 7, 8
    scores = torch.where(torch.rand(n_groups * group, generator=gen) > 0.5, 1.0, -1.0)
    scores[:group] = 1.0  # an all-correct group: zero advantage, no division blow-up
    scores[group: 2 * group] = torch.randn(group, generator=gen) * 3  # non-binary scores
    ids = np.repeat(np.arange(n_groups), group)
    perm = torch.randperm(len(ids), generator=gen)
    scores, ids = scores[perm], ids[perm.numpy()]
    ids = np.concatenate([ids, [99]])  # a group of one keeps its score, as in verl
    scores = torch.cat([scores, torch.tensor([0.7])])
    length = 6
    mask = torch.ones(len(scores), length)
    expected, _ = core_algos.compute_grpo_outcome_advantage(
        token_level_rewards=torch.nn.functional.pad(scores[:, None], (length - 1, 0)),
        response_mask=mask, index=ids, epsilon=1e-6, norm_adv_by_std_in_grpo=normalize,
    )
    ours = grpo.group_advantages(scores, ids.tolist(), eps=1e-6, normalize_by_std=normalize)
    torch.testing.assert_close(ours, expected[:, 0], atol=1e-6, rtol=1e-6)
    assert ours[-1].item() == pytest.approx(0.7 / (1 + 1e-6) if normalize else 0.7)


@pytest.mark.parametrize("agg", grpo.LOSS_AGG_MODES)
@pytest.mark.parametrize("extreme", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_policy_loss_matches_verl(seed: int, extreme: bool, agg: str) -> None:
    gen = torch.Generator().manual_seed(100 + seed)
    log_probs, old_log_probs, advantages, mask = _random_batch(gen, 12, 9, extreme)
    config = _verl_actor_config(0.2, 0.28, 10.0, agg)
    expected_loss, expected_metrics = core_algos.compute_policy_loss_vanilla(
        old_log_prob=old_log_probs, log_prob=log_probs, advantages=advantages,
        response_mask=mask, loss_agg_mode=agg, config=config,
    )
    loss, stats = grpo.policy_loss(
        log_probs, old_log_probs, advantages, mask, clip_low=0.2, clip_high=0.28, clip_c=10.0, agg=agg,
    )
    torch.testing.assert_close(loss, expected_loss, atol=1e-6, rtol=1e-6)
    for key, value in stats.as_metrics().items():
        assert value == pytest.approx(expected_metrics[key], abs=1e-6), key


def test_policy_loss_gradient_matches_verl() -> None:
    gen = torch.Generator().manual_seed(7)
    log_probs, old_log_probs, advantages, mask = _random_batch(gen, 10, 7, extreme=True)
    a = log_probs.clone().requires_grad_(True)
    b = log_probs.clone().requires_grad_(True)
    expected, _ = core_algos.compute_policy_loss_vanilla(
        old_log_probs, b, advantages, mask, "token-mean", _verl_actor_config(0.2, 0.28, 10.0, "token-mean"))
    ours, _ = grpo.policy_loss(a, old_log_probs, advantages, mask)
    expected.backward()
    ours.backward()
    torch.testing.assert_close(a.grad, b.grad, atol=1e-7, rtol=1e-6)


def test_dual_clip_caps_negative_advantage_loss() -> None:
    # ratio e^3 ~ 20 with A = -1: plain PPO loss would be 20, dual-clip caps it at clip_c = 10.
    log_probs = torch.tensor([[3.0]])
    loss, stats = grpo.policy_loss(log_probs, torch.zeros(1, 1), torch.tensor([[-1.0]]), torch.ones(1, 1))
    assert loss.item() == pytest.approx(10.0)
    assert stats.pg_clipfrac_lower == 1.0
    # Positive advantage with ratio above 1 + clip_high: the clipped term (1.28 * A) is the loss.
    loss, stats = grpo.policy_loss(torch.tensor([[1.0]]), torch.zeros(1, 1), torch.tensor([[1.0]]), torch.ones(1, 1))
    assert loss.item() == pytest.approx(-1.28)
    assert stats.pg_clipfrac == 1.0


def test_micro_batches_normalised_by_mini_batch_tokens_equal_whole_batch() -> None:
    gen = torch.Generator().manual_seed(3)
    log_probs, old_log_probs, advantages, mask = _random_batch(gen, 8, 6, extreme=False)
    whole = log_probs.clone().requires_grad_(True)
    loss, _ = grpo.policy_loss(whole, old_log_probs, advantages, mask)
    loss.backward()
    parts = log_probs.clone().requires_grad_(True)
    total_tokens = mask.sum()
    for rows in (slice(0, 3), slice(3, 8)):
        micro, _ = grpo.policy_loss(parts[rows], old_log_probs[rows], advantages[rows], mask[rows],
                                    batch_num_tokens=total_tokens)
        micro.backward()
    torch.testing.assert_close(parts.grad, whole.grad, atol=1e-7, rtol=1e-6)
    # The same holds for verl when it is given the global token count.
    config = _verl_actor_config(0.2, 0.28, 10.0, "token-mean")
    config.global_batch_info["batch_num_tokens"] = total_tokens
    verl_micro, _ = core_algos.compute_policy_loss_vanilla(
        old_log_probs[:3], log_probs[:3], advantages[:3], mask[:3], "token-mean", config)
    ours_micro, _ = grpo.policy_loss(log_probs[:3], old_log_probs[:3], advantages[:3], mask[:3],
                                     batch_num_tokens=total_tokens)
    torch.testing.assert_close(ours_micro, verl_micro)


def test_all_equal_rewards_give_zero_advantage_and_zero_gradient() -> None:
    scores = torch.ones(16)
    adv = grpo.group_advantages(scores, [i // 8 for i in range(16)])
    assert torch.count_nonzero(adv) == 0
    log_probs = (-torch.rand(16, 5)).requires_grad_(True)
    loss, _ = grpo.policy_loss(log_probs, log_probs.detach() + 0.1, adv, torch.ones(16, 5))
    loss.backward()
    assert torch.count_nonzero(log_probs.grad) == 0


def test_entropy_matches_verl_and_closed_form() -> None:
    verl_torch_functional = pytest.importorskip("verl.utils.torch_functional")
    logits = torch.randn(4, 7, 50) * 4
    ours = grpo.entropy_from_logits(logits)
    torch.testing.assert_close(ours, verl_torch_functional.entropy_from_logits(logits), atol=1e-5, rtol=1e-5)
    uniform = grpo.entropy_from_logits(torch.zeros(1, 32))
    assert uniform.item() == pytest.approx(np.log(32), rel=1e-6)


def test_token_log_probs_match_log_softmax() -> None:
    logits = torch.randn(3, 4, 11)
    tokens = torch.randint(0, 11, (3, 4))
    expected = torch.log_softmax(logits, -1).gather(-1, tokens[..., None]).squeeze(-1)
    torch.testing.assert_close(grpo.token_log_probs(logits, tokens), expected, atol=1e-6, rtol=1e-6)


def test_masked_mean_ignores_padding() -> None:
    values = torch.tensor([[1.0, 2.0, 100.0], [3.0, 100.0, 100.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert grpo.masked_mean(values, mask).item() == pytest.approx(2.0)
    torch.testing.assert_close(grpo.masked_mean(values, mask, dim=-1), torch.tensor([1.5, 3.0]))
