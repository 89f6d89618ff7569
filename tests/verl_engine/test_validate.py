"""The overrides composed with the installed verl 0.9.1's own Hydra config: what it takes, and what
it refuses, naming the key."""

from __future__ import annotations

import pytest

from justrl import recipe as R
from justrl.errors import VerlConfigError
from justrl.verl_engine import mapping, rendering, validate
from justrl.verl_engine.plan import make_plan


def test_installed_verl_is_the_pinned_release() -> None:
    assert validate.installed_verl_version() == mapping.VERL_VERSION


def test_paper_overrides_compose_with_verl(paper_config) -> None:
    actor = paper_config.actor_rollout_ref.actor
    assert actor.clip_ratio_high == 0.28 and actor.clip_ratio_c == 10.0 and actor.optim.lr == 1e-6
    assert actor.ppo_mini_batch_size == 64 and actor.use_kl_loss is False
    assert paper_config.actor_rollout_ref.rollout.n == 8
    assert paper_config.data.train_batch_size == 256 and paper_config.data.max_response_length == 15360
    assert paper_config.algorithm.use_kl_in_reward is False
    assert paper_config.reward.custom_reward_function.path == mapping.REWARD_FN_PATH


@pytest.mark.parametrize("preset", ["justrl-nemotron-1.5b"])
def test_other_presets_compose(tmp_path, preset: str) -> None:
    recipe = R.load(preset)
    plan = make_plan(recipe, tmp_path)
    validate.validate_overrides(rendering.overrides(recipe, plan), expected=mapping.verl_settings(recipe, plan))


def test_a_renamed_key_fails_loudly(monkeypatch, paper_plan) -> None:
    recipe, plan = paper_plan
    # as if verl had renamed clip_ratio_high: the table's key no longer exists in verl's config
    monkeypatch.setitem(mapping.MAPPING, "clip_high", mapping.to("actor_rollout_ref.actor.clip_ratio_upper"))
    with pytest.raises(VerlConfigError, match=r"actor_rollout_ref\.actor\.clip_ratio_upper: unknown verl key"):
        validate.validate_overrides(rendering.overrides(recipe, plan))


@pytest.mark.parametrize(("override", "message"), [
    ("data.train_batch_size=many", r"data\.train_batch_size: expected int"),
    ("actor_rollout_ref.rollout.n=2.5", r"actor_rollout_ref\.rollout\.n: expected int"),
    ("actor_rollout_ref.actor.use_kl_loss=sometimes", r"use_kl_loss: expected bool"),
    ("+actor_rollout_ref.actor.clip_ratio_hi=0.3", r"clip_ratio_hi: not a verl .* key"),
    ("~trainer.logger", r"not of the form key=value"),
    ("actor_rollout_ref.actor.loss_agg_mode=token-median", r"(?s)verl's own config checks failed.*loss_agg_mode"),
])
def test_bad_extra_overrides_are_refused_naming_the_key(paper_plan, override: str, message: str) -> None:
    recipe, plan = paper_plan
    with pytest.raises(VerlConfigError, match=message):
        validate.validate_overrides(rendering.overrides(recipe, plan) + [override])


def test_extra_overrides_win_and_compose(paper_plan) -> None:
    recipe, plan = paper_plan
    config = validate.validate_overrides(
        rendering.overrides(recipe, plan) + ["actor_rollout_ref.rollout.gpu_memory_utilization=0.7"])
    assert config.actor_rollout_ref.rollout.gpu_memory_utilization == 0.7
