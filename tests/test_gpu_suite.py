"""benchmarks/gpu_suite.py: skips cleanly without a GPU; every section runs at toy size on the CPU."""

from __future__ import annotations

import contextlib
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
    assert {"correctness", "generation", "long-pass", "grpo-step", "eval-hf"} <= set(results)
    assert {"torch", "transformers", "cuda"} <= set(results)
    assert results["correctness"]["greedy plain vs static compiled: rows identical"] == \
        results["correctness"]["greedy plain vs static compiled: rows"]
    assert results["generation"]["ratio"] > 0
    assert results["grpo-step"]["timing_s/update"] > 0


def test_the_json_is_rewritten_after_every_section(tmp_path: Path) -> None:
    """A run killed mid-way still leaves the finished sections' figures (seen before the end here)."""
    import json
    import time

    figures = tmp_path / "figures.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.Popen([sys.executable, str(SUITE), "--tiny", "--sections", "correctness,long-pass",
                             "--json", str(figures)], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    seen: list[set[str]] = []
    try:
        while proc.poll() is None:
            if figures.is_file():
                with contextlib.suppress(json.JSONDecodeError):  # caught mid-write
                    seen.append(set(json.loads(figures.read_text())))
            time.sleep(0.05)
        out = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert out.splitlines()[0].startswith("gpu_suite: device cpu, torch ")  # versions first
    assert any("torch" in keys and "correctness" not in keys for keys in seen)  # the header, before any section
    assert any("correctness" in keys and "long-pass" not in keys for keys in seen)  # after the first section
    final = json.loads(figures.read_text())
    assert final["correctness"]["sampled plain vs static (compaction on): rows identical"] == \
        final["correctness"]["sampled plain vs static (compaction on): rows"]
    assert final["correctness"]["compactions"] >= 1
    assert final["long-pass"]["estimated peak"] > 0
