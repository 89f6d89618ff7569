"""Fixtures shared by the verifier tests: the labeled set, live verdicts on it, benchmark answers."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from justrl import verifiers
from justrl.verifiers import Verdict

CASES_FILE = Path(__file__).resolve().parents[1] / "fixtures" / "verifier_cases.jsonl"


@pytest.fixture(scope="session")
def ground_truths(data_dir: Path) -> list[str]:
    """The ground truths of the nine benchmarks, as their files write them."""
    truths: list[str] = []
    for path in sorted(data_dir.glob("*/test.parquet")):
        for row in pq.read_table(path).to_pylist():
            truths.append(row["reward_model"]["ground_truth"] if "reward_model" in row else row["answer"])
    if len(truths) != 1646:
        pytest.skip(f"benchmarks not found under {data_dir}")
    return truths


@pytest.fixture(scope="session")
def cases() -> list[dict]:
    """The hand-labelled (ground truth, response, truth, expected verdict per verifier) cases."""
    return [json.loads(line) for line in CASES_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def live_verdicts(cases) -> dict[str, list[Verdict]]:
    """Every registered verifier's verdicts on the labeled set."""
    responses = [c["response"] for c in cases]
    truths = [c["ground_truth"] for c in cases]
    return {
        name: verifiers.verify_batch(name, responses, truths, timeout_s=5.0)
        for name in verifiers.known_verifiers()
    }


@pytest.fixture(scope="session")
def warm_pool() -> None:
    """Workers started and their parsers warm, so time-bound tests measure checks, not start-up."""
    verifiers.verify_batch("lenient", ["\\boxed{\\sqrt{2}}"] * 4, ["2^{1/2}"] * 4)
