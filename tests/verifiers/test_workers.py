"""Verification workers start from their entry code, both ways, and run the full check."""

from __future__ import annotations

import pytest

from justrl.verifiers import Verdict, get, workers

START_WAIT_S = 120.0  # a generous bound on an interpreter importing sympy and Math-Verify


def _serve_one(worker: workers.Worker) -> Verdict:
    """Wait for ``worker`` to say it is ready, then have it check one answer that needs ``full``."""
    assert worker.conn.poll(START_WAIT_S), "the worker never said it was ready"
    message, pid = worker.conn.recv()
    assert (message, pid) == ("ready", worker.pid)
    worker.send(get("lenient"), [(7, "\\boxed{\\sqrt{2}}", "2^{1/2}")], START_WAIT_S)
    assert worker.conn.poll(START_WAIT_S), "the worker never answered"
    index, verdict = worker.conn.recv()
    assert index == 7
    return verdict


def test_a_worker_started_as_its_own_interpreter_serves_checks() -> None:
    # The path taken where there is no fork: `python -c` with the entry code, then worker_main.
    worker = workers.Worker(workers.DEFAULT_MEMORY_LIMIT_MB, None)
    try:
        assert worker.process is not None and worker.alive()
        verdict = _serve_one(worker)
    finally:
        worker.kill()
    assert verdict == Verdict(True, "\\sqrt{2}", "math-verify-equal")  # full ran: quick cannot say
    assert not worker.alive()


@pytest.mark.skip_ok
@pytest.mark.skipif(not workers.CAN_FORK, reason="no fork on this platform")
def test_a_worker_forked_by_the_zygote_serves_checks() -> None:
    zygote = workers.Zygote(workers.DEFAULT_MEMORY_LIMIT_MB)
    try:
        worker = workers.Worker(workers.DEFAULT_MEMORY_LIMIT_MB, zygote)
        try:
            assert worker.process is None and worker.alive()
            verdict = _serve_one(worker)
        finally:
            worker.kill()
    finally:
        zygote.close()
    assert verdict == Verdict(True, "\\sqrt{2}", "math-verify-equal")


def test_checks_run_inline_only_inside_a_worker() -> None:
    assert not workers.in_worker()  # here the pool bounds them
    assert get("lenient").quick("\\boxed{\\sqrt{2}}", "2^{1/2}") is None  # so this one needs a worker
