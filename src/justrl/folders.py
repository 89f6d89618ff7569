"""Which command a folder belongs to: a training run's or an evaluation's.

Both write ``summary.json`` (and more) at the top of their folder, so ``train --run-dir`` on an
evaluation folder, or ``eval --out`` on a run folder, would overwrite the other's files. Each kind
is recognised by the file its command writes first, and each command refuses the other's folder.
"""

from __future__ import annotations

from pathlib import Path

from justrl.errors import ConfigError

EVAL_MARKERS = ("eval_config.json",)
"""Files only an evaluation folder has."""
RUN_MARKERS = ("recipe.yaml", "train_state.json", "checkpoints", "metrics.jsonl")
"""Files or folders only a training run's folder has."""


def _found(folder: Path, markers: tuple[str, ...]) -> str | None:
    return next((m for m in markers if (folder / m).exists()), None)


def refuse_run_folder(folder: str | Path) -> None:
    """Refuse ``folder`` as an evaluation's output when it holds a training run."""
    marker = _found(Path(folder), RUN_MARKERS)
    if marker:
        raise ConfigError(f"{folder} is a training run's folder (it has {marker}); "
                               "evaluate into another --out (e.g. the default runs/eval/<run name>-final)")


def refuse_eval_folder(folder: str | Path) -> None:
    """Refuse ``folder`` as a training run's folder when it holds an evaluation."""
    marker = _found(Path(folder), EVAL_MARKERS)
    if marker:
        raise ConfigError(f"{folder} is an evaluation's folder (it has {marker}); "
                               "give train another --run-dir")
