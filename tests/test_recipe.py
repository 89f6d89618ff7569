"""The recipe: paper values, presets, YAML round trip, overrides that name the bad key."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from justrl import recipe as R

PAPER_VALUES = {
    "algorithm": "grpo", "prompts_per_step": 256, "rollouts_per_prompt": 8, "temperature": 1.0,
    "lr": 1e-6, "warmup_steps": 10, "lr_schedule": "constant", "weight_decay": 0.1, "optimizer": "adamw",
    "grad_clip": 1.0, "mini_batch_prompts": 64, "clip_low": 0.2, "clip_high": 0.28, "clip_c": 10.0,
    "loss_agg": "token-mean", "entropy_coef": 0.0, "kl_coef": 0.0, "max_prompt_tokens": 1024,
    "max_response_tokens": 15360, "verifier": "dapo-strict", "reward_correct": 1.0, "reward_incorrect": -1.0,
    "prompt_suffix": "\n\nPlease reason step by step, and put your final answer within \\boxed{}.",
    "val_every": 50, "val_temperature": 0.7, "val_top_p": 0.9, "save_every": 50, "overlong_buffer_tokens": 0,
    # the release's data and validation (its launch script, its fork's defaults, its reward router)
    "prompt_format": "release", "train_dedup": False, "data_seed": 1, "rollout_seed": 0,
    "val_data": ["release:AIME24", "release:AIME25", "release:AMC23"], "val_verifier": "release-math-verify",
    "val_samples": 32, "val_max_tokens": 31744,
    "answer_from": "answer",
}


def test_former_behaviour_is_one_override_a_field_away() -> None:
    recipe = R.load("justrl-deepseek-1.5b", ["prompt_format=clean", "train_dedup=true", "data_seed=null",
                                             "rollout_seed=null", "val_verifier=dapo-strict",
                                             "val_data=AIME24,AIME25,AMC23"])
    assert (recipe.prompt_format, recipe.train_dedup, recipe.data_seed, recipe.rollout_seed) == (
        "clean", True, None, None)
    with pytest.raises(R.RecipeError, match="prompt_format"):
        R.load("justrl-deepseek-1.5b", ["prompt_format=stripped"])


@pytest.mark.parametrize("preset", ["justrl-deepseek-1.5b", "justrl-nemotron-1.5b"])
def test_paper_presets_carry_the_paper_values(preset: str) -> None:
    recipe = R.load(preset)
    for key, value in PAPER_VALUES.items():
        assert getattr(recipe, key) == value, key
    assert recipe.prompts_per_step // recipe.mini_batch_prompts == 4  # four optimizer updates a step


def test_both_paper_presets_share_every_hyperparameter() -> None:
    a, b = R.load("justrl-deepseek-1.5b").to_dict(), R.load("justrl-nemotron-1.5b").to_dict()
    differing = {k for k in a if a[k] != b[k]}
    assert differing == {"name", "model", "total_steps"}


def test_every_field_has_a_comment() -> None:
    docs = R.field_docs()
    missing = [f.name for f in dataclasses.fields(R.Recipe) if not docs.get(f.name)]
    assert not missing


def test_toy_deviations_are_listed_in_its_comment() -> None:
    import inspect

    source = inspect.getsource(R)
    toy_comment = source[source.index("# The CPU demo."): source.index('"toy": {')]
    unnamed = [key for key in R.diff_from_paper(R.load("toy")) if key not in toy_comment]
    assert not unnamed, f"the toy preset deviates from the paper in {unnamed} without saying so"


def test_yaml_round_trip(tmp_path) -> None:
    recipe = R.load("toy", ["lr=3e-4", "val_data=AIME24,AMC23", "adam_betas=[0.8, 0.9]"])
    path = tmp_path / "r.yaml"
    recipe.save(path)
    again = R.load(str(path))
    assert again == recipe
    assert again.val_data == ["AIME24", "AMC23"] and again.adam_betas == (0.8, 0.9)


@pytest.mark.parametrize(
    "override, key",
    [("lr=oops", "lr"), ("total_steps=1.5", "total_steps"), ("val_before_train=maybe", "val_before_train"),
     ("lrr=1", "lrr"), ("clip_c=0.5", "clip_c"), ("mini_batch_prompts=3", "mini_batch_prompts"),
     ("answer_from=steps", "answer_from")],
)
def test_bad_overrides_name_the_key(override: str, key: str) -> None:
    with pytest.raises(R.RecipeError, match=key):
        R.load("toy", [override])


def test_yaml_with_unknown_key_names_file_and_key(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("lr: 1e-6\nclip_hihg: 0.3\n")
    with pytest.raises(R.RecipeError, match=r"clip_hihg.*bad\.yaml"):
        R.load(str(path))


def test_override_types() -> None:
    recipe = R.load("toy", ["total_steps=7", "temperature=0.5", "use_chat_template=true", "verifier=lenient"])
    assert (recipe.total_steps, recipe.temperature, recipe.use_chat_template, recipe.verifier) == (7, 0.5, True, "lenient")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "justrl.cli", *args], capture_output=True, text=True, timeout=120)


def test_cli_recipe_show_prints_every_value() -> None:
    out = _cli("recipe", "show", "justrl-deepseek-1.5b", "--yaml")
    assert out.returncode == 0, out.stderr
    shown = R.load  # the printed YAML must load back to the same recipe
    import yaml

    data = yaml.safe_load(out.stdout)
    assert R.apply(R.Recipe(), data) == shown("justrl-deepseek-1.5b")
    table = _cli("recipe", "show", "justrl-deepseek-1.5b")
    for key in PAPER_VALUES:
        assert key in table.stdout


def test_cli_recipe_show_rejects_bad_value_naming_key() -> None:
    out = _cli("recipe", "show", "toy", "lr=oops")
    assert out.returncode == 2
    assert "lr" in out.stderr and "oops" in out.stderr


def test_rollout_and_micro_batch_settings_are_checked() -> None:
    from justrl.errors import RecipeError
    from justrl.recipe import load

    assert load("toy", {"rollout_backend": "hf-static", "micro_batch_tokens": 4096}).micro_batch_tokens == 4096
    for bad in ({"rollout_backend": "sglang"}, {"micro_batch_tokens": -1}, {"vllm_gpu_memory_utilization": 0}):
        with pytest.raises(RecipeError, match=next(iter(bad))):
            load("toy", bad)


def test_rollout_batch_rows_spend_the_kv_budget_at_full_context() -> None:
    paper = R.load(None)
    assert paper.rollout_batch_rows() == 64  # 2**20 tokens at 1k + 15k: the rows the trainer always used
    toy = R.load("toy")
    assert toy.rollout_batch_rows() == toy.prompts_per_step * toy.rollouts_per_prompt  # one batch a step
    assert R.load(None, ["rollout_batch_tokens=1"]).rollout_batch_rows() == 1
    with pytest.raises(R.RecipeError, match="rollout_batch_tokens must be > 0"):
        R.load(None, ["rollout_batch_tokens=0"])
