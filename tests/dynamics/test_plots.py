"""Dynamics plots read both engines' logs and draw the paper's curves."""

from __future__ import annotations

import json

import pytest

from justrl.cli import main
from justrl.dynamics import metrics, plots
from justrl.errors import ConfigError, DataError


def _write_run(directory, steps: int, entropy0: float) -> None:
    directory.mkdir(parents=True)
    with (directory / "metrics.jsonl").open("w") as handle:
        for step in range(1, steps + 1):
            row = {"step": step, "actor/entropy": entropy0 / step, "critic/score/mean": -1 + step / steps,
                   "response_length/mean": 10.0 + step, "note": "text is ignored"}
            handle.write(json.dumps(row) + "\n")
        handle.write('{"step": 99, "actor/entr')  # a torn last line from a killed run


def test_reads_jsonl_and_skips_torn_line(tmp_path) -> None:
    _write_run(tmp_path / "a", 5, 2.0)
    run = plots.load_run(tmp_path / "a")
    steps, values = run.get("actor/entropy")
    assert steps == [1, 2, 3, 4, 5]
    assert values[0] == pytest.approx(2.0) and values[-1] == pytest.approx(0.4)
    assert "note" not in run.series


def test_reads_tensorboard_events(tmp_path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(tmp_path / "tb"))
    for step in range(3):
        writer.add_scalar("actor/entropy", 1.0 - 0.1 * step, step)
        writer.add_scalar("val-core/AIME24/acc/mean@1", 0.1 * step, step)
        writer.add_scalar("val-core/AMC23/acc/mean@1", 0.3 * step, step)
    writer.close()
    run = plots.load_run(tmp_path / "tb")
    assert run.get("actor/entropy")[1] == pytest.approx([1.0, 0.9, 0.8])
    assert run.get("val/acc")[1] == pytest.approx([0.0, 0.2, 0.4])


def test_reads_verl_file_logger_rows(tmp_path) -> None:
    rows = [{"step": s, "data": {"actor/entropy": 1.0 / s, "critic/score/mean": 0.1 * s}} for s in (1, 2)]
    (tmp_path / "verl.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    run = plots.load_run(tmp_path / "verl.jsonl")
    assert run.get("critic/score/mean") == ([1, 2], pytest.approx([0.1, 0.2]))


def test_smoothing_is_debiased_ema() -> None:
    assert plots.smooth([1.0, 1.0, 1.0], 0.9) == pytest.approx([1.0, 1.0, 1.0])
    assert plots.smooth([0.0, 10.0], 0.5) == pytest.approx([0.0, 10.0 * 0.5 / 0.75])


def test_cli_plots_two_runs(tmp_path) -> None:
    _write_run(tmp_path / "base", 6, 2.0)
    _write_run(tmp_path / "penalty", 6, 1.0)
    out = tmp_path / "cmp.png"
    assert main(["plot", str(tmp_path / "base"), str(tmp_path / "penalty"), "--out", str(out), "--smooth", "0.5"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_logs_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(DataError, match="no metrics.jsonl"):
        plots.load_run(tmp_path)
    with pytest.raises(DataError, match="no such run folder"):
        plots.load_run(tmp_path / "gone")
    (tmp_path / "metrics.jsonl").write_text("")
    with pytest.raises(DataError, match=r"metrics\.jsonl: no step metrics logged yet"):
        plots.load_run(tmp_path)
    (tmp_path / "metrics.jsonl").write_text('[1, 2]\n"text"\n{"step": null, "x": 1}\n')  # no step records
    with pytest.raises(DataError, match="no step metrics logged yet"):
        plots.load_run(tmp_path)
    (tmp_path / "metrics.jsonl").write_bytes(b"\xff\xfe binary")
    with pytest.raises(DataError, match="not UTF-8 text"):
        plots.load_run(tmp_path)


@pytest.mark.parametrize("weight", [1.0, 1.5, -0.1, float("nan")])
def test_smoothing_outside_0_1_is_refused(weight) -> None:
    with pytest.raises(ConfigError, match=r"smoothing weight must be in \[0, 1\)"):
        plots.smooth([1.0, 2.0], weight)


def test_cli_plot_short_out_flag(tmp_path) -> None:
    _write_run(tmp_path / "run", 3, 1.0)
    assert main(["plot", str(tmp_path / "run"), "-o", str(tmp_path / "o.png")]) == 0
    assert (tmp_path / "o.png").read_bytes()[:4] == b"\x89PNG"


def test_health_replay_flags_entropy_collapse(tmp_path, capsys) -> None:
    run = tmp_path / "collapsing"
    run.mkdir()
    rows = [{"step": s, "actor/entropy": 0.5 if s < 4 else 0.001, "critic/score/mean": 0.0} for s in range(1, 12)]
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert main(["health", str(run)]) == 1
    out = capsys.readouterr().out
    assert "step 8: entropy collapse" in out  # below the floor from step 4, alarm after 5 steps
    _write_run(tmp_path / "fine", 6, 2.0)
    assert main(["health", str(tmp_path / "fine")]) == 0


def test_health_json_and_exit_codes(tmp_path, capsys) -> None:
    _write_run(tmp_path / "fine", 6, 2.0)
    run = tmp_path / "collapsing"
    run.mkdir()
    rows = [{"step": s, "actor/entropy": 0.001} for s in range(1, 4)]
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert main(["health", str(tmp_path / "fine"), str(run), "--patience", "2", "--json"]) == 1
    reports = json.loads(capsys.readouterr().out)
    assert [(r["healthy"], r["last_step"]) for r in reports] == [(True, 6), (False, 3)]
    assert reports[1]["alarms"][0]["step"] == 2 and "entropy collapse" in reports[1]["alarms"][0]["message"]
    assert main(["health", str(tmp_path / "fine"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["alarms"] == []


def test_health_refuses_what_it_cannot_judge(tmp_path) -> None:
    (tmp_path / "metrics.jsonl").write_text("")
    with pytest.raises(DataError, match="no step metrics"):
        metrics.check_health(tmp_path)
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 0, "val/acc": 0.1}) + "\n")
    with pytest.raises(DataError, match="no training step logged yet"):
        metrics.check_health(tmp_path)
    for patience in (0, -1):
        with pytest.raises(ConfigError, match="patience must be a whole number of steps >= 1"):
            metrics.check_health(tmp_path, patience=patience)
    with pytest.raises(ConfigError, match="entropy floor must be a number >= 0"):
        metrics.HealthMonitor(entropy_floor=-0.1)
