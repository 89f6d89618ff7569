"""A training run's folder: what is in it, how it is opened, checkpointed, resumed and closed.

``runs/<name>-<date>-<time>/`` holds ``recipe.yaml`` (resolved), ``metrics.jsonl``, ``train.log``,
``checkpoints/step_N/``, and at the end ``final/`` (the policy), ``summary.json`` and
``dynamics.png``. The rules that make a run safe to kill at any moment live here:

- :func:`open_run_dir` refuses another recipe's folder, and a folder that already holds a run
  unless resuming, before anything is written.
- :func:`save_checkpoint` writes ``step_N`` aside and publishes it whole (``justrl.io``), with a
  ``COMPLETE`` marker written last; :func:`latest_checkpoint` never picks one without it, and
  :func:`resumable_checkpoint` falls back past one damaged after it was marked (a truncated
  ``model.safetensors``, a missing ``trainer.pt``, a torn ``train_state.json``).
- ``recipe.yaml`` is written by :func:`record_recipe` once start-up has succeeded (model and data
  loaded), so a run that fails before its first step leaves a folder the corrected command reuses;
  :func:`justrl.train.loop.train` holds the folder's :class:`justrl.io.FolderLock` for the whole run.
- :func:`stop_on_interrupt`: Ctrl-C, SIGTERM (SLURM, Kubernetes, ``docker stop``) and SIGHUP end the
  current step with a checkpoint; the CLI exits with ``128 + signum``. ``--resume`` refuses a folder
  that holds steps but no complete checkpoint, a damaged ``metrics.jsonl`` line (by number) and a
  ``total_steps`` below the step reached, before anything is rewritten.
- :class:`TrainState` is everything besides model and optimizer that an exact resume needs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import shutil
import signal
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from justrl import io, logs, verifiers
from justrl import recipe as recipe_mod
from justrl.data import toy
from justrl.dynamics import metrics as metrics_mod
from justrl.errors import StopSignal, TrainingError
from justrl.generate import model_files
from justrl.recipe import Recipe

log = logs.get(__name__)
step_log = logs.get("justrl.steps")
"""Each step's metrics as a line of ``train.log`` (not propagated: the console shows a progress bar)."""
step_log.propagate = False

KEEP_CHECKPOINTS = 2
"""Complete checkpoints kept in ``checkpoints/`` (older ones are deleted after a new one lands)."""
COMPLETE_MARKER = "COMPLETE"
"""Written last inside a checkpoint; a checkpoint without it is never resumed from."""
RESUME_MAY_CHANGE = ("total_steps", "loggers")
"""Recipe fields a resumed run may change (neither alters the steps already taken)."""


@dataclass
class TrainResult:
    """What :func:`justrl.train.loop.train` returns (and writes to ``summary.json``)."""

    run_dir: str
    steps: int
    """The last completed training step."""
    stopped: str
    """``finished``, ``interrupted`` (Ctrl-C, SIGTERM or SIGHUP; checkpoint saved) or ``non-finite``."""
    acc_before: float | None
    """Mean held-out accuracy before training (validation at step 0)."""
    acc_after: float | None
    """Mean held-out accuracy at the last validation."""
    wall_seconds: float
    """Wall time of the run (summed over resumed sessions), warm start and validation included."""
    entropy_first: float | None = None
    entropy_last: float | None = None
    entropy_min: float | None = None
    score_first: float | None = None
    score_last: float | None = None
    stop_signal: str | None = None
    """The signal that interrupted the run (``SIGINT``, ``SIGTERM``, ``SIGHUP``), None otherwise."""


@dataclass
class TrainState:
    """Everything besides model and optimizer that a checkpoint must hold to resume exactly."""

    step: int = 0
    epoch: int = 0
    """Data cursor: the pass over the training problems ..."""
    position: int = 0
    """... and the next problem's place in that pass's shuffled order."""
    tokens_total: int = 0
    nonfinite_in_a_row: int = 0
    acc_before: float | None = None
    acc_last: float | None = None
    wall_seconds: float = 0.0
    entropy: list[float] = field(default_factory=list)
    score: list[float] = field(default_factory=list)
    health: dict[str, Any] = field(default_factory=dict)


# --- opening a run --------------------------------------------------------------------------------

def open_run_dir(recipe: Recipe | None, run_dir: str | Path | None, resume: bool
                 ) -> tuple[Path, Recipe, Path | None]:
    """``(run_dir, recipe, newest complete checkpoint or None)``.

    Refuses, before writing anything: an evaluation's folder, another recipe's directory, a
    directory that already holds a run (without ``resume``), and a recipe the native engine cannot
    run (a KL term). Nothing is written here: see :func:`record_recipe`.
    """
    if run_dir is None:
        if resume:
            raise TrainingError("--resume needs --run-dir: the directory of the run to continue")
        assert recipe is not None
        run_dir = Path("runs") / f"{recipe.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = Path(run_dir)
    io.refuse_eval_folder(run_dir)
    saved_path = run_dir / "recipe.yaml"
    saved = recipe_mod.load(str(saved_path)) if saved_path.is_file() else None
    if saved is not None and recipe is not None:
        differ = {k: (v, saved.to_dict()[k]) for k, v in recipe.to_dict().items()
                  if v != saved.to_dict()[k] and (k not in RESUME_MAY_CHANGE or not resume)}
        if differ:
            detail = "; ".join(f"{k}: {old!r} in the run directory, {new!r} now"
                               for k, (new, old) in sorted(differ.items()))
            raise TrainingError(
                f"{run_dir} holds a run of a different recipe ({detail}). Resume it with the recipe it "
                f"was started with (omit --recipe and overrides), or choose another --run-dir.")
    if resume:
        if saved is None:
            raise TrainingError(f"{run_dir} holds no recipe.yaml, so there is no run to resume there")
        recipe = recipe or saved
        checkpoint = latest_checkpoint(run_dir)  # validated by the trainer (resumable_checkpoint)
        _check_resumable(run_dir, recipe, checkpoint)
    else:
        if saved is not None or (run_dir / "metrics.jsonl").exists():
            raise TrainingError(f"{run_dir} already holds a run; pass --resume to continue it, or "
                                "choose another --run-dir")
        checkpoint = None
    assert recipe is not None
    verifiers.check_known(verifier=recipe.verifier, val_verifier=recipe.val_verifier)
    if recipe.kl_coef != 0:
        raise TrainingError(
            f"kl_coef={recipe.kl_coef}: the native engine has no reference model, so it trains "
            "without a KL term (the paper's setting, kl_coef=0). Use kl_coef=0, or --engine verl.")
    if checkpoint is None and recipe.model != toy.TOY_MODEL:  # a bad path or offline hub id, in one line
        model_files.check_source(recipe.model, "model")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir, recipe, checkpoint


def _check_resumable(run_dir: Path, recipe: Recipe, checkpoint: Path | None) -> None:
    """Refuse a resume that would truncate or overwrite what the folder holds: steps but no complete
    checkpoint (it would restart from step 0), a damaged ``metrics.jsonl``, or ``total_steps``
    below the step already reached."""
    metrics_file = run_dir / "metrics.jsonl"
    records = metrics_mod.read_jsonl_strict(metrics_file) if metrics_file.is_file() else []
    last = max((r.get("step", 0) for r in records), default=0)
    if checkpoint is None and (last > 0 or (run_dir / "final").exists()):
        raise TrainingError(
            f"{run_dir} holds a run (metrics up to step {last}) but no complete checkpoint in "
            f"{run_dir / 'checkpoints'}: resuming would restart from step 0 and overwrite it. Start a "
            "new run in another --run-dir")
    reached = int(checkpoint.name[len("step_"):]) if checkpoint is not None else 0
    if recipe.total_steps < reached:
        raise TrainingError(f"total_steps={recipe.total_steps} is below step {reached}, which {run_dir} "
                            "already reached; a resume may only lengthen a run")


def record_recipe(run_dir: Path, recipe: Recipe) -> None:
    """``recipe.yaml``: written once the run has started (model and data loaded), so a folder whose
    start-up failed holds no run and the corrected command may use it."""
    io.atomic_write_text(run_dir / "recipe.yaml", recipe.to_yaml())


@contextlib.contextmanager
def run_log(run_dir: Path, console: bool) -> Iterator[None]:
    """While open, ``train.log`` receives the run's messages and each step's metrics line.

    With ``console=False`` the ``justrl`` logger's other handlers (the terminal's) are detached
    meanwhile and nothing propagates past it, so the run is silent but its log file is whole.
    """
    root = logging.getLogger(logs.ROOT)
    with logs.to_file(run_dir / "train.log") as file_handler:
        hidden = [] if console else [h for h in root.handlers if h is not file_handler]
        propagate = root.propagate
        for handler in hidden:
            root.removeHandler(handler)
        root.propagate = propagate and console
        step_log.addHandler(file_handler)
        try:
            yield
        finally:
            step_log.removeHandler(file_handler)
            root.propagate = propagate
            for handler in hidden:
                root.addHandler(handler)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""Signals that stop training after the current step with a checkpoint: Ctrl-C, and what SLURM,
Kubernetes and ``docker stop`` (SIGTERM) or a closed terminal (SIGHUP) send."""


@contextlib.contextmanager
def stop_on_interrupt() -> Iterator[Callable[[], int | None]]:
    """Turn the first Ctrl-C, SIGTERM or SIGHUP into a request to stop after the current step (with a
    checkpoint).

    Yields a function returning the signal number of the stop requested (None when none was). A
    second signal aborts at once with :class:`~justrl.errors.StopSignal` (checkpoints are written
    aside and renamed, so none is torn). Outside the main thread (where signals cannot be caught)
    the signals keep their default behaviour.
    """
    requested: list[int] = []

    def handler(signum, frame):
        if requested:
            raise StopSignal(signum)
        requested.append(signum)
        log.info("%s: finishing this step and saving a checkpoint (send it again to abort now)",
                 "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name)

    try:
        previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    except ValueError:  # not the main thread
        yield lambda: None
        return
    try:
        yield lambda: requested[0] if requested else None
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


# --- the policy a run starts from -----------------------------------------------------------------

def resolve_model(name: str, console: bool) -> str:
    """The recipe's ``model`` as ``from_pretrained`` takes it (``toy``: the warm-started demo model)."""
    if name != toy.TOY_MODEL:
        return name
    with warm_start_progress(console and logs.progress_enabled()) as progress:
        return str(toy.prepare(progress=progress))


@contextlib.contextmanager
def warm_start_progress(show: bool) -> Iterator[Callable[[int, int, float], None] | None]:
    """A transient progress bar for the toy model's warm start (None when not shown)."""
    if not show:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]warm start"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(), console=logs.console(),
                  transient=True) as bar:
        task = bar.add_task("warm start", total=None, loss="")

        def progress(step: int, steps: int, loss: float) -> None:
            bar.update(task, completed=step, total=steps, loss=f"{loss:.3f}")

        yield progress


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
"""A model folder holding none of these has no tokenizer (transformers would build an unusable one)."""


def load_policy(path: str | Path, device: torch.device, gradient_checkpointing: bool):
    """Model (float32 master weights) and tokenizer from a local folder or hub id."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from justrl.errors import ModelLoadError
    from justrl.generate.model_files import check_source

    check_source(str(path), "model")
    if Path(path).is_dir() and not any((Path(path) / name).is_file() for name in TOKENIZER_FILES):
        raise ModelLoadError(f"{path}: no tokenizer files ({', '.join(TOKENIZER_FILES)}); save the tokenizer "
                             "with the model (tokenizer.save_pretrained)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    except Exception as exc:  # OSError for a missing file, others for broken folders
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"cannot load the model {str(path)!r}: {first}") from exc
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = model.to(device)
    if gradient_checkpointing:
        model.gradient_checkpointing_enable()
    model.train()
    return model, tokenizer


def _write_policy(model, tokenizer, folder: Path) -> None:
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


# --- checkpoints: complete or ignored -------------------------------------------------------------

def save_checkpoint(run_dir: Path, model, tokenizer, optimizer, schedule, state: TrainState) -> Path:
    """``checkpoints/step_N/``: policy (HF format), optimizer, lr schedule, RNG states, train state.

    Written into a staging folder, synced, marked complete, then published in one step: a folder
    named ``step_N`` is always whole. Only the newest :data:`KEEP_CHECKPOINTS` are kept.
    """
    root = run_dir / "checkpoints"
    target = root / f"step_{state.step}"
    if (target / COMPLETE_MARKER).is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    staged = io.staging_path(target)
    try:
        _write_checkpoint_files(staged, model, tokenizer, optimizer, schedule, state)
    except BaseException as exc:  # a second signal, a full disk: no half-written staging folder stays
        shutil.rmtree(staged, ignore_errors=True)
        failure = io.write_failure(target, exc) if isinstance(exc, Exception) else None
        if failure is not None and failure is not exc:
            raise failure from exc
        raise
    io.publish_folder(staged, target)  # replaces an incomplete leftover of an earlier attempt
    for _, old in sorted(complete_checkpoints(run_dir))[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def _write_checkpoint_files(staged: Path, model, tokenizer, optimizer, schedule, state: TrainState) -> None:
    _write_policy(model, tokenizer, staged)
    torch.save({
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "rng": {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
    }, staged / "trainer.pt")
    (staged / "train_state.json").write_text(json.dumps(asdict(state)))
    (staged / COMPLETE_MARKER).write_text(f"step {state.step}\n")
    for path in staged.iterdir():
        io.fsync_path(path)


def complete_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """``(step, folder)`` of every checkpoint that carries its ``COMPLETE`` marker."""
    out = []
    for path in (run_dir / "checkpoints").glob("step_*"):
        suffix = path.name[len("step_"):]
        if suffix.isdigit() and (path / COMPLETE_MARKER).is_file():
            out.append((int(suffix), path))
    return out


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint (staging and unmarked folders are never picked; staging
    leftovers of a killed run are deleted)."""
    complete = complete_checkpoints(run_dir)
    for leftover in (run_dir / "checkpoints").glob(".tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    return max(complete)[1] if complete else None


def checkpoint_damage(path: Path) -> str | None:
    """What makes a complete-marked checkpoint unusable (None when it looks whole): weight files
    whose safetensors header does not cover the file, a ``trainer.pt`` that is missing or not a
    whole zip archive, a ``train_state.json`` that does not parse. Cheap: headers and directories
    only, not the tensors."""
    from safetensors import safe_open

    weights = sorted(path.glob("*.safetensors"))
    if not weights and not list(path.glob("*.bin")):
        return "no model weights"
    for file in weights:
        try:
            with safe_open(str(file), "pt") as handle:
                handle.keys()
        except Exception as exc:  # SafetensorError: truncated or corrupt
            return f"{file.name} does not load ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
    trainer_state = path / "trainer.pt"
    if not trainer_state.is_file():
        return "trainer.pt is missing"
    try:
        with zipfile.ZipFile(trainer_state) as archive:
            if not archive.namelist():
                return "trainer.pt is empty"
    except (zipfile.BadZipFile, OSError) as exc:
        return f"trainer.pt does not load ({exc})"
    try:
        state = json.loads((path / "train_state.json").read_text())
    except (OSError, ValueError) as exc:
        return f"train_state.json does not parse ({exc})"
    if not isinstance(state, dict) or not isinstance(state.get("step"), int):
        return "train_state.json holds no step"
    return None


def resumable_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint that loads; a damaged newer one is skipped with a warning
    naming what is wrong. None where there is none; an error where every one is damaged."""
    latest_checkpoint(run_dir)  # clears staging leftovers
    damaged = []
    for _, path in sorted(complete_checkpoints(run_dir), reverse=True):
        problem = checkpoint_damage(path)
        if problem is None:
            if damaged:
                log.warning("resuming from %s: %s", path.name, "; ".join(damaged))
            return path
        damaged.append(f"{path.name} is damaged ({problem})")
        log.warning("checkpoint %s is damaged: %s; trying the one before it", path, problem)
    if damaged:
        raise TrainingError(f"{run_dir}: no checkpoint loads ({'; '.join(damaged)}); start a new run "
                            "from the last good weights, or another --run-dir")
    return None


def load_checkpoint(path: Path, optimizer, schedule, state: TrainState,
                    health: metrics_mod.HealthMonitor) -> None:
    """Restore optimizer, schedule, RNG states and train state (the policy was loaded from ``path``)."""
    saved = torch.load(path / "trainer.pt", weights_only=False)
    optimizer.load_state_dict(saved["optimizer"])
    schedule.load_state_dict(saved["schedule"])
    rng = saved["rng"]
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    for key, value in json.loads((path / "train_state.json").read_text()).items():
        setattr(state, key, value)
    health.load_state_dict(state.health)


# --- closing a run --------------------------------------------------------------------------------

def save_final_policy(model, tokenizer, run_dir: Path) -> Path:
    """``final/``: the trained policy in Hugging Face format, published whole."""
    target = run_dir / "final"
    staged = io.staging_path(target)
    try:
        _write_policy(model, tokenizer, staged)
        for path in staged.iterdir():
            io.fsync_path(path)
    except BaseException as exc:
        shutil.rmtree(staged, ignore_errors=True)
        failure = io.write_failure(target, exc) if isinstance(exc, Exception) else None
        if failure is not None and failure is not exc:
            raise failure from exc
        raise
    return io.publish_folder(staged, target)


def write_summary(run_dir: Path, recipe: Recipe, state: TrainState, stopped: str,
                  stop_signal: str | None = None) -> TrainResult:
    """The run's :class:`TrainResult`: written to ``summary.json``, drawn as ``dynamics.png`` and
    logged as a few lines."""
    result = TrainResult(
        run_dir=str(run_dir), steps=state.step, stopped=stopped,
        acc_before=state.acc_before, acc_after=state.acc_last, wall_seconds=round(state.wall_seconds, 1),
        entropy_first=state.entropy[0] if state.entropy else None,
        entropy_last=state.entropy[-1] if state.entropy else None,
        entropy_min=min(state.entropy) if state.entropy else None,
        score_first=state.score[0] if state.score else None,
        score_last=state.score[-1] if state.score else None, stop_signal=stop_signal,
    )
    io.atomic_write_json(run_dir / "summary.json", asdict(result))
    draw_dynamics(run_dir, recipe)
    log.info(summary_text(result, recipe))
    return result


def draw_dynamics(run_dir: Path, recipe: Recipe) -> None:
    """``dynamics.png``: the run's entropy, reward, length and validation curves (``justrl plot``)."""
    from justrl.dynamics import plots

    try:
        plots.plot_runs([plots.load_run(run_dir, recipe.name)], run_dir / "dynamics.png",
                        smoothing=0.6, title=f"{recipe.name}: training dynamics")
    except (OSError, ValueError) as exc:  # a figure is a convenience: never fail a finished run on it
        log.warning("could not draw %s: %s", run_dir / "dynamics.png", exc)


def summary_text(result: TrainResult, recipe: Recipe) -> str:
    """A few lines for a human: how the run ended, accuracy before -> after, entropy and reward."""
    lines = [f"{result.stopped} after step {result.steps} in {result.wall_seconds:.0f}s"]
    if result.acc_before is not None and result.acc_after is not None:
        lines.append(
            f"held-out accuracy (sampled at temperature {recipe.val_temperature:g}): "
            f"{result.acc_before:.1%} -> {result.acc_after:.1%} "
            f"({100 * (result.acc_after - result.acc_before):+.1f} points)")
    if result.entropy_first is not None:
        lines.append(f"entropy {result.entropy_first:.3f} -> {result.entropy_last:.3f} "
                     f"(min {result.entropy_min:.3f}); reward {result.score_first:+.2f} -> "
                     f"{result.score_last:+.2f}")
    final = "; final policy: final/" if result.stopped == "finished" else ""
    lines.append(f"run directory: {result.run_dir} (curves: dynamics.png{final})")
    return "\n".join(lines)
