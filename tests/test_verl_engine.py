"""The recipe on verl: every field mapped, overrides checked against the installed verl's config,
the reward adapter loaded by verl's own loader, and the dry-run launch."""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import subprocess

import numpy as np
import pytest
import torch

from justrl import recipe as R
from justrl import verl_engine as V
from justrl import verl_reward
from justrl.cli import main

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


@pytest.fixture(scope="module")
def paper_plan(tmp_path_factory) -> tuple[R.Recipe, V.VerlPlan]:
    recipe = R.load(PAPER)
    return recipe, V.make_plan(recipe, tmp_path_factory.mktemp("run"), nnodes=4, gpus_per_node=8)


@pytest.fixture(scope="module")
def paper_config(paper_plan):
    recipe, plan = paper_plan
    return V.validate_overrides(V.overrides(recipe, plan), expected=V.verl_settings(recipe, plan))


# --- the mapping table ------------------------------------------------------------------------


def test_every_recipe_field_has_a_route() -> None:
    assert V.unmapped_fields() == [], "recipe fields without a verl mapping: add them to verl_engine.MAPPING"
    assert not set(V.MAPPING) - {f.name for f in dataclasses.fields(R.Recipe)}, "MAPPING names a removed field"
    for name, route in V.MAPPING.items():
        assert route.keys or route.reason, f"{name}: no verl key and no reason why"


def test_a_recipe_field_without_a_route_fails(monkeypatch, paper_plan) -> None:
    recipe, plan = paper_plan
    monkeypatch.delitem(V.MAPPING, "clip_high")  # as if clip_high were a new field nobody mapped
    assert V.unmapped_fields() == ["clip_high"]
    with pytest.raises(V.VerlConfigError, match="without a verl mapping.*clip_high"):
        V.verl_settings(recipe, plan)


def test_every_mapped_key_is_set_once(paper_plan) -> None:
    recipe, plan = paper_plan
    settings = V.verl_settings(recipe, plan)
    mapped = [k for route in V.MAPPING.values() for k in route.keys]
    assert len(mapped) == len(set(mapped))
    assert set(mapped) <= set(settings)
    assert not set(mapped) & set(V.engine_settings(recipe, plan))


def test_paper_recipe_matches_the_release_launch_script(paper_plan) -> None:
    recipe, plan = paper_plan
    settings = V.verl_settings(recipe, plan)
    wrong = {k: (settings.get(k, "<unset>"), v) for k, v in RELEASE.items() if settings.get(k, "<unset>") != v}
    assert not wrong, f"differs from the release (ours, release): {wrong}"


def test_values_follow_the_recipe(tmp_path) -> None:
    recipe = R.load(PAPER, ["kl_coef=0.01", "overlong_buffer_tokens=4096", "loggers=console,jsonl",
                            "clip_high=0.3", "val_temperature=0", "max_response_tokens=31744"])
    settings = V.verl_settings(recipe, V.make_plan(recipe, tmp_path))
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
    with pytest.raises(V.VerlConfigError, match=field):
        V.verl_settings(recipe, V.make_plan(recipe, tmp_path))


def test_toy_model_and_uneven_gpu_split_are_refused(tmp_path) -> None:
    with pytest.raises(V.VerlConfigError, match="model"):
        V.overrides(R.load("toy"), tmp_path)
    with pytest.raises(V.VerlConfigError, match="divide evenly"):
        V.overrides(R.load(PAPER), tmp_path, nnodes=1, gpus_per_node=3)


# --- composition with the installed verl ------------------------------------------------------


def test_installed_verl_is_the_pinned_release() -> None:
    assert V.installed_verl_version() == V.VERL_VERSION


def test_paper_overrides_compose_with_verl(paper_config) -> None:
    actor = paper_config.actor_rollout_ref.actor
    assert actor.clip_ratio_high == 0.28 and actor.clip_ratio_c == 10.0 and actor.optim.lr == 1e-6
    assert actor.ppo_mini_batch_size == 64 and actor.use_kl_loss is False
    assert paper_config.actor_rollout_ref.rollout.n == 8
    assert paper_config.data.train_batch_size == 256 and paper_config.data.max_response_length == 15360
    assert paper_config.algorithm.use_kl_in_reward is False
    assert paper_config.reward.custom_reward_function.path == V.REWARD_FN_PATH


@pytest.mark.parametrize("preset", ["justrl-nemotron-1.5b"])
def test_other_presets_compose(tmp_path, preset: str) -> None:
    recipe = R.load(preset)
    plan = V.make_plan(recipe, tmp_path)
    V.validate_overrides(V.overrides(recipe, plan), expected=V.verl_settings(recipe, plan))


def test_a_renamed_key_fails_loudly(monkeypatch, paper_plan) -> None:
    recipe, plan = paper_plan
    # as if verl had renamed clip_ratio_high: the table's key no longer exists in verl's config
    monkeypatch.setitem(V.MAPPING, "clip_high", V.to("actor_rollout_ref.actor.clip_ratio_upper"))
    with pytest.raises(V.VerlConfigError, match=r"actor_rollout_ref\.actor\.clip_ratio_upper: unknown verl key"):
        V.validate_overrides(V.overrides(recipe, plan))


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
    with pytest.raises(V.VerlConfigError, match=message):
        V.validate_overrides(V.overrides(recipe, plan) + [override])


def test_extra_overrides_win_and_compose(paper_plan) -> None:
    recipe, plan = paper_plan
    config = V.validate_overrides(V.overrides(recipe, plan) + ["actor_rollout_ref.rollout.gpu_memory_utilization=0.7"])
    assert config.actor_rollout_ref.rollout.gpu_memory_utilization == 0.7


@pytest.mark.parametrize("value", ["pkg://a.b", "/x/y z.parquet", "it's", "42", "True", "null", "back\\",
                                   "a,b", "[x]", "~/data"])
def test_hydra_values_read_back_exactly(value: str) -> None:
    assert V._parsed_value(V.hydra_value(value)) == value


# --- the reward adapter through verl's own loader ---------------------------------------------


def test_reward_adapter_loads_through_verls_loader(paper_config) -> None:
    from verl.trainer.ppo.reward import get_custom_reward_fn

    score = get_custom_reward_fn(paper_config)
    assert score is not None
    good = score(data_source="AIME24", solution_str="so 2+2 is \\boxed{4}", ground_truth="4", extra_info={})
    assert good == {"score": 1.0, "acc": 1.0, "pred": "4"}
    bad = score(data_source="AIME24", solution_str="\\boxed{5}", ground_truth="4", extra_info={})
    assert bad == {"score": -1.0, "acc": 0.0, "pred": "5"}
    none = score(data_source="x", solution_str="no box", ground_truth="4", extra_info=None)
    assert none["score"] == -1.0 and none["pred"] == ""


def test_reward_adapter_by_file_path_with_recipe_rewards(tmp_path) -> None:
    from omegaconf import OmegaConf
    from verl.trainer.ppo.reward import get_custom_reward_fn

    config = OmegaConf.create({"reward": {"custom_reward_function": {
        "path": verl_reward.__file__, "name": "compute_score",
        "reward_kwargs": {"verifier": "dapo-strict", "reward_correct": 2.0, "reward_incorrect": 0.0}}}})
    score = get_custom_reward_fn(config)
    assert score(data_source="d", solution_str="\\boxed{7}", ground_truth="7")["score"] == 2.0
    assert score(data_source="d", solution_str="\\boxed{8}", ground_truth="7")["score"] == 0.0


def test_reward_adapter_chooses_the_verifier_by_name(monkeypatch) -> None:
    with pytest.raises(ValueError, match="unknown verifier"):
        verl_reward.compute_score("d", "\\boxed{1}", "1", verifier="no-such-verifier")
    monkeypatch.setenv(verl_reward.VERIFIER_ENV, "no-such-verifier")
    with pytest.raises(ValueError, match="no-such-verifier"):
        verl_reward.compute_score("d", "\\boxed{1}", "1")
    assert verl_reward.compute_score("d", "\\boxed{1}", "1", verifier="dapo-strict")["score"] == 1.0


def _byte_tokenizer():
    """A byte-level tokenizer built locally (no downloads): decodes any text exactly."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {ch: i for i, ch in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    vocab.update({"<|user|>": len(vocab), "<|assistant|>": len(vocab) + 1, "<|end|>": len(vocab) + 2})
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|end|>", pad_token="<|end|>",
                                   additional_special_tokens=["<|user|>", "<|assistant|>"])


def test_reward_through_verls_dapo_reward_manager(paper_config) -> None:
    """The whole path verl takes: its loader, its DAPO reward manager, a decoded response."""
    from verl import DataProto
    from verl.trainer.ppo.reward import load_reward_manager

    tokenizer = _byte_tokenizer()
    manager = load_reward_manager(paper_config, tokenizer)
    assert type(manager).__name__ == "DAPORewardManager"
    prompt = tokenizer.encode("<|user|>2+2?<|end|><|assistant|>")
    scores = []
    for text in ("It is \\boxed{4}.", "It is \\boxed{5}."):
        response = tokenizer.encode(text) + [tokenizer.pad_token_id] * 3
        ids = torch.tensor([prompt + response])
        mask = torch.tensor([[1] * (len(prompt) + len(response) - 3) + [0] * 3])
        data = DataProto.from_dict(
            tensors={"prompts": ids[:, :len(prompt)], "responses": ids[:, len(prompt):], "attention_mask": mask},
            non_tensors={"data_source": np.array(["AIME24"], dtype=object),
                         "reward_model": np.array([{"ground_truth": "4", "style": "rule"}], dtype=object),
                         "extra_info": np.array([{"index": "AIME24-0"}], dtype=object)},
        )
        scores.append(manager.loop.run_until_complete(manager.run_single(data))["reward_score"])
    assert scores == [1.0, -1.0]


# --- launch ------------------------------------------------------------------------------------


def _args(tmp_path, **kw) -> argparse.Namespace:
    base = {"recipe": PAPER, "run_dir": str(tmp_path / "run"), "nnodes": 4, "gpus_per_node": 8,
            "dry_run": True, "overrides": [], "train_file": None, "val_file": None, "data_dir": None}
    return argparse.Namespace(**{**base, **kw})


def test_dry_run_writes_the_script_and_prints_the_command(tmp_path, capsys) -> None:
    assert V.launch(None, _args(tmp_path, overrides=["lr=2e-6", "trainer.max_actor_ckpt_to_keep=3"])) == 0
    out = capsys.readouterr().out
    for expected in ("actor_rollout_ref.actor.clip_ratio_high=0.28", "actor_rollout_ref.actor.clip_ratio_c=10.0",
                     "actor_rollout_ref.rollout.n=8", "data.train_batch_size=256",
                     "actor_rollout_ref.actor.ppo_mini_batch_size=64", "actor_rollout_ref.actor.optim.lr=2e-06",
                     "actor_rollout_ref.actor.use_kl_loss=False", "algorithm.use_kl_in_reward=False",
                     "data.max_response_length=15360", "trainer.max_actor_ckpt_to_keep=3", "-m verl.trainer.main_ppo",
                     "note: val_max_tokens=31744"):
        assert expected in out, expected
    run = tmp_path / "run"
    script = run / V.SCRIPT_NAME
    assert script.stat().st_mode & 0o100
    assert R.load(str(run / "recipe.yaml")).lr == 2e-6
    text = script.read_text()
    assert "data export --format verl" in text and "BytedTsinghua-SIA/DAPO-Math-17k" in text
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0


def test_given_data_files_skip_the_export(tmp_path, capsys) -> None:
    train = tmp_path / "t.parquet"
    assert V.launch(None, _args(tmp_path, train_file=[str(train)], val_file=[str(tmp_path / "v.parquet")])) == 0
    assert f"data.train_files=[{train}]" in capsys.readouterr().out
    assert "data export" not in (tmp_path / "run" / V.SCRIPT_NAME).read_text()


def test_printed_command_is_exact(paper_plan) -> None:
    recipe, plan = paper_plan
    override_list = V.overrides(recipe, plan) + ["+reward.reward_kwargs.note='a b'"]
    text = V.format_command(V.command(override_list, python="python"))
    assert shlex.split(text.replace("\\\n", " ")) == ["python", "-m", V.ENTRYPOINT, *override_list]


def test_split_overrides() -> None:
    assert V.split_overrides(["lr=1", "a.b=2", "+reward.reward_kwargs.x=3", "name=x.y"]) == (
        ["lr=1", "name=x.y"], ["a.b=2", "+reward.reward_kwargs.x=3"])


def test_cli_train_engine_verl_dry_run(tmp_path, capsys) -> None:
    code = main(["train", "--engine", "verl", "--recipe", PAPER, "--dry-run", "--run-dir", str(tmp_path / "r")])
    assert code == 0
    assert "actor_rollout_ref.actor.clip_ratio_high=0.28" in capsys.readouterr().out


def test_cli_refuses_a_bad_verl_override(tmp_path, capsys) -> None:
    code = main(["train", "--engine", "verl", "--dry-run", "--run-dir", str(tmp_path / "r"),
                 "actor_rollout_ref.actor.clip_ratio_hi=0.3"])
    assert code == 2
    assert "clip_ratio_hi" in capsys.readouterr().err
    assert not (tmp_path / "r" / V.SCRIPT_NAME).exists()


def test_recipe_show_engine_verl(capsys) -> None:
    assert main(["recipe", "show", PAPER, "--engine", "verl"]) == 0
    out = capsys.readouterr().out
    for name in ("clip_high", "actor_rollout_ref.actor.clip_ratio_high", "0.28", "micro_batch_sequences",
                 "engine settings", "pkg://justrl.verl_reward"):
        assert name in out, name
