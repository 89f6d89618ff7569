"""Where a verl run's files go, and the cluster it runs on: :class:`VerlPlan`.

Everything a verl launch needs besides the recipe. Paths are absolute, since Ray workers do not
share the launcher's working directory; the run directory must be on a file system every node sees.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from justrl.errors import VerlConfigError
from justrl.recipe import Recipe


def _in_run(name: str, doc: str) -> property:
    """A read-only attribute: the path ``name`` inside the plan's run directory."""
    return property(lambda plan: plan.run_dir / name, doc=doc)


@dataclass(frozen=True)
class VerlPlan:
    """Everything besides the recipe that a verl launch needs: cluster shape and file locations."""

    run_dir: Path
    nnodes: int = 1
    gpus_per_node: int = 8
    train_files: tuple[str, ...] = ()
    """verl-format parquet files to train on; default: ``RUN/data/train.parquet`` (exported)."""
    val_files: tuple[str, ...] = ()
    """verl-format validation files; default: ``RUN/data/val/<NAME>.parquet`` per ``val_data``."""
    data_dir: str | None = None
    """Folder of the paper's benchmarks (``NAME/test.parquet``) for exporting ``val_data`` by name."""
    extra: tuple[str, ...] = ()
    """Raw verl overrides from the command line (``actor_rollout_ref.rollout.gpu_memory_utilization=0.7``)."""
    cpu: bool = False
    """verl on this machine's CPU (:mod:`justrl.verl_engine.cpu_platform`): one worker, gloo, vLLM's CPU build."""

    checkpoint_dir = _in_run("checkpoints", "verl's checkpoints (trainer.default_local_dir)")
    tensorboard_dir = _in_run("tensorboard", "verl's TensorBoard logger writes here (TENSORBOARD_DIR)")
    metrics_file = _in_run("verl_metrics.jsonl", "verl's file logger, one JSON line per step")
    validation_dir = _in_run("validation", "validation generations (trainer.validation_data_dir)")
    log_file = _in_run("verl.log", "the launch script's output, appended")


def default_train_file(run_dir: Path) -> Path:
    return run_dir / "data" / "train.parquet"


def default_val_file(run_dir: Path, source: str) -> Path:
    """``RUN/data/val/<NAME>.parquet``, NAME from a benchmark name or the source file's folder/stem."""
    path = Path(source)
    stem = path.parent.name if path.stem in ("test", "train") and path.suffix else path.stem or path.name
    return run_dir / "data" / "val" / (re.sub(r"[^A-Za-z0-9._-]+", "_", stem) + ".parquet")


def default_run_dir(recipe: Recipe) -> Path:
    """``runs/<name>-verl-<date>-<time>``, like the native trainer's default."""
    return Path("runs") / f"{recipe.name}-verl-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def _absolute(path: str) -> str:
    """Local paths made absolute; remote ones (``hdfs://...``, which verl copies in) kept as they are."""
    return path if "://" in path else str(Path(path).expanduser().resolve())


def make_plan(recipe: Recipe, run_dir: str | Path, *, nnodes: int = 1, gpus_per_node: int = 8,
              train_files: Sequence[str] | None = None, val_files: Sequence[str] | None = None,
              data_dir: str | None = None, extra: Sequence[str] = (), cpu: bool = False) -> VerlPlan:
    """A plan with absolute paths (Ray workers do not share the launcher's working directory).

    ``cpu``: verl on this machine's CPU, as one logical GPU (``nnodes`` and ``gpus_per_node`` are 1).
    """
    run = Path(run_dir).expanduser().resolve()
    if cpu:
        nnodes, gpus_per_node = 1, 1
    if nnodes < 1 or gpus_per_node < 1:
        raise VerlConfigError(f"--nnodes and --gpus-per-node must be >= 1 (got {nnodes}, {gpus_per_node})")
    train = tuple(_absolute(f) for f in train_files or ()) or (str(default_train_file(run)),)
    val = tuple(_absolute(f) for f in val_files or ()) or tuple(
        str(default_val_file(run, name)) for name in recipe.val_data
    )
    if len(set(val)) != len(val):
        raise VerlConfigError(f"val_data names two sources that export to the same file: {list(val)}")
    return VerlPlan(run, nnodes, gpus_per_node, train, val, data_dir, tuple(extra), cpu)


def symbolic_plan(recipe: Recipe) -> VerlPlan:
    """A plan under the symbolic run directory ``RUN``, for showing the mapping without a run."""
    run = Path("RUN")
    return VerlPlan(run, train_files=(str(default_train_file(run)),),
                    val_files=tuple(str(default_val_file(run, name)) for name in recipe.val_data))
