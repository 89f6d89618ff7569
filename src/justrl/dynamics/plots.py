"""The paper's three training curves — policy entropy, mean reward, response length — for one run
or several (an ablation next to its baseline).

Reads a native run's ``metrics.jsonl`` or a verl run's TensorBoard event files: both use verl's
metric names, so one plotting path serves both engines.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from justrl.errors import BackendUnavailable, ConfigError, DataError

VERL_METRICS_FILE = "verl_metrics.jsonl"
"""Where ``justrl train --engine verl`` points verl's file logger (VERL_FILE_LOGGER_PATH), in the run folder."""

# (metric key, panel title, y label) — the three curves the paper tells its story with, plus
# validation accuracy when the run logged it.
CURVES: tuple[tuple[str, str, str], ...] = (
    ("actor/entropy", "Policy entropy", "nats / token"),
    ("critic/score/mean", "Mean reward", "reward"),
    ("response_length/mean", "Response length", "tokens"),
    ("val/acc", "Validation accuracy", "accuracy"),
)


@dataclass
class RunCurves:
    """The logged series of one run: metric name -> (steps, values)."""

    label: str
    series: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)

    def get(self, key: str) -> tuple[list[int], list[float]]:
        return self.series.get(key, ([], []))


def read_metrics_jsonl(path: Path) -> dict[str, tuple[list[int], list[float]]]:
    """Series from a ``metrics.jsonl`` (one JSON object a step with a ``step`` field).

    A torn last line (a run killed mid-write) is skipped, not fatal; a file that is not text is a
    :class:`DataError`. Non-finite values (NaN, inf) are kept as logged, so a replay of the health
    alarms sees what the trainer saw; :func:`plot_runs` leaves them out of the curves.
    """
    series: dict[str, tuple[list[int], list[float]]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a metrics file (not UTF-8 text)") from exc
    for line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        step = row.get("step") if isinstance(row, dict) else None
        if not isinstance(step, (int, float)) or isinstance(step, bool) or not math.isfinite(step):
            continue
        if isinstance(row.get("data"), dict):  # verl's file logger: {"step": N, "data": {...}}
            row = {**row["data"], "step": step}
        for key, value in row.items():
            if key == "step" or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            steps, values = series.setdefault(key, ([], []))
            steps.append(int(step))
            values.append(float(value))
    return series


def read_tensorboard(directory: Path) -> dict[str, tuple[list[int], list[float]]]:
    """Scalar series from TensorBoard event files below ``directory`` (verl's ``tensorboard`` logger)."""
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError as exc:
        raise BackendUnavailable(f"{directory}: reading TensorBoard logs needs `pip install tensorboard`") from exc

    series: dict[str, tuple[list[int], list[float]]] = {}
    for events in sorted(directory.rglob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})
        accumulator.Reload()
        for tag in accumulator.Tags().get("scalars", []):
            steps, values = series.setdefault(tag, ([], []))
            for event in accumulator.Scalars(tag):
                steps.append(int(event.step))
                values.append(float(event.value))
    return series


def load_run(path: str | Path, label: str | None = None) -> RunCurves:
    """A run's curves from its directory (``metrics.jsonl`` or TensorBoard events) or a JSONL file
    (ours, or verl's ``file`` logger output). A path that holds no logged metric (missing, an empty
    ``metrics.jsonl``, a folder without logs) is a :class:`DataError`: nothing to plot or judge."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such run folder or metrics file")
    if path.is_file():
        source, series = path, read_metrics_jsonl(path)
    elif (path / "metrics.jsonl").is_file():
        source, series = path / "metrics.jsonl", read_metrics_jsonl(path / "metrics.jsonl")
    elif (path / VERL_METRICS_FILE).is_file():  # a `justrl train --engine verl` run: verl's file logger
        source, series = path / VERL_METRICS_FILE, read_metrics_jsonl(path / VERL_METRICS_FILE)
    elif any(path.rglob("events.out.tfevents.*")):
        source, series = path, read_tensorboard(path)
    else:
        raise DataError(f"{path}: no metrics.jsonl, {VERL_METRICS_FILE} or TensorBoard event files")
    if not series:
        raise DataError(f"{source}: no step metrics logged yet (empty, or not a metrics file)")
    _add_validation_mean(series)
    return RunCurves(label or (path.name if path.is_dir() else path.parent.name), series)


def _add_validation_mean(series: dict[str, tuple[list[int], list[float]]]) -> None:
    """``val/acc``: the native engine logs it; for verl, average its per-benchmark validation scores."""
    if "val/acc" in series:
        return
    val_keys = [k for k in series if k.startswith("val-core/") and "/acc/mean@" in k] or [
        k for k in series if k.startswith("val/") and "acc" in k
    ]
    if not val_keys:
        return
    by_step: dict[int, list[float]] = {}
    for key in val_keys:
        for step, value in zip(*series[key]):
            by_step.setdefault(step, []).append(value)
    steps = sorted(by_step)
    series["val/acc"] = (steps, [sum(by_step[s]) / len(by_step[s]) for s in steps])


def check_smoothing(weight: float) -> None:
    """EMA weights outside [0, 1) do not smooth: 1 draws a flat line, above 1 diverges."""
    if not 0 <= weight < 1:
        raise ConfigError(f"smoothing weight must be in [0, 1) (got {weight}); 0 draws the curves as logged")


def smooth(values: Sequence[float], weight: float) -> list[float]:
    """Exponential moving average, TensorBoard-style, debiased at the start."""
    check_smoothing(weight)
    if weight == 0:
        return list(values)
    out, last, norm = [], 0.0, 0.0
    for value in values:
        last = weight * last + (1 - weight) * value
        norm = weight * norm + (1 - weight)
        out.append(last / norm)
    return out


def plot_runs(runs: Sequence[RunCurves], out: str | Path, *, smoothing: float = 0.0, title: str | None = None) -> Path:
    """Draw the curves of ``runs`` side by side into one PNG; returns its path."""
    check_smoothing(smoothing)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [c for c in CURVES if any(math.isfinite(v) for run in runs for v in run.get(c[0])[1])]
    if not panels:
        raise DataError(f"{', '.join(r.label for r in runs)}: none of the runs logged entropy, reward, "
                        "response length or validation accuracy")
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, (key, panel_title, ylabel) in zip(axes[0], panels):
        # Validation is logged every few steps only: smoothing would drag its last value far from
        # the real one, so it is drawn as logged, with markers.
        weight = 0.0 if key == "val/acc" else smoothing
        for run in runs:
            steps, values = run.get(key)
            drawn = [(s, v) for s, v in zip(steps, values) if math.isfinite(v)]  # a NaN would poison the EMA
            steps, values = [s for s, _ in drawn], [v for _, v in drawn]
            if steps:
                line, = ax.plot(steps, smooth(values, weight), label=run.label, linewidth=1.6,
                                marker="o" if key == "val/acc" else None, markersize=3)
                if weight > 0:
                    ax.plot(steps, values, color=line.get_color(), alpha=0.25, linewidth=0.8)
        ax.set_title(panel_title)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    if len(runs) > 1 or runs[0].label:
        axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
