"""``justrl eval --watch``: every checkpoint of a run scored into one table and one figure, resumable
after a kill without evaluating a finished step again, waiting while the run goes on."""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path

import pytest

from justrl import evaluate as E
from justrl import recipe as R
from justrl.evaluate import watch as W

RUN_MODULE = importlib.import_module("justrl.evaluate.run")  # where watch_run finds run()


def _checkpoint(run: Path, model: Path, step: int, complete: bool = True) -> None:
    """A native checkpoint as the trainer writes it: the model folder plus the trainer's state."""
    folder = run / "checkpoints" / f"step_{step}"
    shutil.copytree(model, folder)
    (folder / "trainer.pt").write_bytes(b"optimizer state")
    (folder / "train_state.json").write_text(json.dumps({"step": step}))
    if complete:
        (folder / "COMPLETE").write_text(f"step {step}\n")


def _run(tmp_path: Path, model: Path, steps: list[int], finished: bool = True) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    R.load("toy", [f"model={model}", "total_steps=100"]).save(run / "recipe.yaml")
    for step in steps:
        _checkpoint(run, model, step)
    _checkpoint(run, model, 75, complete=False)  # being written: never picked
    if finished:
        (run / "summary.json").write_text("{}")
    return run


def _config() -> E.EvalConfig:
    config = E.EvalConfig(model="set-per-step", benchmarks=["AIME24"])
    return E.apply_overrides(config, ["n=1", "limit=2", "max_tokens=4", "bootstrap=100"])


def test_watch_scores_every_checkpoint_and_resumes_after_a_kill(tiny_model, tmp_path, monkeypatch) -> None:
    run = _run(tmp_path, tiny_model, [50, 100])
    real_run, calls = E.run, []

    def killed_at_step_50(config, **kwargs):
        calls.append(Path(config.out).name)
        if Path(config.out).name == "step_50":
            raise KeyboardInterrupt  # the watcher is killed while evaluating step 50
        return real_run(config, **kwargs)

    monkeypatch.setattr(RUN_MODULE, "run", killed_at_step_50)
    with pytest.raises(KeyboardInterrupt):
        W.watch_run(run, _config(), poll_s=0)
    assert calls == ["step_0", "step_50"]
    assert [r["step"] for r in W.read_table(run / W.WATCH_DIR / W.TABLE_FILE)] == [0]
    shutil.rmtree(run / "checkpoints" / "step_50")  # the run rotated it away meanwhile: the copy remains
    (run / W.WATCH_DIR / W.TABLE_FILE).open("a").write('{"step": 50, "benchm')  # a line torn by the kill

    calls.clear()
    monkeypatch.setattr(RUN_MODULE, "run", lambda config, **kw: (calls.append(Path(config.out).name), real_run(config, **kw))[1])
    result = W.watch_run(run, _config(), poll_s=0)
    assert calls == ["step_50", "step_100"]  # step 0 was finished before the kill: not evaluated again
    assert result.finished and result.scored == [50, 100]
    rows = W.read_table(result.table)
    assert [(r["step"], r["benchmark"], r["n"]) for r in rows] == [(0, "AIME24", 1), (50, "AIME24", 1),
                                                                     (100, "AIME24", 1)]
    assert all(0.0 <= r["score"] <= 100.0 and r["problems"] == 2 for r in rows)
    assert result.figure is not None and result.figure.read_bytes()[:4] == b"\x89PNG"
    table_md = (result.out_dir / W.TABLE_MD).read_text()
    assert "| 100 |" in table_md
    # each later step against the first, as `justrl compare` computes it (the same tiny model: no
    # significant difference)
    marks = W.significance(result.out_dir, rows)
    assert sorted(marks) == [(50, "AIME24"), (100, "AIME24")]
    assert all(d.ci_low <= d.difference <= d.ci_high and not d.significant for d in marks.values())
    assert "difference from step 0" in table_md and " *" not in table_md
    assert not list((result.out_dir / "models").iterdir())  # copies deleted once scored
    assert W.watch_run(run, _config(), poll_s=0).scored == []  # all scored: nothing to do


def test_watch_waits_for_new_checkpoints_until_the_run_finishes(tiny_model, tmp_path, monkeypatch) -> None:
    run = _run(tmp_path, tiny_model, [], finished=False)
    naps: list[float] = []

    def the_run_goes_on(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 1:
            _checkpoint(run, tiny_model, 100)
        else:
            (run / "summary.json").write_text("{}")

    scored = []
    monkeypatch.setattr(RUN_MODULE, "run", lambda config, **kw: scored.append(Path(config.out).name) or _FakeResult())
    result = W.watch_run(run, _config(), base=False, every=50, poll_s=7, sleep=the_run_goes_on)
    assert naps == [7, 7] and scored == ["step_100"] and result.finished


def test_watch_gives_up_on_a_run_that_stopped_without_finishing(tiny_model, tmp_path, monkeypatch) -> None:
    run = _run(tmp_path, tiny_model, [], finished=False)
    now = iter(range(0, 10_000, 100))
    result = W.watch_run(run, _config(), base=False, poll_s=1, idle_exit_s=250, sleep=lambda s: None,
                     clock=lambda: float(next(now)))
    assert not result.finished and result.scored == []


def test_every_thins_the_checkpoints_and_verl_checkpoints_are_found(tmp_path) -> None:
    run = tmp_path / "run"
    for step in (50, 100, 150):
        (run / "checkpoints" / f"global_step_{step}" / "actor").mkdir(parents=True)
    (run / "checkpoints" / W.VERL_LATEST).write_text("100")  # 150 is still being written
    assert [c.step for c in W.checkpoints(run)] == [50, 100]
    assert [c.step for c in W.checkpoints(run, every=100)] == [100]
    assert W.run_finished(run, total_steps=100) and not W.run_finished(run, total_steps=4000)
    command = W.merge_command(run / "checkpoints" / "global_step_100" / "actor", tmp_path / "hf")
    assert command[1:5] == ["-m", "verl.model_merger", "merge", "--backend"] and "fsdp" in command


class _FakeResult:
    class summary:  # noqa: N801 - stands in for evaluate's Summary
        scores = [E.BenchmarkScore("AIME24", 1, 2, 2, 50.0, 0.0, 100.0, "f")]


def test_cli_eval_watch(tiny_model, tmp_path, capsys) -> None:
    from justrl.cli import main

    assert main(["eval"]) == 2 and "--watch RUN_DIR" in capsys.readouterr().err
    run = _run(tmp_path, tiny_model, [])
    assert main(["eval", "--watch", str(run), "--poll", "0", "n=1", "limit=2", "max_tokens=4", "bootstrap=100"]) == 0
    assert "curve.png (1 checkpoints scored now)" in capsys.readouterr().out  # the base model, step 0
    assert [r["benchmark"] for r in W.read_table(run / W.WATCH_DIR / W.TABLE_FILE)] == ["AIME24"]


def test_the_table_marks_steps_that_differ_significantly_from_the_first() -> None:
    from justrl.evaluate.compare import Difference

    rows = [{"step": s, "benchmark": "AIME24", "n": 32, "score": v} for s, v in [(0, 20.0), (50, 35.0)]]
    better = Difference("AIME24", "step_0", "step_50", 30, ("32", "32"), 20.0, 35.0, 15.0, 5.0, 25.0,
                        0.001, 0.002, True)
    text = W.render_table(rows, {(50, "AIME24"): better})
    assert "| 50 | 35.0 (avg@32) +15.0 [+5.0, +25.0] * |" in text
    assert "| 0 | 20.0 (avg@32) |" in text and "Holm-adjusted" in text
    assert W.render_table(rows).count("*") == 0  # no marks: plain scores
