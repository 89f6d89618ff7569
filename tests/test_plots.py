"""Dynamics plots read both engines' logs and draw the paper's curves."""

from __future__ import annotations

import json

import pytest

from justrl import plots
from justrl.cli import main


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
    with pytest.raises(FileNotFoundError, match="no metrics.jsonl"):
        plots.load_run(tmp_path)


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
