"""``justrl eval --watch RUN_DIR``: the paper's Figure 1 (AIME24 avg@32 against step) for any run.

Each checkpoint of a training run is evaluated with the paper's protocol (``justrl eval``'s
:class:`~justrl.evaluate.EvalConfig`, any ``key=value`` of it), and every score is appended to one
table (``RUN/eval_watch/curve.jsonl``, redrawn as ``curve.md``) and one figure of score against
step (``curve.png``). Checkpoints are found as the engines write them:

- native: ``RUN/checkpoints/step_N/`` with its ``COMPLETE`` marker, a Hugging Face model folder
  (``config.json``, ``model.safetensors``, the tokenizer) plus the trainer's state;
- verl: ``RUN/checkpoints/global_step_N/actor/``, FSDP shards, complete once
  ``latest_checkpointed_iteration.txt`` reaches N; turned into a model folder by verl's own merger
  (``python -m verl.model_merger merge --backend fsdp``), or taken from ``actor/huggingface/``
  when the run saved full weights there (``checkpoint.save_contents`` with ``hf_model``).

A run keeps only its newest checkpoints, so a watcher copies (or merges) each one into
``eval_watch/models/step_N`` before evaluating it and deletes the copy once it is scored. The base
model (the recipe's ``model``) is step 0. Stopping is safe at any moment: a step's evaluation
resumes in ``eval_watch/steps/step_N`` (``justrl eval``'s own resume), and steps already in the
table are never evaluated again. The watcher waits for new checkpoints while the run goes on and
returns once the run has finished (native: ``summary.json``; verl: the last step's checkpoint) and
every checkpoint is scored, or after ``idle_exit_s`` without a new one (a run that died).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from justrl import logs
from justrl.errors import EvalError, JustrlError
from justrl.io import FolderLock, atomic_write_text, publish_folder, staging_path, sweep_staging

WATCH_DIR = "eval_watch"
TABLE_FILE = "curve.jsonl"
TABLE_MD = "curve.md"
FIGURE_FILE = "curve.png"
NATIVE_STATE_FILES = ("trainer.pt", "train_state.json", "COMPLETE")
"""What a native checkpoint holds besides the model folder (not copied for evaluation)."""
VERL_LATEST = "latest_checkpointed_iteration.txt"

log = logs.get(__name__)


@dataclass(frozen=True)
class Checkpoint:
    """One policy of a run: its step and where it is."""

    step: int
    path: Path
    kind: str
    """``native`` (a model folder), ``verl`` (an FSDP actor folder), ``base`` (the recipe's model)
    or ``staged`` (a copy in ``eval_watch/models`` left by an interrupted watcher)."""


def native_checkpoints(run_dir: Path) -> list[Checkpoint]:
    found = []
    for path in (run_dir / "checkpoints").glob("step_*"):
        match = re.fullmatch(r"step_(\d+)", path.name)
        if match and (path / "COMPLETE").is_file():
            found.append(Checkpoint(int(match.group(1)), path, "native"))
    return found


def verl_latest(run_dir: Path) -> int | None:
    try:
        return int((run_dir / "checkpoints" / VERL_LATEST).read_text().strip())
    except (OSError, ValueError):
        return None


def verl_checkpoints(run_dir: Path) -> list[Checkpoint]:
    latest = verl_latest(run_dir)
    if latest is None:
        return []
    found = []
    for path in (run_dir / "checkpoints").glob("global_step_*"):
        match = re.fullmatch(r"global_step_(\d+)", path.name)
        if match and int(match.group(1)) <= latest and (path / "actor").is_dir():
            found.append(Checkpoint(int(match.group(1)), path / "actor", "verl"))
    return found


def run_recipe(run_dir: Path) -> Any:
    from justrl import recipe as recipe_mod

    path = run_dir / "recipe.yaml"
    if not path.is_file():
        raise EvalError(f"{run_dir}: no recipe.yaml (not a justrl run folder)")
    return recipe_mod.load(str(path))


def run_finished(run_dir: Path, total_steps: int) -> bool:
    """The run will write no more checkpoints: native ``summary.json``, or verl's last step saved."""
    latest = verl_latest(run_dir)
    return (run_dir / "summary.json").is_file() or (latest is not None and latest >= total_steps)


def staged_models(models_dir: Path) -> list[Checkpoint]:
    """Copies made before a kill: still to be scored even if the run has deleted the checkpoint."""
    found = []
    for path in models_dir.glob("step_*"):
        match = re.fullmatch(r"step_(\d+)", path.name)
        if match and (path / "config.json").is_file():
            found.append(Checkpoint(int(match.group(1)), path, "staged"))
    return found


def checkpoints(run_dir: Path, *, every: int = 1, base: Checkpoint | None = None,
                models_dir: Path | None = None) -> list[Checkpoint]:
    """The run's complete checkpoints whose step is a multiple of ``every`` (and the base, and
    copies staged by an earlier watcher), by step."""
    staged = staged_models(models_dir) if models_dir is not None else []
    found = {c.step: c for c in staged + native_checkpoints(run_dir) + verl_checkpoints(run_dir)
             if c.step % every == 0}
    if base is not None:
        found.setdefault(0, base)
    return [found[step] for step in sorted(found)]


def merge_command(actor: Path, target: Path) -> list[str]:
    """verl's own merger of FSDP shards into a Hugging Face model folder."""
    return [sys.executable, "-m", "verl.model_merger", "merge", "--backend", "fsdp",
            "--local_dir", str(actor), "--target_dir", str(target)]


def _has_weights(folder: Path) -> bool:
    return any(folder.glob("*.safetensors")) or any(folder.glob("pytorch_model*.bin"))


def stage_model(checkpoint: Checkpoint, models_dir: Path) -> str:
    """A model folder (or hub id) of ``checkpoint`` that survives the run deleting the checkpoint."""
    if checkpoint.kind in ("base", "staged"):
        return str(checkpoint.path)
    target = models_dir / f"step_{checkpoint.step}"
    if (target / "config.json").is_file():
        return str(target)  # staged before a kill
    models_dir.mkdir(parents=True, exist_ok=True)
    staged = staging_path(target)
    if checkpoint.kind == "native":
        shutil.copytree(checkpoint.path, staged, ignore=shutil.ignore_patterns(*NATIVE_STATE_FILES))
    elif _has_weights(checkpoint.path / "huggingface"):
        shutil.copytree(checkpoint.path / "huggingface", staged)
    else:
        log.info("merging verl checkpoint %s with verl's model merger", checkpoint.path)
        done = subprocess.run(merge_command(checkpoint.path, staged), capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise EvalError(f"verl's model merger failed on {checkpoint.path}: {tail[0]}")
    publish_folder(staged, target)
    return str(target)


def read_table(path: Path) -> list[dict[str, Any]]:
    """The table's rows (a line cut short by a kill is skipped)."""
    rows = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def append_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """One step's rows in one write, flushed and synced: a kill leaves them whole or torn last (a
    torn last line is closed first, so the new rows start on their own line)."""
    torn = path.is_file() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(("\n" if torn else "") + "".join(json.dumps(r) + "\n" for r in rows))
        handle.flush()
        os.fsync(handle.fileno())


def score_rows(checkpoint: Checkpoint, summary: Any) -> list[dict[str, Any]]:
    return [
        {"step": checkpoint.step, "checkpoint": str(checkpoint.path), "benchmark": s.name,
         "n": s.samples_per_problem, "score": s.score, "ci_low": s.ci_low, "ci_high": s.ci_high,
         "problems": s.problems, "samples": s.samples}
        for s in summary.scores
    ]


def render_table(rows: list[dict[str, Any]], marks: dict[tuple[int, str], Any] | None = None) -> str:
    """``curve.md``: one line per step, one column per benchmark (avg@N, %); with ``marks`` (see
    :func:`significance`), each later step's paired difference from the first, ``*`` where significant."""
    names = sorted({r["benchmark"] for r in rows})
    by_step: dict[int, dict[str, dict[str, Any]]] = {}
    for r in rows:
        by_step.setdefault(r["step"], {})[r["benchmark"]] = r
    marks = marks or {}
    head = "| step | " + " | ".join(names) + " |"
    lines = [head, "|---" * (len(names) + 1) + "|"]
    for step in sorted(by_step):
        cells = []
        for n in names:
            cell = f"{by_step[step][n]['score']:.1f} (avg@{by_step[step][n]['n']})" if n in by_step[step] else ""
            if (step, n) in marks:
                d = marks[(step, n)]
                cell += f" {d.difference:+.1f} [{d.ci_low:+.1f}, {d.ci_high:+.1f}]{' *' if d.significant else ''}"
            cells.append(cell)
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    if marks:
        first = min(by_step)
        lines += ["", f"Each later step: its difference from step {first} in points with a paired 95% bootstrap "
                  f"interval over problems; `*`: significant (sign-flip test, Holm-adjusted over the steps), "
                  f"as `justrl compare` computes it."]
    return "\n".join(lines) + "\n"


def significance(out_dir: Path, rows: list[dict[str, Any]]) -> dict[tuple[int, str], Any]:
    """Each scored step against the first (``justrl compare`` on their evaluation folders):
    ``(step, benchmark) -> compare.Difference``; empty until two steps are scored, or where the
    folders cannot be compared (a message at debug level says why)."""
    from justrl.evaluate import compare

    steps = sorted({r["step"] for r in rows})
    folders = [out_dir / "steps" / f"step_{s}" for s in steps]
    present = [(s, f) for s, f in zip(steps, folders) if (f / "grading_results.json").is_file()]
    if len(present) < 2:
        return {}
    try:
        result = compare.compare([f for _, f in present], resamples=2000, seed=0)
    except JustrlError as exc:
        log.debug("no significance marks: %s", exc)
        return {}
    step_of = {label: s for label, (s, _) in zip(result.labels, present)}
    return {(step_of[d.other], d.benchmark): d for d in result.rows if d.benchmark in result.benchmarks}


def plot_curve(rows: list[dict[str, Any]], path: Path, title: str) -> Path:
    """Score against step, one line (with its 95% CI band) per benchmark: the paper's Figure 1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name in sorted({r["benchmark"] for r in rows}):
        points = sorted((r["step"], r["score"], r["ci_low"], r["ci_high"], r["n"]) for r in rows
                        if r["benchmark"] == name)
        steps = [p[0] for p in points]
        ax.plot(steps, [p[1] for p in points], marker="o", label=f"{name} avg@{points[-1][4]}")
        ax.fill_between(steps, [p[2] for p in points], [p[3] for p in points], alpha=0.15)
    ax.set_xlabel("training step")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, min(100.0, max([10.0] + [r["ci_high"] * 1.1 for r in rows])))  # 0 at the bottom
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    staged = path.with_name(f".{path.stem}.{os.getpid()}{path.suffix}")
    fig.savefig(staged, dpi=120)
    plt.close(fig)
    os.replace(staged, path)
    return path


@dataclass
class WatchResult:
    out_dir: Path
    table: Path
    figure: Path | None
    scored: list[int]
    """Steps evaluated by this call."""
    finished: bool
    """The run finished and every checkpoint is scored (False: gave up waiting)."""


def watch_run(run_dir: str | Path, config: Any, *, every: int = 1, base: bool = True, poll_s: float = 60.0,
          idle_exit_s: float = 6 * 3600, sleep: Callable[[float], None] = time.sleep,
          clock: Callable[[], float] = time.monotonic) -> WatchResult:
    """Evaluate every checkpoint of ``run_dir`` with ``config`` (its ``model`` and ``out`` are set
    per step), appending to the table and redrawing the figure; see the module docstring."""
    from justrl.evaluate.run import run as run_evaluation

    run_dir = Path(run_dir)
    if every < 1:
        raise EvalError(f"--every must be >= 1 (got {every})")
    recipe = run_recipe(run_dir)
    out_dir = Path(config.out) if config.out else run_dir / WATCH_DIR
    lock = FolderLock(out_dir, "eval --watch").acquire()
    try:
        sweep_staging(out_dir)  # what a killed writer wrote aside and never renamed (logged)
        table, figure = out_dir / TABLE_FILE, out_dir / FIGURE_FILE
        base_ckpt = Checkpoint(0, Path(_base_model(recipe.model)), "base") if base else None
        scored: list[int] = []
        last_new = clock()
        while True:
            done = {r["step"] for r in read_table(table)}
            finished = run_finished(run_dir, recipe.total_steps)  # read before listing: no race
            todo = [c for c in checkpoints(run_dir, every=every, base=base_ckpt, models_dir=out_dir / "models")
                    if c.step not in done]
            for ckpt in todo:
                model = stage_model(ckpt, out_dir / "models")
                step_config = dataclasses.replace(config, model=model, out=str(out_dir / "steps" / f"step_{ckpt.step}"))
                log.info("step %d: evaluating %s", ckpt.step, ckpt.path)
                result = run_evaluation(step_config)
                append_rows(table, score_rows(ckpt, result.summary))
                if ckpt.kind != "base":
                    shutil.rmtree(out_dir / "models" / f"step_{ckpt.step}", ignore_errors=True)
                rows = read_table(table)
                atomic_write_text(out_dir / TABLE_MD, render_table(rows, significance(out_dir, rows)))
                plot_curve(rows, figure, f"{recipe.name}: score against step ({run_dir.name})")
                scored.append(ckpt.step)
                last_new = clock()
            if todo:
                continue  # look again at once: new checkpoints may have landed meanwhile
            if finished:
                return WatchResult(out_dir, table, figure if figure.is_file() else None, scored, True)
            if clock() - last_new > idle_exit_s:
                log.warning("no new checkpoint in %.0f s and the run has not finished: stopping", idle_exit_s)
                return WatchResult(out_dir, table, figure if figure.is_file() else None, scored, False)
            sleep(poll_s)
    finally:
        lock.release()


def _base_model(model: str) -> str:
    """The recipe's model as ``from_pretrained`` takes it (``toy``: the demo's warm-started model)."""
    from justrl.data import toy

    if model != toy.TOY_MODEL:
        return model

    return str(toy.prepare())
