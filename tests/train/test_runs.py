"""The run folder: refusing the wrong one, checkpoints that are whole or ignored, the summary."""

from __future__ import annotations

import json

import pytest

from justrl import recipe as R
from justrl.errors import TrainingError
from justrl.train import runs


def test_foreign_or_occupied_run_directory_is_refused(tiny_recipe, tmp_path) -> None:
    recipe = tiny_recipe(total_steps=1, val_before_train=False)
    run_dir, _, _ = runs.open_run_dir(recipe, tmp_path, resume=False)
    assert not (tmp_path / "recipe.yaml").exists()  # not a run until start-up has succeeded
    runs.record_recipe(run_dir, recipe)  # a run started there
    with pytest.raises(TrainingError, match=r"different recipe \(lr: 0\.001 in the run directory, 0\.01 now"):
        runs.open_run_dir(R.apply(recipe, {"lr": 1e-2}), tmp_path, resume=True)
    with pytest.raises(TrainingError, match="already holds a run; pass --resume"):
        runs.open_run_dir(recipe, tmp_path, resume=False)
    with pytest.raises(TrainingError, match="no recipe.yaml"):
        runs.open_run_dir(recipe, tmp_path / "elsewhere", resume=True)
    assert runs.open_run_dir(R.apply(recipe, {"total_steps": 9}), tmp_path, resume=True)[1].total_steps == 9


def test_native_engine_refuses_kl(tiny_recipe, tmp_path) -> None:
    with pytest.raises(TrainingError, match="kl_coef=0.1.*no reference model"):
        runs.open_run_dir(tiny_recipe(kl_coef=0.1), tmp_path / "run", resume=False)
    assert not (tmp_path / "run").exists()  # refused before writing anything


def test_half_written_checkpoints_are_never_picked(tmp_path) -> None:
    (tmp_path / "checkpoints" / "step_4").mkdir(parents=True)
    (tmp_path / "checkpoints" / "step_4" / runs.COMPLETE_MARKER).write_text("step 4\n")
    (tmp_path / "checkpoints" / "step_6").mkdir()  # renamed but never marked: impossible, but ignored
    (tmp_path / "checkpoints" / ".tmp-step_8-123").mkdir()  # killed while writing
    assert runs.latest_checkpoint(tmp_path) == tmp_path / "checkpoints" / "step_4"
    assert not (tmp_path / "checkpoints" / ".tmp-step_8-123").exists()


def test_summary_is_written_whole_and_told_in_a_few_lines(tiny_recipe, tmp_path) -> None:
    state = runs.TrainState(step=3, acc_before=0.25, acc_last=0.5, wall_seconds=12.34,
                            entropy=[0.9, 0.4, 0.6], score=[-0.5, 0.0, 0.25])
    result = runs.write_summary(tmp_path, tiny_recipe(), state, "finished")
    assert json.loads((tmp_path / "summary.json").read_text()) == {
        "run_dir": str(tmp_path), "steps": 3, "stopped": "finished", "acc_before": 0.25, "acc_after": 0.5,
        "wall_seconds": 12.3, "entropy_first": 0.9, "entropy_last": 0.6, "entropy_min": 0.4,
        "score_first": -0.5, "score_last": 0.25, "stop_signal": None}
    assert result.acc_after == 0.5 and not list(tmp_path.glob(".*tmp"))
    text = runs.summary_text(result, tiny_recipe())
    assert "25.0% -> 50.0% (+25.0 points)" in text and "final policy: final/" in text


# --- checkpoints damaged after they were marked complete (issue 12) -------------------------------

def _checkpoint(run_dir, step: int):
    import torch
    from safetensors.torch import save_file

    path = run_dir / "checkpoints" / f"step_{step}"
    path.mkdir(parents=True)
    save_file({"w": torch.zeros(64, 64)}, str(path / "model.safetensors"))
    torch.save({"optimizer": {}}, path / "trainer.pt")
    (path / "train_state.json").write_text(json.dumps({"step": step}))
    (path / runs.COMPLETE_MARKER).write_text(f"step {step}\n")
    return path


def _truncate(path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize(("damage", "named"), [
    (lambda p: _truncate(p / "model.safetensors"), "model.safetensors does not load"),
    (lambda p: (p / "trainer.pt").unlink(), "trainer.pt is missing"),
    (lambda p: _truncate(p / "trainer.pt"), "trainer.pt does not load"),
    (lambda p: _truncate(p / "train_state.json"), "train_state.json does not parse"),
])
def test_a_damaged_newest_checkpoint_falls_back_to_one_that_loads(tmp_path, caplog, damage, named) -> None:
    older, newest = _checkpoint(tmp_path, 2), _checkpoint(tmp_path, 4)
    assert runs.checkpoint_damage(newest) is None and runs.resumable_checkpoint(tmp_path) == newest
    damage(newest)
    assert named in runs.checkpoint_damage(newest)
    assert runs.resumable_checkpoint(tmp_path) == older
    assert f"step_4 is damaged ({named}" in caplog.text
    damage(older)
    with pytest.raises(TrainingError, match="no checkpoint loads"):
        runs.resumable_checkpoint(tmp_path)


def test_an_evaluation_folder_is_not_a_run_folder(tiny_recipe, tmp_path) -> None:
    from justrl.errors import ConfigError

    (tmp_path / "eval_config.json").write_text("{}")
    with pytest.raises(ConfigError, match="an evaluation's folder"):
        runs.open_run_dir(tiny_recipe(), tmp_path, resume=False)
