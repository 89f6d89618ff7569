"""verify_batch: input order, argument checks, and a batch that outlives its workers."""

from __future__ import annotations

import os
import random
import signal

import pytest

from justrl import verifiers
from justrl.verifiers import get

# Far above any of these checks' cost, so a busy machine cannot turn a verdict into a timeout.
BOUND_S = 10.0


def _mixed_batch(n: int) -> tuple[list[str], list[str]]:
    rng = random.Random(3)
    answers = [("\\sqrt{2}", "2^{1/2}"), ("\\frac{1}{2}", "0.5"), ("7", "7"), ("x \\le 3", "(-\\infty, 3]")]
    answers += [("\\{3, 1, 2\\}", "\\{1,2,3\\}"), ("8", "7"), ("\\dfrac{3}{4}", "0.75"), ("(1,2)", "(2,1)")]
    responses, truths = [], []
    for i in range(n):
        answer, truth = rng.choice(answers)
        responses.append(f"Step {i}. " * rng.randint(1, 50) + f"So \\boxed{{{answer}}}")
        truths.append(truth)
    return responses, truths


def test_verify_batch_keeps_input_order(warm_pool) -> None:
    responses, truths = _mixed_batch(60)
    batch = verifiers.verify_batch("justrl-eval", responses, truths, workers=2, timeout_s=BOUND_S)
    single = [get("justrl-eval", timeout_s=BOUND_S)(r, t) for r, t in zip(responses, truths)]
    assert batch == single
    assert len({v.correct for v in batch}) == 2


def test_verify_batch_survives_a_killed_worker(warm_pool) -> None:
    responses, truths = _mixed_batch(120)
    # A slow item keeps workers busy, so the kill lands mid-batch.
    responses[5], truths[5] = "\\boxed{1000000!}", "5"
    before = verifiers.pool_stats()
    killed: list[int] = []

    def kill_one(done: int) -> None:
        busy = verifiers.worker_pids(busy_only=True)  # this batch's workers, once they serve it
        if busy and not killed:
            os.kill(busy[0], signal.SIGKILL)
            killed.append(busy[0])

    batch = verifiers.verify_batch("lenient", responses, truths, workers=2, timeout_s=BOUND_S, progress=kill_one)
    after = verifiers.pool_stats()
    assert killed and after.worker_deaths > before.worker_deaths
    assert killed[0] not in verifiers.worker_pids()
    expected = [get("lenient", timeout_s=BOUND_S)(r, t) for r, t in zip(responses, truths)]
    # The slow item's verdict may be undecided (its cost depends on the machine); never right.
    assert not batch[5].correct and not expected[5].correct
    assert batch[:5] + batch[6:] == expected[:5] + expected[6:]


def test_verify_batch_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="known verifiers"):
        verifiers.verify_batch("nope", ["a"], ["b"])
    with pytest.raises(ValueError, match="ground truths"):
        verifiers.verify_batch("lenient", ["a", "b"], ["b"])
    assert verifiers.verify_batch("lenient", [], []) == []


def test_verify_batch_replaces_workers_that_died_while_idle(warm_pool) -> None:
    responses, truths = _mixed_batch(30)
    expected = [get("lenient", timeout_s=BOUND_S)(r, t) for r, t in zip(responses, truths)]
    for pid in verifiers.worker_pids():
        os.kill(pid, signal.SIGKILL)
    assert verifiers.verify_batch("lenient", responses, truths, workers=2, timeout_s=BOUND_S) == expected
