"""Step metrics: their names, where they go (JSONL, TensorBoard, console), and health alarms.

A step's metrics are a flat ``dict[str, float]`` keyed by verl's names where verl has one, so runs
of the native engine and of verl plot and compare with the same code. :data:`STEP_METRICS` lists
the names every training step carries (validation adds ``val-core/<source>/acc/mean@<n>``).

Sinks take ``(step, metrics)``: JSONL, TensorBoard, the console, Weights & Biases, MLflow and
trackio (``loggers`` names them). Each is a thin layer over that library's own client (nothing of
theirs is re-implemented): what justrl adds is the run folder's conventions -- where each writes,
and the tracker's run id kept in the run folder so that a resumed run continues the same tracker
run. (accelerate's trackers were weighed and not taken: accelerate is not a justrl dependency, and
they neither keep run ids across a resume nor write where the run folder expects.) :class:`HealthMonitor` turns a stream of steps into warnings a human should see
(entropy collapse, a reward that no longer moves, non-finite values); :func:`check_health` replays
it over a run's logs (``justrl health``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any, Protocol

from justrl import io, logs
from justrl.errors import BackendUnavailable, ConfigError, DataError

log = logs.get(__name__)

Metrics = dict[str, float]

STEP_METRICS: dict[str, str] = {
    "step": "training step (1-based; 0 holds the validation before training)",
    "critic/score/mean": "mean reward of the step's rollouts (verl name; +1/-1, plus any overlong penalty)",
    "acc/mean": "fraction of the step's rollouts the verifier accepted",
    "actor/entropy": "mean token entropy of the sampling policy over response tokens (at the rollout temperature)",
    "response_length/mean": "mean response length in tokens",
    "response_length/max": "longest response in tokens",
    "response_length/clip_ratio": "fraction of responses cut at the max response length (still trained on)",
    "actor/pg_loss": "policy-gradient loss, mean over the step's optimizer updates",
    "actor/pg_clipfrac": "fraction of tokens where PPO clipping was active",
    "actor/pg_clipfrac_lower": "fraction of tokens where the dual-clip bound was active",
    "actor/ppo_kl": "k1 estimate of KL(sampling policy || updated policy), mean over updates",
    "actor/grad_norm": "global gradient norm before clipping, mean over updates",
    "actor/lr": "learning rate used by this step's updates",
    "rollout/logprob_diff": "mean |sampler log-prob - trainer log-prob| of the response tokens, before any update",
    "tokens/total": "prompt + response tokens of all rollouts so far (cumulative)",
    "timing_s/step": "wall seconds of the step, validation included (checkpoint writing is not)",
}
"""Every training step's record carries at least these keys."""


class Sink(Protocol):
    def log(self, step: int, metrics: Metrics) -> None: ...

    def close(self) -> None: ...


class JsonlSink:
    """One JSON object per line (``{"step": N, ...}``), flushed after every step."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file = self.path.open("a", encoding="utf-8")

    def log(self, step: int, metrics: Metrics) -> None:
        self._file.write(json.dumps({"step": step, **metrics}, allow_nan=True) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The records of a metrics file; a torn last line (a killed writer) is ignored."""
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def read_jsonl_strict(path: str | Path) -> list[dict[str, Any]]:
    """The records of a metrics file that a run continues: only a torn *last* line (a killed
    writer) is dropped; a line in the middle that does not parse, or one that is not an object,
    is a :class:`DataError` naming the file and line (something other than the trainer damaged the
    file, and resuming would delete the evidence: the user decides what to keep)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                continue
            raise DataError(f"{path}:{number}: not a JSON line (a torn or edited record in the middle of "
                            "the file); fix or delete that line, then resume") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}:{number}: not a JSON object ({type(record).__name__}); fix or delete "
                            "that line, then resume")
        if not isinstance(record.get("step", 0), int) or isinstance(record.get("step"), bool):
            raise DataError(f"{path}:{number}: field 'step' must be an integer (got {record['step']!r})")
        records.append(record)
    return records


def truncate_jsonl(path: str | Path, last_step: int) -> None:
    """Keep only the records with ``step <= last_step`` (resuming from that step's checkpoint);
    refuses a damaged file as :func:`read_jsonl_strict` does."""
    path = Path(path)
    if not path.exists():
        return
    kept = [r for r in read_jsonl_strict(path) if r.get("step", 0) <= last_step]
    io.atomic_write_text(path, "".join(json.dumps(r, allow_nan=True) + "\n" for r in kept))


@contextlib.contextmanager
def timer(timing: dict[str, float], key: str) -> Iterator[None]:
    """``timing[key]``: wall seconds of the block (a step's ``timing_s/<key>`` metric)."""
    start = time.perf_counter()
    yield
    timing[key] = time.perf_counter() - start


class TensorBoardSink:
    """Scalars to a TensorBoard event file (needs the ``tensorboard`` package)."""

    def __init__(self, log_dir: str | Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir=str(log_dir))

    def log(self, step: int, metrics: Metrics) -> None:
        for key, value in metrics.items():
            self._writer.add_scalar(key, value, step)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class WandbSink:
    """Metrics to Weights & Biases (``pip install wandb``), into the project ``$WANDB_PROJECT`` (default
    ``justrl``). ``WANDB_MODE=offline`` writes the run below ``RUN/wandb`` for a later ``wandb sync``.

    The W&B run id is kept in ``RUN/wandb_run_id``: a resumed run continues the same W&B run rather
    than starting a second one with overlapping steps.
    """

    ID_FILE = "wandb_run_id"

    def __init__(self, run_dir: str | Path, *, name: str | None = None,
                 config: dict[str, Any] | None = None) -> None:
        try:
            import wandb
        except ImportError as exc:
            raise BackendUnavailable("loggers=wandb needs the wandb package (pip install wandb)") from exc
        run_dir = Path(run_dir)
        id_file = run_dir / self.ID_FILE
        run_id = id_file.read_text().strip() if id_file.is_file() else secrets.token_hex(6)
        self._run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "justrl"), name=name or run_dir.name, id=run_id,
            resume="allow", dir=str(run_dir), config=config or {}, reinit="create_new",
            settings=wandb.Settings(console="off", silent=True),
        )
        io.atomic_write_text(id_file, run_id)

    def log(self, step: int, metrics: Metrics) -> None:
        self._run.log(dict(metrics), step=step)

    def close(self) -> None:
        self._run.finish()


class _KeptRunId:
    """A tracker run id kept in ``RUN/<file>``: made once, read back on resume."""

    @staticmethod
    def load(run_dir: Path, file: str) -> tuple[str, bool]:
        path = run_dir / file
        if path.is_file():
            return path.read_text().strip(), True
        return secrets.token_hex(6), False

    @staticmethod
    def save(run_dir: Path, file: str, run_id: str) -> None:
        io.atomic_write_text(run_dir / file, run_id)


def mlflow_key(name: str) -> str:
    """A metric name MLflow accepts (letters, digits, ``_ - . / space``): ``mean@4`` -> ``mean_at_4``."""
    import re

    return re.sub(r"[^\w\-. /]", "_", name.replace("@", "_at_"))


class MlflowSink:
    """Metrics to MLflow (``pip install mlflow``): the tracking server in ``$MLFLOW_TRACKING_URI``, else
    a local SQLite store, ``RUN/mlflow.db`` (``mlflow ui --backend-store-uri sqlite:///RUN/mlflow.db``);
    the experiment ``$MLFLOW_EXPERIMENT_NAME`` (default ``justrl``). The run id is kept in
    ``RUN/mlflow_run_id``: a resumed run logs into the same MLflow run. Names MLflow refuses
    (``@``) are spelled with ``_at_``.
    """

    ID_FILE = "mlflow_run_id"

    def __init__(self, run_dir: str | Path, *, name: str | None = None,
                 config: dict[str, Any] | None = None) -> None:
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as exc:
            raise BackendUnavailable("loggers=mlflow needs the mlflow package (pip install mlflow)") from exc
        run_dir = Path(run_dir)
        uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(run_dir / 'mlflow.db').resolve()}"
        self._client = MlflowClient(tracking_uri=uri)
        kept, resumed = _KeptRunId.load(run_dir, self.ID_FILE)
        if resumed:
            self.run_id = kept
            self._client.update_run(self.run_id, status="RUNNING")
        else:
            experiment_name = os.environ.get("MLFLOW_EXPERIMENT_NAME", "justrl")
            experiment = self._client.get_experiment_by_name(experiment_name)
            experiment_id = (experiment.experiment_id if experiment is not None
                             else self._client.create_experiment(experiment_name))
            run = self._client.create_run(experiment_id, run_name=name or run_dir.name)
            self.run_id = run.info.run_id
            for key, value in sorted((config or {}).items()):
                self._client.log_param(self.run_id, key, str(value)[:6000])
            _KeptRunId.save(run_dir, self.ID_FILE, self.run_id)

    def log(self, step: int, metrics: Metrics) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(mlflow_key(k), float(v), now, step) for k, v in metrics.items()
                 if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if batch:
            self._client.log_batch(self.run_id, metrics=batch)

    def close(self) -> None:
        self._client.set_terminated(self.run_id)


class TrackioSink:
    """Metrics to trackio (``pip install trackio``), locally (``$TRACKIO_DIR``, default trackio's
    cache) or to the Space in ``$TRACKIO_SPACE_ID``; the project ``$TRACKIO_PROJECT`` (default
    ``justrl``). The trackio run is named after the run folder and the name kept in
    ``RUN/trackio_run``: a resumed run continues it.
    """

    ID_FILE = "trackio_run"

    def __init__(self, run_dir: str | Path, *, name: str | None = None,
                 config: dict[str, Any] | None = None) -> None:
        try:
            import trackio
        except ImportError as exc:
            raise BackendUnavailable("loggers=trackio needs the trackio package (pip install trackio)") from exc
        run_dir = Path(run_dir)
        id_file = run_dir / self.ID_FILE
        resumed = id_file.is_file()
        self.run_name = id_file.read_text().strip() if resumed else f"{name or run_dir.name}-{secrets.token_hex(3)}"
        self.project = os.environ.get("TRACKIO_PROJECT", "justrl")
        with contextlib.redirect_stdout(StringIO()):  # trackio prints each start and finish
            self._run = trackio.init(project=self.project, name=self.run_name, config=config or {},
                                     resume="allow" if resumed else "never",
                                     space_id=os.environ.get("TRACKIO_SPACE_ID"), embed=False,
                                     auto_log_gpu=False, auto_log_cpu=False)
        io.atomic_write_text(id_file, self.run_name)

    def log(self, step: int, metrics: Metrics) -> None:
        self._run.log(dict(metrics), step=step)

    def close(self) -> None:
        with contextlib.redirect_stdout(StringIO()):
            self._run.finish()


class ConsoleSink:
    """A rich progress bar showing reward, accuracy, entropy and response length of the last step.

    It draws on :func:`justrl.logs.console`, the console the log handler writes to, so messages
    logged during the run appear above the bar.
    """

    def __init__(self, total_steps: int, start_step: int = 0, description: str = "GRPO") -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"), TimeElapsedColumn(),
            console=logs.console(), transient=False,
        )
        self._task = self._progress.add_task(description, total=total_steps, completed=start_step,
                                             stats="")
        self._progress.start()

    def log(self, step: int, metrics: Metrics) -> None:
        if "critic/score/mean" not in metrics:  # a validation-only record
            return
        stats = (f"reward {metrics['critic/score/mean']:+.2f}  acc {metrics['acc/mean']:.2f}  "
                 f"entropy {metrics['actor/entropy']:.3f}  len {metrics['response_length/mean']:.1f}")
        self._progress.update(self._task, completed=step, stats=stats)

    def close(self) -> None:
        self._progress.stop()


def make_sinks(names: list[str], run_dir: Path, total_steps: int, start_step: int,
               progress_bar: bool = True, *, name: str | None = None,
               config: dict[str, Any] | None = None) -> list[Sink]:
    """The sinks the recipe's ``loggers`` name; an unavailable optional sink is skipped with a warning.

    ``console`` is the progress bar; it is left out when ``progress_bar`` is False (a library call
    with ``console=False``, ``--quiet``, or stderr not a terminal). ``name`` and ``config`` (the
    recipe as a dict) label the W&B run.
    """
    sinks: list[Sink] = []
    for logger in names:
        if logger == "jsonl":
            sinks.append(JsonlSink(run_dir / "metrics.jsonl"))
        elif logger == "tensorboard":
            try:
                sinks.append(TensorBoardSink(run_dir / "tensorboard"))
            except ImportError:
                log.warning("tensorboard is not installed; skipping the TensorBoard sink "
                            "(pip install tensorboard)")
        elif logger == "console":
            if progress_bar:
                sinks.append(ConsoleSink(total_steps, start_step))
        elif logger in TRACKERS:
            label, sink_class = TRACKERS[logger]
            try:
                sinks.append(sink_class(run_dir, name=name, config=config))
            except BackendUnavailable as exc:
                log.warning("%s; skipping the %s sink", exc, label)
            except Exception as exc:  # each library raises its own types (no API key, no network, ...)
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                hint = " (WANDB_MODE=offline logs locally)" if logger == "wandb" else ""
                log.warning("%s could not start (%s); skipping the %s sink%s", label, reason, label, hint)
        else:
            log.warning("unknown logger %r; known: %s", logger, ", ".join(LOGGERS))
    return sinks


TRACKERS: dict[str, tuple[str, Any]] = {
    "wandb": ("W&B", WandbSink), "mlflow": ("MLflow", MlflowSink), "trackio": ("trackio", TrackioSink),
}
"""The experiment trackers: logger name -> (label in messages, sink class)."""
LOGGERS = ("console", "jsonl", "tensorboard", *TRACKERS)


# --- health alarms --------------------------------------------------------------------------------

@dataclass
class HealthMonitor:
    """Watches step metrics and returns human-readable alarms when a run looks unhealthy.

    Each alarm fires once when its condition has held for ``patience`` steps in a row, and can fire
    again after the condition clears. Its state is plain data, saved in checkpoints.
    """

    entropy_floor: float = 0.02
    """Mean token entropy (nats) below which the policy is considered collapsed."""
    entropy_ceiling_factor: float = 3.0
    """Entropy above this multiple of the first step's counts as a blow-up."""
    clip_ratio_ceiling: float = 0.5
    """Share of truncated responses above which the length budget is too small."""
    patience: int = 5
    """Consecutive steps a condition must hold before its alarm fires."""
    first_entropy: float | None = None
    streaks: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if isinstance(self.patience, bool) or not isinstance(self.patience, int) or self.patience < 1:
            problems.append(f"patience must be a whole number of steps >= 1 (got {self.patience})")
        if not (math.isfinite(self.entropy_floor) and self.entropy_floor >= 0):
            problems.append(f"entropy floor must be a number >= 0 (got {self.entropy_floor})")
        if not (math.isfinite(self.entropy_ceiling_factor) and self.entropy_ceiling_factor > 1):
            problems.append(f"entropy ceiling factor must be > 1 (got {self.entropy_ceiling_factor})")
        if not 0 <= self.clip_ratio_ceiling <= 1:
            problems.append(f"clip ratio ceiling must be in [0, 1] (got {self.clip_ratio_ceiling})")
        if problems:
            raise ConfigError("; ".join(problems))

    def check(self, metrics: Metrics) -> list[str]:
        alarms: list[str] = []
        bad = sorted(k for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v))
        if bad:
            alarms.append(f"non-finite metrics: {', '.join(bad)}")
        entropy = metrics.get("actor/entropy")
        if entropy is not None and math.isfinite(entropy) and self.first_entropy is None:
            self.first_entropy = entropy
        conditions = {
            "entropy-collapse": (
                entropy is not None and entropy < self.entropy_floor,
                f"entropy collapse: actor/entropy below {self.entropy_floor} for {self.patience} steps "
                f"(now {entropy}); the policy has stopped exploring",
            ),
            "entropy-blowup": (
                entropy is not None and self.first_entropy is not None
                and entropy > self.entropy_ceiling_factor * max(self.first_entropy, 1e-3),
                f"entropy blow-up: actor/entropy above {self.entropy_ceiling_factor}x its first value "
                f"for {self.patience} steps (now {entropy}); the learning rate may be too high",
            ),
            "reward-stuck": (
                metrics.get("batch/groups_with_signal", 1.0) == 0.0,
                f"reward stuck: for {self.patience} steps every group's rollouts got the same reward "
                f"(score {metrics.get('critic/score/mean')}), so the gradient is zero",
            ),
            "length-clipped": (
                metrics.get("response_length/clip_ratio", 0.0) > self.clip_ratio_ceiling,
                f"most responses hit the max response length for {self.patience} steps "
                f"(clip ratio {metrics.get('response_length/clip_ratio')})",
            ),
        }
        for name, (holds, message) in conditions.items():
            streak = self.streaks.get(name, 0) + 1 if holds else 0
            self.streaks[name] = streak
            if streak == self.patience:
                alarms.append(message)
        return alarms

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)


def replay_health(series: dict[str, tuple[list[int], list[float]]],
                  monitor: HealthMonitor | None = None) -> list[tuple[int, str]]:
    """The alarms a :class:`HealthMonitor` raises over a finished (or running) run's logged series.

    ``series`` as :func:`justrl.dynamics.plots.load_run` returns it (metric -> (steps, values)), so the
    native engine's ``metrics.jsonl`` and verl's logs are checked alike.
    """
    by_step: dict[int, Metrics] = {}
    for key, (steps, values) in series.items():
        for step, value in zip(steps, values):
            by_step.setdefault(step, {})[key] = value
    monitor = monitor or HealthMonitor()
    return [(step, alarm) for step in sorted(by_step) for alarm in monitor.check(by_step[step])]


@dataclass
class HealthReport:
    """What :func:`check_health` found in one run's logs."""

    run: str
    last_step: int
    """The last training step logged."""
    alarms: list[tuple[int, str]]
    """(step, message) of every alarm, in step order."""

    @property
    def healthy(self) -> bool:
        return not self.alarms

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "healthy": self.healthy, "last_step": self.last_step,
                "alarms": [{"step": step, "message": message} for step, message in self.alarms]}


def check_health(path: str | Path, *, entropy_floor: float = 0.02, patience: int = 5) -> HealthReport:
    """Replay the health alarms over a run's logs (``metrics.jsonl`` or verl's TensorBoard events).

    A run that logged no training step (a missing or empty metrics file, validation only) is a
    :class:`DataError`, never "healthy": there is nothing to judge.
    """
    from justrl.dynamics import plots

    monitor = HealthMonitor(entropy_floor=entropy_floor, patience=patience)
    run = plots.load_run(path)
    trained = [step for key, (steps, _) in run.series.items() if not key.startswith("val") for step in steps]
    if not trained:
        raise DataError(f"{path}: no training step logged yet (validation only); nothing to judge")
    return HealthReport(str(path), max(trained), replay_health(run.series, monitor))
