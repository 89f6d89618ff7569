"""verl 0.9.1 run for real on the CPU: ``justrl train --engine verl --recipe toy`` end to end.

These run in the verl CPU environment, ``.venv-verl`` (scripts/setup_verl_cpu.sh; `.ci/run` runs
them there as ``-m verl_cpu``), and are deselected wherever vLLM or verl's V1 trainer is missing. The
run is justrl's own launch (its rendered overrides, the toy data exported by the launch script,
the reward through ``justrl.verl_reward``), 4 steps with validation and two checkpoints; it takes
a few minutes on 2 cores, bounded by the launch's watchdog and the test's timeout. One extra verl
override (``trainer.rollout_data_dir``) dumps the training rollouts, so the test can score them again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.verl_cpu, pytest.mark.slow]

from justrl.dynamics import metrics as metrics_mod  # noqa: E402
from justrl.verl_engine import reward as verl_reward  # noqa: E402

STEPS = 4
NATIVE_ONLY = {"step", "acc/mean", "rollout/logprob_diff", "tokens/total"}
"""STEP_METRICS keys only the native engine logs; every other one is verl's name too."""
SHARED_METRICS = sorted(set(metrics_mod.STEP_METRICS) - NATIVE_ONLY)


def _justrl(*args: str, timeout: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    return subprocess.run([sys.executable, "-m", "justrl.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture(scope="module")
def verl_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    run = tmp_path_factory.mktemp("verl-cpu") / "run"
    done = _justrl("train", "--engine", "verl", "--recipe", "toy", "--run-dir", str(run),
                   f"total_steps={STEPS}", "save_every=2", f"trainer.rollout_data_dir={run / 'rollouts'}",
                   timeout=3000)
    return run, done


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_the_run_exits_0_with_four_steps_of_the_recipes_metrics(verl_run) -> None:
    run, done = verl_run
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    assert (run / "data" / "train.parquet").is_file()  # exported by the launch script itself
    assert (run / "data" / "val" / "toy-arithmetic.parquet").is_file()
    rows = {row["step"]: row["data"] for row in _rows(run / "verl_metrics.jsonl")}
    assert set(range(1, STEPS + 1)) <= set(rows)
    for step in range(1, STEPS + 1):
        missing = [k for k in SHARED_METRICS if k not in rows[step]]
        assert not missing, f"step {step} lacks {missing}"
    assert "val-core/toy-arithmetic/acc/mean@4" in rows[0]  # validation before training ...
    assert "val-core/toy-arithmetic/acc/mean@4" in rows[STEPS]  # ... and after the last step
    assert (run / "checkpoints" / "latest_checkpointed_iteration.txt").read_text().strip() == str(STEPS)
    assert sorted(p.name for p in (run / "checkpoints").glob("global_step_*")) == ["global_step_2", "global_step_4"]


def test_critic_score_mean_is_justrls_reward(verl_run) -> None:
    run, done = verl_run
    assert done.returncode == 0
    rows = {row["step"]: row["data"] for row in _rows(run / "verl_metrics.jsonl")}
    for step in range(1, STEPS + 1):
        dumped = _rows(run / "rollouts" / f"{step}.jsonl")
        assert len(dumped) == 32 * 8  # prompts_per_step x rollouts_per_prompt
        rescored = [verl_reward.compute_score("toy-arithmetic", r["output"], r["gts"], verifier="dapo-strict")
                    for r in dumped]
        assert [r["score"] for r in rescored] == [r["score"] for r in dumped]
        mean = sum(r["score"] for r in rescored) / len(rescored)
        assert rows[step]["critic/score/mean"] == pytest.approx(mean, abs=1e-6)
    for step in (0, STEPS):  # validation dumps carry the extra keys only justrl's reward returns
        dumped = _rows(run / "validation" / f"{step}.jsonl")
        assert len(dumped) == 200 * 4  # the held-out sums x val_samples
        for row in dumped:
            again = verl_reward.compute_score("toy-arithmetic", row["output"], row["gts"], verifier="dapo-strict",
                                              val_verifier="dapo-strict")
            assert (again["score"], again["acc"], again["pred"]) == (row["score"], row["acc"], row["pred"])


def test_watch_merges_the_checkpoints_with_verls_merger_and_scores_them(verl_run) -> None:
    run, done = verl_run
    assert done.returncode == 0
    watched = _justrl("eval", "--watch", str(run), "n=2", "max_tokens=24", "limit=4", "device=cpu", timeout=1200)
    assert watched.returncode == 0, watched.stderr[-3000:]
    assert watched.stderr.count("with verl's model merger") == 2
    table = _rows(run / "eval_watch" / "curve.jsonl")
    assert sorted(r["step"] for r in table) == [0, 2, 4]
    assert all(r["problems"] == 4 and r["samples"] == 8 for r in table)
    assert (run / "eval_watch" / "curve.png").is_file()


def test_plot_draws_verls_metrics(verl_run, tmp_path) -> None:
    run, done = verl_run
    assert done.returncode == 0
    out = tmp_path / "dynamics.png"
    plotted = _justrl("plot", str(run), "-o", str(out), timeout=300)
    assert plotted.returncode == 0, plotted.stderr[-2000:]
    assert out.stat().st_size > 10_000


def test_compare_explains_why_a_verl_run_is_not_an_evaluation(verl_run) -> None:
    run, done = verl_run
    assert done.returncode == 0
    compared = _justrl("compare", str(run), str(run), timeout=300)
    assert compared.returncode == 2
    assert "a training run (verl engine), not an evaluation" in compared.stderr
