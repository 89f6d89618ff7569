"""Step metrics: health alarms, and the metrics file cut back to a checkpoint on resume."""

from __future__ import annotations

import json

from justrl import metrics as metrics_mod


def test_health_monitor_fires_each_alarm_once_per_episode() -> None:
    monitor = metrics_mod.HealthMonitor(patience=3)
    healthy = {"actor/entropy": 0.5, "batch/groups_with_signal": 0.5, "response_length/clip_ratio": 0.0}
    assert monitor.check(healthy) == []
    collapsed = [monitor.check({**healthy, "actor/entropy": 0.001}) for _ in range(5)]
    assert [len(a) for a in collapsed] == [0, 0, 1, 0, 0] and "entropy collapse" in collapsed[2][0]
    stuck = [monitor.check({**healthy, "batch/groups_with_signal": 0.0}) for _ in range(3)]
    assert "reward stuck" in stuck[2][0]
    assert "non-finite metrics: actor/pg_loss" in monitor.check({**healthy, "actor/pg_loss": float("nan")})[0]
    again = metrics_mod.HealthMonitor(patience=3)
    again.load_state_dict(json.loads(json.dumps(monitor.state_dict())))
    assert again == monitor


def test_truncate_jsonl_keeps_the_steps_up_to_the_checkpoint(tmp_path) -> None:
    path = tmp_path / "metrics.jsonl"
    sink = metrics_mod.JsonlSink(path)
    for step in range(5):
        sink.log(step, {"critic/score/mean": step / 4, "actor/grad_norm": float("nan")})
    sink.close()
    with path.open("a") as handle:
        handle.write('{"step": 5, "critic/sc')  # a writer killed mid-line
    metrics_mod.truncate_jsonl(path, 2)
    records = metrics_mod.read_jsonl(path)
    assert [r["step"] for r in records] == [0, 1, 2] and records[2]["critic/score/mean"] == 0.5
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]  # no temporary file left
    metrics_mod.truncate_jsonl(tmp_path / "absent.jsonl", 2)  # nothing to cut: no error, no file
    assert not (tmp_path / "absent.jsonl").exists()
