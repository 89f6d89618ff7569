"""Step metrics: health alarms, the metrics file cut back to a checkpoint on resume, and the W&B sink
in W&B's offline mode (read back from the run file it writes)."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import pytest

from justrl.dynamics import metrics


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
    (sink,) = metrics.make_sinks(["wandb"], run_dir, 10, 0, name="demo", config={"lr": 1e-6})
    sink.log(1, {"actor/entropy": 0.5, "critic/score/mean": -0.25})
    sink.log(2, {"actor/entropy": 0.25})
    sink.close()
    run_id = (run_dir / "wandb_run_id").read_text()
    ids, rows = _history(run_dir)
    assert ids == [run_id]
    assert rows == [{"_step": "1", "actor/entropy": "0.5", "critic/score/mean": "-0.25"},
                    {"_step": "2", "actor/entropy": "0.25"}]

    (again,) = metrics.make_sinks(["wandb"], run_dir, 10, 2)  # --resume
    again.log(3, {"actor/entropy": 0.125})
    again.close()
    ids, rows = _history(run_dir)
    assert ids == [run_id, run_id] and rows[-1] == {"_step": "3", "actor/entropy": "0.125"}


def test_wandb_not_installed_is_a_warning_not_a_crash(tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    sinks = metrics.make_sinks(["wandb", "jsonl"], tmp_path, 10, 0)
    assert [type(s).__name__ for s in sinks] == ["JsonlSink"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["loggers=wandb needs the wandb package (pip install wandb); skipping the W&B sink"]
    sinks[0].close()
    assert metrics.make_sinks(["neptune"], tmp_path, 10, 0) == []
    assert caplog.records[-1].getMessage() == ("unknown logger 'neptune'; known: console, jsonl, tensorboard, "
                                               "wandb, mlflow, trackio")
    for module, label in (("mlflow", "MLflow"), ("trackio", "trackio")):
        monkeypatch.setitem(sys.modules, module, None)
        if module == "mlflow":
            monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
        assert metrics.make_sinks([module], tmp_path, 10, 0) == []
        assert caplog.records[-1].getMessage() == (f"loggers={module} needs the {module} package (pip install "
                                                   f"{module}); skipping the {label} sink")


@pytest.mark.mlflow
def test_mlflow_sink_logs_to_a_local_store_and_a_resume_continues_the_same_run(tmp_path, monkeypatch) -> None:
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (sink,) = metrics.make_sinks(["mlflow"], run_dir, 10, 0, name="demo", config={"lr": 1e-6})
    sink.log(1, {"critic/score/mean": -0.5, "val-core/AIME24/acc/mean@4": 0.25})
    sink.log(2, {"critic/score/mean": 0.0})
    sink.close()
    run_id = (run_dir / "mlflow_run_id").read_text()
    (again,) = metrics.make_sinks(["mlflow"], run_dir, 10, 2)  # --resume
    again.log(3, {"critic/score/mean": 0.5})
    again.close()
    client = MlflowClient(tracking_uri=f"sqlite:///{(run_dir / 'mlflow.db').resolve()}")
    history = client.get_metric_history(run_id, "critic/score/mean")
    assert [(m.step, m.value) for m in history] == [(1, -0.5), (2, 0.0), (3, 0.5)]
    assert [m.value for m in client.get_metric_history(run_id, "val-core/AIME24/acc/mean_at_4")] == [0.25]
    run = client.get_run(run_id)
    assert run.data.params["lr"] == "1e-06" and run.info.run_name == "demo"
    assert len(client.search_runs([run.info.experiment_id])) == 1  # one run, continued


@pytest.mark.trackio
def test_trackio_sink_logs_locally_and_a_resume_continues_the_same_run(tmp_path, monkeypatch) -> None:
    pytest.importorskip("trackio")
    monkeypatch.setenv("TRACKIO_DIR", str(tmp_path / "trackio"))
    monkeypatch.setenv("TRACKIO_PROJECT", "justrl-test")
    monkeypatch.delenv("TRACKIO_SPACE_ID", raising=False)
    import trackio.sqlite_storage as storage

    if hasattr(storage, "TRACKIO_DIR"):
        monkeypatch.setattr(storage, "TRACKIO_DIR", tmp_path / "trackio", raising=False)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (sink,) = metrics.make_sinks(["trackio"], run_dir, 10, 0, name="demo", config={"lr": 1e-6})
    sink.log(1, {"critic/score/mean": -0.5})
    sink.close()
    name = (run_dir / "trackio_run").read_text()
    (again,) = metrics.make_sinks(["trackio"], run_dir, 10, 1)  # --resume
    again.log(2, {"critic/score/mean": 0.5})
    again.close()
    assert again.run_name == name and name.startswith("demo-")
    logs = storage.SQLiteStorage.get_logs("justrl-test", name)
    assert [(r["step"], r["critic/score/mean"]) for r in logs] == [(1, -0.5), (2, 0.5)]


def test_health_monitor_fires_each_alarm_once_per_episode() -> None:
    monitor = metrics.HealthMonitor(patience=3)
    healthy = {"actor/entropy": 0.5, "batch/groups_with_signal": 0.5, "response_length/clip_ratio": 0.0}
    assert monitor.check(healthy) == []
    collapsed = [monitor.check({**healthy, "actor/entropy": 0.001}) for _ in range(5)]
    assert [len(a) for a in collapsed] == [0, 0, 1, 0, 0] and "entropy collapse" in collapsed[2][0]
    stuck = [monitor.check({**healthy, "batch/groups_with_signal": 0.0}) for _ in range(3)]
    assert "reward stuck" in stuck[2][0]
    assert "non-finite metrics: actor/pg_loss" in monitor.check({**healthy, "actor/pg_loss": float("nan")})[0]
    again = metrics.HealthMonitor(patience=3)
    again.load_state_dict(json.loads(json.dumps(monitor.state_dict())))
    assert again == monitor


def test_truncate_jsonl_keeps_the_steps_up_to_the_checkpoint(tmp_path) -> None:
    path = tmp_path / "metrics.jsonl"
    sink = metrics.JsonlSink(path)
    for step in range(5):
        sink.log(step, {"critic/score/mean": step / 4, "actor/grad_norm": float("nan")})
    sink.close()
    with path.open("a") as handle:
        handle.write('{"step": 5, "critic/sc')  # a writer killed mid-line
    metrics.truncate_jsonl(path, 2)
    records = metrics.read_jsonl(path)
    assert [r["step"] for r in records] == [0, 1, 2] and records[2]["critic/score/mean"] == 0.5
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]  # no temporary file left
    metrics.truncate_jsonl(tmp_path / "absent.jsonl", 2)  # nothing to cut: no error, no file
    assert not (tmp_path / "absent.jsonl").exists()
