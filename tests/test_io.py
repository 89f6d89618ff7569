"""Run folders and evaluation folders refuse each other."""

from __future__ import annotations

import pytest

from justrl import io
from justrl.errors import ConfigError


def test_each_command_refuses_the_others_folder(tmp_path) -> None:
    io.refuse_run_folder(tmp_path)  # empty: anyone's
    io.refuse_eval_folder(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(ConfigError, match="a training run's folder \\(it has checkpoints\\)"):
        io.refuse_run_folder(tmp_path)
    io.refuse_eval_folder(tmp_path)
    (tmp_path / "eval_config.json").write_text("{}")
    with pytest.raises(ConfigError, match="an evaluation's folder \\(it has eval_config.json\\)"):
        io.refuse_eval_folder(tmp_path)


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_sweep_staging_deletes_dead_writers_leftovers_only(tmp_path) -> None:
    import os

    dead = _dead_pid()
    sub = tmp_path / "checkpoints"
    sub.mkdir()
    gone = [tmp_path / f".summary.json.{dead}.tmp", sub / f".tmp-step_4-{dead}", tmp_path / f".final.old.{dead}"]
    gone[0].write_text("half")
    for folder in gone[1:]:
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"half")
    kept = [tmp_path / f".metrics.jsonl.{os.getpid()}.tmp",  # a live writer's (this process)
            tmp_path / "summary.json", tmp_path / ".hidden.tmp", tmp_path / f"step_{dead}"]
    for path in kept:
        path.write_text("x")
    assert sorted(io.sweep_staging(tmp_path)) == sorted(gone)
    assert not any(p.exists() for p in gone) and all(p.exists() for p in kept)


def test_sweep_staging_with_only_leaves_other_names_alone(tmp_path) -> None:
    dead = _dead_pid()
    mine, other = tmp_path / f".e.parquet.{dead}.tmp", tmp_path / f".notes.txt.{dead}.tmp"
    mine.write_text("half")
    other.write_text("someone else's")
    assert io.sweep_staging(tmp_path, depth=0, only="e.parquet") == [mine]
    assert other.exists()


def test_staging_file_is_what_atomic_write_writes_aside(tmp_path, monkeypatch) -> None:
    import os

    seen = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (seen.append(a), real_replace(a, b)))
    io.atomic_write_text(tmp_path / "a.json", "{}")
    assert seen == [io.staging_file(tmp_path / "a.json")]
