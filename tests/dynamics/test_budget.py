"""Compute accounting: model shape from a config, FLOPs per step, measured token counts."""

from __future__ import annotations

import json

import pytest
from transformers import Qwen2Config

from justrl.cli import main
from justrl.dynamics import budget
from justrl.errors import ConfigError, DataError, ModelLoadError
from justrl.recipe import load


def test_shape_of_qwen2_1_5b_config() -> None:
    config = Qwen2Config(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                         num_attention_heads=12, num_key_value_heads=2)
    shape = budget.ModelShape.from_config(config)
    assert shape.params == pytest.approx(budget.QWEN2_1_5B.params, rel=0.01)


def test_step_flops_follow_the_6n_rule_without_attention() -> None:
    shape = budget.ModelShape(params=1e9, n_layers=0, d_model=0)  # attention term off
    recipe = load("justrl-deepseek-1.5b")
    step = budget.step_budget(recipe, shape, mean_prompt_tokens=100, mean_response_tokens=900)
    tokens = 256 * 8 * 1000
    assert step.generation_flops == pytest.approx(2e9 * tokens)
    assert step.logprob_flops == pytest.approx(2e9 * tokens)
    assert step.update_flops == pytest.approx(6e9 * tokens)
    assert step.total_flops == pytest.approx(10e9 * tokens)
    totals = budget.run_budget(recipe, shape, 100, 900, steps=10)
    assert totals["total_flops"] == pytest.approx(10 * step.total_flops)


def test_measured_tokens_from_run(tmp_path) -> None:
    rows = [{"step": 1, "response_length/mean": 10.0, "prompt_length/mean": 4.0},
            {"step": 2, "response_length/mean": 20.0, "prompt_length/mean": 6.0}]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n{torn")
    assert budget.measured_tokens(tmp_path) == (2, 5.0, 15.0)
    assert main(["budget", "--recipe", "toy", "--run-dir", str(tmp_path)]) == 0



def test_json_output_matches_the_estimate(tmp_path, capsys) -> None:
    assert main(["budget", "--recipe", "toy", "--json", "--mfu", "0.5", "--response-tokens", "20"]) == 0
    shown = json.loads(capsys.readouterr().out)
    expected = budget.estimate(load("toy"), mfu=0.5, response_tokens=20)
    assert shown.pop("assumptions") == expected.pop("assumptions")  # words: approx compares numbers only
    assert shown == pytest.approx(expected) and shown["tokens_source"] == "assumed"
    assert shown["gpu_hours"] == pytest.approx(shown["total_flops"] / (989e12 * 0.5) / 3600)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"mfu": 0.0}, r"mfu\) must be in \(0, 1\]"),
    ({"mfu": 1.5}, r"mfu\) must be in \(0, 1\]"),
    ({"prompt_tokens": -1.0}, "mean prompt tokens must be a positive number"),
    ({"response_tokens": 0.0}, "mean response tokens must be a positive number"),
    ({"gpu_tflops": float("inf")}, "GPU peak TFLOP/s must be a positive number"),
])
def test_out_of_range_assumptions_are_refused(kwargs, message) -> None:
    with pytest.raises(ConfigError, match=message):
        budget.estimate(load("toy"), **kwargs)


def test_bad_run_dir_and_model_are_one_line_errors(tmp_path) -> None:
    with pytest.raises(DataError, match="no such run folder"):
        budget.estimate(load("toy"), run_dir=tmp_path / "gone")
    with pytest.raises(DataError, match="no metrics.jsonl"):
        budget.estimate(load("toy"), run_dir=tmp_path)
    (tmp_path / "metrics.jsonl").write_text("")
    with pytest.raises(DataError, match="no step with response_length/mean"):
        budget.estimate(load("toy"), run_dir=tmp_path)
    with pytest.raises(ModelLoadError, match="no such model folder"):
        budget.model_shape(str(tmp_path / "no-model"))
    with pytest.raises(ModelLoadError, match="cannot read a model config"):
        budget.model_shape(str(tmp_path))


def test_paper_token_budget_and_calibrated_gpu_hours() -> None:
    recipe = load("justrl-deepseek-1.5b")
    assert budget.token_budget(recipe) == 4000 * 256 * 8 * 16384 == pytest.approx(1.342e11, rel=1e-3)
    assert budget.calibrated_gpu_hours(recipe) == pytest.approx(32 * 15 * 24)  # the paper's own run
    nemotron = load("justrl-nemotron-1.5b")
    assert budget.calibrated_gpu_hours(nemotron) == pytest.approx(32 * 15 * 24 * 3000 / 4000)
    half_context = load("justrl-deepseek-1.5b", ["max_response_tokens=7168"])
    assert budget.token_budget(half_context) == pytest.approx(budget.token_budget(recipe) / 2)
    est = budget.estimate(recipe)
    assert est["implied_mfu_on_paper_hardware"] == pytest.approx(
        est["total_flops"] / (32 * 15 * 24 * 3600 * 312e12))
    assert len(est["assumptions"]) >= 6


def test_cli_budget_prints_the_papers_accounting(capsys) -> None:
    assert main(["budget", "--recipe", "justrl-deepseek-1.5b"]) == 0
    out = capsys.readouterr().out
    assert "1.34e+11 (paper: ~1.4e+11)" in out
    assert "11,520" in out and "A800" in out and "assumptions:" in out
    assert main(["budget", "--recipe", "justrl-deepseek-1.5b", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["token_budget"] == pytest.approx(1.342e11, rel=1e-3) and data["paper_token_budget"] == 1.4e11


@pytest.mark.parametrize("preset", ["justrl-deepseek-1.5b", "justrl-nemotron-1.5b"])
def test_the_paper_presets_fit_one_80_gb_gpu_by_the_estimate(preset) -> None:
    from justrl.dynamics.budget import QWEN2_1_5B_MEMORY, peak_memory_estimate

    recipe = load(preset)
    assert recipe.gradient_checkpointing and recipe.micro_batch_tokens == 32768
    est = peak_memory_estimate(recipe)
    # 64 rows x (1,024 + 15,360 tokens) x 28 layers x K and V x 2 heads x 128 x 2 bytes
    assert est.kv_cache_gib * 2**30 == 64 * 16384 * 28 * 2 * 2 * 128 * 2
    assert est.states_gib * 2**30 == pytest.approx(12 * QWEN2_1_5B_MEMORY.params)
    assert est.peak_gib == max(est.rollout_gib, est.update_gib) < 70  # headroom for what it leaves out
    # the old defaults (8 full rows a pass, no recomputation) do not fit
    old = peak_memory_estimate(load(preset, ["gradient_checkpointing=false", "micro_batch_tokens=0"]))
    assert old.update_gib > 80 and old.activations_gib > 10 * est.activations_gib


def test_the_estimate_counts_the_trainers_logit_chunks() -> None:
    import inspect

    from justrl.dynamics.budget import peak_memory_estimate
    from justrl.train.logprobs import LOGITS_CHUNK_ELEMENTS

    default = inspect.signature(peak_memory_estimate).parameters["logits_chunk_elements"].default
    assert default == LOGITS_CHUNK_ELEMENTS
