"""Metric sinks: the W&B sink in W&B's offline mode, read back from the run file it writes."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest

from justrl import metrics


@pytest.fixture
def wandb_offline(tmp_path, monkeypatch) -> None:
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_PROJECT", "justrl-tests")
    for var in ("WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb-home"))


def _wandb_records(run_file: Path) -> list:
    """The records of an offline ``.wandb`` file (LevelDB log framing: 32 KiB blocks, 7-byte headers)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = run_file.read_bytes()
    assert data[:4] == b":W&B"
    records, pending, pos, block = [], b"", 7, 32768
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if length == 0 and kind == 0:
            break
        pending += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last chunk of one
            record = pb.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def _history(run_dir: Path) -> tuple[list[str], list[dict[str, str]]]:
    """(run ids, logged rows without W&B's own keys) of every offline run below ``run_dir``."""
    import wandb

    wandb.teardown()  # W&B's service process writes the run file; this waits until it has finished
    ids, rows = [], []
    for run_file in sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb")):
        for record in _wandb_records(run_file):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                ids.append(record.run.run_id)
            elif kind == "history":
                items = {i.key or "/".join(i.nested_key): i.value_json for i in record.history.item}
                rows.append({k: v for k, v in items.items() if k == "_step" or not k.startswith("_")})
    return ids, rows


def test_wandb_sink_logs_steps_offline_and_a_resume_continues_the_same_run(tmp_path, wandb_offline) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    warnings: list[str] = []
    (sink,) = metrics.make_sinks(["wandb"], run_dir, 10, 0, warnings.append, name="demo", config={"lr": 1e-6})
    sink.log(1, {"actor/entropy": 0.5, "critic/score/mean": -0.25})
    sink.log(2, {"actor/entropy": 0.25})
    sink.close()
    run_id = (run_dir / "wandb_run_id").read_text()
    ids, rows = _history(run_dir)
    assert warnings == [] and ids == [run_id]
    assert rows == [{"_step": "1", "actor/entropy": "0.5", "critic/score/mean": "-0.25"},
                    {"_step": "2", "actor/entropy": "0.25"}]

    (again,) = metrics.make_sinks(["wandb"], run_dir, 10, 2, warnings.append)  # --resume
    again.log(3, {"actor/entropy": 0.125})
    again.close()
    ids, rows = _history(run_dir)
    assert ids == [run_id, run_id] and rows[-1] == {"_step": "3", "actor/entropy": "0.125"}


def test_wandb_not_installed_is_a_warning_not_a_crash(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    warnings: list[str] = []
    sinks = metrics.make_sinks(["wandb", "jsonl"], tmp_path, 10, 0, warnings.append)
    assert [type(s).__name__ for s in sinks] == ["JsonlSink"]
    assert warnings == ["loggers=wandb needs the wandb package (pip install wandb); skipping the W&B sink"]
    sinks[0].close()
    assert metrics.make_sinks(["mlflow"], tmp_path, 10, 0, warnings.append) == []
    assert warnings[-1] == "unknown logger 'mlflow'; known: console, jsonl, tensorboard, wandb"
