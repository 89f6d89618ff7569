"""Where a verl run's files go: absolute paths, the default data files, refused cluster shapes."""

from __future__ import annotations

from pathlib import Path

import pytest

from justrl import recipe as R
from justrl.errors import VerlConfigError
from justrl.verl_engine import plan as P


def test_plan_paths_are_absolute_and_inside_the_run(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    recipe = R.load("justrl-deepseek-1.5b", ["val_data=AIME24,/data/MATH-500/test.parquet"])
    plan = P.make_plan(recipe, "run", train_files=["t.parquet", "hdfs://x/t.parquet"])
    run = tmp_path / "run"
    assert plan.run_dir == run
    assert plan.train_files == (str(tmp_path / "t.parquet"), "hdfs://x/t.parquet")
    assert plan.val_files == (str(run / "data/val/AIME24.parquet"), str(run / "data/val/MATH-500.parquet"))
    assert (plan.checkpoint_dir, plan.tensorboard_dir, plan.metrics_file, plan.validation_dir, plan.log_file) == (
        run / "checkpoints", run / "tensorboard", run / "verl_metrics.jsonl", run / "validation", run / "verl.log")


def test_default_files(tmp_path) -> None:
    assert P.default_train_file(tmp_path) == tmp_path / "data" / "train.parquet"
    assert P.default_val_file(tmp_path, "x/AMC 23/train.parquet").name == "AMC_23.parquet"
    assert P.default_val_file(tmp_path, "aime.jsonl").name == "aime.parquet"
    assert P.default_run_dir(R.load("toy")).parent == Path("runs")


@pytest.mark.parametrize(("nnodes", "gpus_per_node"), [(0, 8), (1, 0)])
def test_empty_clusters_are_refused(tmp_path, nnodes: int, gpus_per_node: int) -> None:
    with pytest.raises(VerlConfigError, match="must be >= 1"):
        P.make_plan(R.load("justrl-deepseek-1.5b"), tmp_path, nnodes=nnodes, gpus_per_node=gpus_per_node)


def test_two_validation_sources_exporting_to_one_file_are_refused(tmp_path) -> None:
    recipe = R.load("justrl-deepseek-1.5b", ["val_data=a/AIME24/test.parquet,b/AIME24/test.parquet"])
    with pytest.raises(VerlConfigError, match="same file"):
        P.make_plan(recipe, tmp_path)


def test_symbolic_plan_names_the_default_files() -> None:
    recipe = R.load("justrl-deepseek-1.5b")
    plan = P.symbolic_plan(recipe)
    assert plan.train_files == ("RUN/data/train.parquet",)
    assert len(plan.val_files) == len(recipe.val_data) and all(f.startswith("RUN/data/val/") for f in plan.val_files)
