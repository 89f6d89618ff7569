"""benchmarks/gpu_suite.py: skips cleanly without a GPU; every section runs at toy size on the CPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "benchmarks" / "gpu_suite.py"


def _run(*args: str, timeout: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run([sys.executable, str(SUITE), *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=ROOT)


def test_without_a_gpu_it_says_why_and_exits_0() -> None:
    done = _run(timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert "skipped: no CUDA GPU" in lines[0]
    assert lines[-1] == "ratio rollout/plain-generate: n/a (skipped: no GPU)"


@pytest.mark.slow
def test_every_section_runs_at_toy_size(data_dir: Path, tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    done = _run("--tiny", "--data-dir", str(data_dir), "--json", str(figures), timeout=900)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "failed" not in out and "timed out" not in out and "skipped" not in out, out
    assert out.strip().splitlines()[-1].startswith("ratio rollout/plain-generate: ")
    assert "n/a" not in out.strip().splitlines()[-1]
    import json

    results = json.loads(figures.read_text())
    assert {"generation", "long-pass", "grpo-step", "eval-hf"} <= set(results)
    assert results["generation"]["ratio"] > 0
    assert results["grpo-step"]["timing_s/update"] > 0
