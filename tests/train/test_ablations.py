"""Ablations: variants are recipe changes; the runner trains each and writes a comparison."""

from __future__ import annotations

import json

import pytest

from justrl.recipe import RecipeError, load
from justrl.train import ablations


def test_length_penalty_scales_the_papers_window_to_the_budget() -> None:
    paper = ablations.variant_recipe(load("justrl-deepseek-1.5b"), "length-penalty")
    assert paper.overlong_buffer_tokens == 4096 and paper.overlong_penalty_factor == 1.0
    toy = ablations.variant_recipe(load("toy"), "length-penalty")
    assert toy.overlong_buffer_tokens == round(toy.max_response_tokens * 4096 / 15360)
    assert toy.name == "toy+length-penalty"


def test_lenient_verifier_and_baseline() -> None:
    base = load("justrl-deepseek-1.5b")
    assert ablations.variant_recipe(base, "lenient-verifier").verifier == "lenient"
    assert ablations.variant_recipe(base, "baseline") is base
    with pytest.raises(RecipeError, match="unknown ablation 'nope'"):
        ablations.variant_recipe(base, "nope")


def test_runner_trains_each_variant_and_reports(tmp_path) -> None:
    base = load("toy", ["total_steps=2", "prompts_per_step=8", "mini_batch_prompts=2", "val_every=2",
                        "save_every=2", "val_samples=1"])
    rows = ablations.run(base, ["length-penalty"], tmp_path, console=False)
    assert [r.variant for r in rows] == ["baseline", "length-penalty"]
    for row in rows:
        summary = json.loads((tmp_path / row.variant / "summary.json").read_text())
        assert summary["stopped"] == "finished" and summary["steps"] == 2
        assert row.acc_after is not None and row.score_last is not None
    recipe_lp = (tmp_path / "length-penalty" / "recipe.yaml").read_text()
    assert "overlong_buffer_tokens: 6" in recipe_lp
    report = (tmp_path / "ablation.md").read_text()
    assert "| length-penalty |" in report and "| baseline |" in report
    assert (tmp_path / "ablation.png").read_bytes()[:4] == b"\x89PNG"
    # A second call finds the finished runs and does not train again.
    mtime = (tmp_path / "baseline" / "summary.json").stat().st_mtime_ns
    ablations.run(base, ["length-penalty"], tmp_path, console=False)
    assert (tmp_path / "baseline" / "summary.json").stat().st_mtime_ns == mtime
