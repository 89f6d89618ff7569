"""The translation table: every recipe field mapped (or refused with a reason), the paper's recipe
key by key as the release's launch script set it, values that follow the recipe."""

from __future__ import annotations

import dataclasses

import pytest

from justrl import recipe as R
from justrl.errors import VerlConfigError
from justrl.verl_engine import mapping as M
from justrl.verl_engine import rendering
from justrl.verl_engine.plan import make_plan

PAPER = "justrl-deepseek-1.5b"

# The release's launch script (train/examples/justrl/run_scaling_ssh_distill.sh), key by key, under
# the names verl 0.9.1 uses: grad_clip moved to optim.clip_grad, reward_model.* to reward.*.
RELEASE = {
    "algorithm.adv_estimator": "grpo",
    "algorithm.use_kl_in_reward": False,
    "algorithm.kl_ctrl.kl_coef": 0.0,
    "data.train_batch_size": 256,
    "data.max_prompt_length": 1024,
    "data.max_response_length": 15360,
    "data.filter_overlong_prompts": True,
    "data.truncation": "error",
    "actor_rollout_ref.model.path": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
    "actor_rollout_ref.actor.optim.lr": 1e-6,
    "actor_rollout_ref.actor.optim.lr_warmup_steps": 10,
    "actor_rollout_ref.actor.optim.weight_decay": 0.1,
    "actor_rollout_ref.model.use_remove_padding": True,
    "actor_rollout_ref.actor.ppo_mini_batch_size": 64,
    "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu": 1,
    "actor_rollout_ref.actor.entropy_coeff": 0.0,
    "actor_rollout_ref.actor.optim.clip_grad": 1.0,
    "actor_rollout_ref.actor.use_dynamic_bsz": True,
    "actor_rollout_ref.actor.ppo_max_token_len_per_gpu": 32768,
    "actor_rollout_ref.actor.use_kl_loss": False,
    "actor_rollout_ref.actor.kl_loss_coef": 0.0,
    "actor_rollout_ref.actor.clip_ratio_low": 0.2,
    "actor_rollout_ref.actor.clip_ratio_high": 0.28,
    "actor_rollout_ref.actor.clip_ratio_c": 10.0,
    "actor_rollout_ref.actor.ulysses_sequence_parallel_size": 1,
    "actor_rollout_ref.model.enable_gradient_checkpointing": True,
    "actor_rollout_ref.actor.fsdp_config.param_offload": False,
    "actor_rollout_ref.actor.fsdp_config.optimizer_offload": False,
    "actor_rollout_ref.rollout.tensor_model_parallel_size": 1,
    "actor_rollout_ref.rollout.max_num_batched_tokens": 32768,
    "actor_rollout_ref.rollout.name": "vllm",
    "actor_rollout_ref.rollout.temperature": 1.0,
    "actor_rollout_ref.rollout.n": 8,
    "actor_rollout_ref.rollout.val_kwargs.do_sample": True,
    "actor_rollout_ref.rollout.val_kwargs.n": 32,
    "actor_rollout_ref.rollout.val_kwargs.temperature": 0.7,
    "actor_rollout_ref.rollout.val_kwargs.top_p": 0.9,
    "actor_rollout_ref.rollout.gpu_memory_utilization": 0.85,
    "reward.reward_manager.name": "dapo",
    "reward.reward_kwargs.overlong_buffer_cfg.enable": False,
    "reward.reward_kwargs.overlong_buffer_cfg.penalty_factor": 1.0,
    "trainer.val_before_train": True,
    "trainer.project_name": "justrl",
    "trainer.n_gpus_per_node": 8,
    "trainer.nnodes": 4,
    "trainer.save_freq": 50,
    "trainer.test_freq": 50,
}


def test_every_recipe_field_has_a_route() -> None:
    assert M.unmapped_fields() == [], "recipe fields without a verl mapping: add them to MAPPING in verl_engine/mapping.py"
    assert not set(M.MAPPING) - {f.name for f in dataclasses.fields(R.Recipe)}, "MAPPING names a removed field"
    for name, route in M.MAPPING.items():
        assert route.keys or route.reason, f"{name}: no verl key and no reason why"


def test_a_recipe_field_without_a_route_fails(monkeypatch, paper_plan) -> None:
    recipe, plan = paper_plan
    monkeypatch.delitem(M.MAPPING, "clip_high")  # as if clip_high were a new field nobody mapped
    assert M.unmapped_fields() == ["clip_high"]
    with pytest.raises(VerlConfigError, match="without a verl mapping.*clip_high"):
        M.verl_settings(recipe, plan)


def test_every_mapped_key_is_set_once(paper_plan) -> None:
    recipe, plan = paper_plan
    settings = M.verl_settings(recipe, plan)
    mapped = [k for route in M.MAPPING.values() for k in route.keys]
    assert len(mapped) == len(set(mapped))
    assert set(mapped) <= set(settings)
    assert not set(mapped) & set(M.engine_settings(recipe, plan))


def test_paper_recipe_matches_the_release_launch_script(paper_plan) -> None:
    recipe, plan = paper_plan
    settings = M.verl_settings(recipe, plan)
    wrong = {k: (settings.get(k, "<unset>"), v) for k, v in RELEASE.items() if settings.get(k, "<unset>") != v}
    assert not wrong, f"differs from the release (ours, release): {wrong}"


def test_values_follow_the_recipe(tmp_path) -> None:
    recipe = R.load(PAPER, ["kl_coef=0.01", "overlong_buffer_tokens=4096", "loggers=console,jsonl",
                            "clip_high=0.3", "val_temperature=0", "max_response_tokens=31744"])
    settings = M.verl_settings(recipe, make_plan(recipe, tmp_path))
    assert settings["actor_rollout_ref.actor.use_kl_loss"] is True
    assert settings["actor_rollout_ref.actor.kl_loss_coef"] == 0.01
    assert settings["algorithm.use_kl_in_reward"] is False
    assert settings["reward.reward_kwargs.overlong_buffer_cfg.enable"] is True
    assert settings["reward.reward_kwargs.overlong_buffer_cfg.len"] == 4096
    assert settings["trainer.logger"] == ["console", "file"]
    assert settings["actor_rollout_ref.actor.clip_ratio_high"] == 0.3
    assert settings["actor_rollout_ref.rollout.val_kwargs.do_sample"] is False
    assert settings["actor_rollout_ref.actor.ppo_max_token_len_per_gpu"] == 1024 + 31744


@pytest.mark.parametrize(("overrides", "field"), [
    (["use_chat_template=false"], "use_chat_template"), (["adv_epsilon=1e-8"], "adv_epsilon"),
    (["optimizer=sgd"], "optimizer"), (["loggers=console,mlflowx"], "loggers"),
])
def test_values_verl_cannot_express_are_refused(tmp_path, overrides: list[str], field: str) -> None:
    recipe = R.load(PAPER, overrides)
    with pytest.raises(VerlConfigError, match=field):
        M.verl_settings(recipe, make_plan(recipe, tmp_path))


def test_toy_model_and_uneven_gpu_split_are_refused(tmp_path) -> None:
    with pytest.raises(VerlConfigError, match="model"):
        rendering.overrides(R.load("toy"), tmp_path)
    with pytest.raises(VerlConfigError, match="divide evenly"):
        rendering.overrides(R.load(PAPER), tmp_path, nnodes=1, gpus_per_node=3)


def test_deviations_name_what_verl_cannot_honour() -> None:
    assert M.deviations(R.load(PAPER, ["val_max_tokens=15360"])) == []
    (note,) = M.deviations(R.load(PAPER))
    assert note.startswith("val_max_tokens=31744") and "max_response_tokens=15360" in note
