"""Launching verl: the launch script in the run directory, the exact command, and running it.

:func:`launch` is ``justrl train --engine verl``: it renders the recipe as overrides, checks them
against the installed verl (:func:`~justrl.verl_engine.validate.validate_overrides`), writes
``recipe.yaml`` and ``launch_verl.sh`` into the run directory, prints the command, and runs the
script unless it is a dry run. The script exports the recipe's data in verl's schema first (with
``justrl data export``, skipped for files already there), so it can be rerun on the cluster as is.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from justrl import logs
from justrl.data import benchmarks
from justrl.io import atomic_write_text
from justrl.recipe import Recipe
from justrl.verl_engine.imports import check_launch_imports
from justrl.verl_engine.mapping import VERL_VERSION, deviations, verl_settings
from justrl.verl_engine.plan import VerlPlan, default_train_file, default_val_file
from justrl.verl_engine.rendering import overrides
from justrl.verl_engine.validate import installed_verl_version, validate_overrides
from justrl.verl_engine.watchdog import Limits, run_bounded

ENTRYPOINT = "verl.trainer.main_ppo"
SCRIPT_NAME = "launch_verl.sh"

log = logs.get(__name__)

CPU_LIMITS = Limits(timeout_s=3600.0, stall_s=600.0)
"""A CPU launch (the toy recipe) is stopped after an hour, or after ten minutes without output."""


def command(override_list: Sequence[str], python: str = sys.executable) -> list[str]:
    return [python, "-m", ENTRYPOINT, *override_list]


def shell_quote(arg: str) -> str:
    """``shlex.quote``, but Hydra's single-quoted values go inside double quotes (easier to read)."""
    if "'" in arg and not re.search(r'["$`\\!]', arg):
        return f'"{arg}"'
    return shlex.quote(arg)


def format_command(argv: Sequence[str]) -> str:
    """The command as shell text, one override per line."""
    head = " ".join(shell_quote(a) for a in argv[:3])
    return " \\\n    ".join([head, *(shell_quote(a) for a in argv[3:])])


def _export_lines(recipe: Recipe, plan: VerlPlan, python: str) -> list[str]:
    """Shell lines that export the recipe's data in verl's schema, skipping files already there."""
    base = [python, "-m", "justrl.cli", "data", "export", "--format", "verl",
            "--recipe", str(plan.run_dir / "recipe.yaml")]
    if plan.data_dir:
        data_dir = plan.data_dir if plan.data_dir == benchmarks.DOWNLOAD else str(Path(plan.data_dir).expanduser().resolve())
        base += ["--data-dir", data_dir]
    jobs: list[tuple[str, str, str]] = []
    if plan.train_files == (str(default_train_file(plan.run_dir)),):
        jobs.append((recipe.train_data, plan.train_files[0], "train"))
    defaults = tuple(str(default_val_file(plan.run_dir, n)) for n in recipe.val_data)
    if plan.val_files == defaults:
        jobs += [(src, out, "test") for src, out in zip(recipe.val_data, plan.val_files)]
    lines = []
    for source, out, split in jobs:
        argv = [*base, "--split", split, "--out", out, source]
        lines.append(f"[ -s {shlex.quote(out)} ] || {' '.join(shlex.quote(a) for a in argv)}")
    return lines


def launch_script(recipe: Recipe, plan: VerlPlan, override_list: Sequence[str],
                  python: str = sys.executable) -> str:
    """The text of ``launch_verl.sh``: export the data if missing, then run verl, logging to verl.log."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    exports = _export_lines(recipe, plan, python) or ["# (data files given on the command line)"]
    return "\n".join([
        "#!/usr/bin/env bash",
        f"# Written by `justrl train --engine verl` on {stamp} for verl {VERL_VERSION}.",
        f"# Recipe: {recipe.name} (resolved in recipe.yaml beside this script).",
        *(["# Cluster: this machine's CPU (verl's CPU mode: one logical GPU, a local Ray instance)."] if plan.cpu else [
            f"# Cluster: {plan.nnodes} node(s) x {plan.gpus_per_node} GPU(s). On several nodes, start Ray first",
            "# (`ray start --head` here, `ray start --address=HEAD:6379` on the others) and run this on the head node;",
            "# the run directory must be on a file system every node sees."]),
        "set -euo pipefail",
        f"cd {shlex.quote(str(plan.run_dir))}",
        "export PYTHONUNBUFFERED=1 HYDRA_FULL_ERROR=1",
        *_cpu_lines(plan),
        f"export TENSORBOARD_DIR={shlex.quote(str(plan.tensorboard_dir))}",
        f"export VERL_FILE_LOGGER_PATH={shlex.quote(str(plan.metrics_file))}",
        "",
        "# 1. the problems in verl's dataset schema (skipped when the file is already there)",
        *exports,
        "",
        "# 2. training",
        format_command(command(override_list, python)) + f" \\\n    2>&1 | tee -a {shlex.quote(str(plan.log_file))}",
        "",
    ])


def _cpu_lines(plan: VerlPlan) -> list[str]:
    """CPU mode: the environment that loads justrl's CPU platform into verl (driver side)."""
    if not plan.cpu:
        return []
    from justrl.verl_engine.cpu_platform import CPU_ENV

    pairs = " ".join(f"{k}={shlex.quote(v)}" for k, v in CPU_ENV.items())
    return ["# verl on the CPU: justrl's platform module, loaded by verl (justrl/verl_engine/cpu_platform.py)",
            f"export {pairs}"]


def write_launch_script(recipe: Recipe, plan: VerlPlan, override_list: Sequence[str],
                        python: str = sys.executable) -> Path:
    """Write ``recipe.yaml`` and ``launch_verl.sh`` into the run directory; returns the script."""
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    recipe.save(plan.run_dir / "recipe.yaml")
    script = plan.run_dir / SCRIPT_NAME
    atomic_write_text(script, launch_script(recipe, plan, override_list, python))
    script.chmod(0o755)
    return script


def launch(recipe: Recipe, plan: VerlPlan, *, dry_run: bool = False, python: str = sys.executable,
           limits: Limits | None = None) -> int:
    """Check, write the launch script, print the command, and run it (unless ``dry_run``).

    The run is bounded by ``limits`` (default: none on a cluster; :data:`CPU_LIMITS` on the CPU):
    past them it is stopped with its Ray processes and :class:`~justrl.verl_engine.watchdog.VerlLaunchError`
    says why.

    The command on stdout is this function's output (the text of the script's training step);
    everything else is logged. Returns the script's exit status, 0 for a dry run. Raises
    :class:`~justrl.errors.VerlConfigError` before writing anything when verl would refuse a setting.
    """
    check_launch_imports(cpu=plan.cpu, rollout=not dry_run)
    override_list = overrides(recipe, plan)
    validate_overrides(override_list, expected=verl_settings(recipe, plan))
    script = write_launch_script(recipe, plan, override_list, python)
    log.info("verl %s: %d overrides compose with its ppo_trainer config",
             installed_verl_version(), len(override_list))
    for note in deviations(recipe):
        log.warning("note: %s", note)
    print(format_command(command(override_list, python)))
    log.info("launch script: %s", script)
    if dry_run:
        log.info("dry run: nothing started. Run it with: bash %s", shlex.quote(str(script)))
        return 0
    if limits is None:
        limits = CPU_LIMITS if plan.cpu else Limits()
    return run_bounded(["bash", str(script)], plan.log_file, limits)
