"""The time bound: a shared pool of verification workers, killed when a check overruns.

:func:`run_checked` is how a verifier is called: its cheap ``quick`` check here, its ``full``
check in a worker bounded by ``timeout_s``. A batch (:func:`justrl.verifiers.verify_batch`) is
spread over several workers in chunks; a worker that overruns is killed and replaced, and its
item is retried once, after the rest of the batch, on a fresh worker with a bound
:data:`RETRY_FACTOR` times larger -- so a busy machine does not turn a verdict into a timeout.
An item that overruns that too is *undecided* (``Verdict.undecided``): neither right nor wrong,
and reported apart. A worker that dies is replaced and its item retried once. Idle workers are
kept for the next call.
"""

from __future__ import annotations

import atexit
import math
import multiprocessing.connection
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

from justrl import logs
from justrl.verifiers.base import Checked, Verdict
from justrl.verifiers.workers import (
    CAN_FORK,
    DEFAULT_MEMORY_LIMIT_MB,
    Worker,
    WorkerDied,
    Zygote,
    full_safely,
    in_worker,
)

_log = logs.get(__name__)

RETRY_FACTOR = 4.0  # an item that overran its bound is retried once with this many times the bound


def run_checked(verifier: Checked, response: str, ground_truth: str) -> Verdict:
    """``verifier.quick`` here, else ``verifier.full`` in a worker bounded by ``timeout_s``."""
    verdict = verifier.quick(response, ground_truth)
    if verdict is not None:
        return verdict
    if in_worker():
        return full_safely(verifier, response, ground_truth)
    return _POOL.run_one(verifier, response, ground_truth, verifier.timeout_s)


@dataclass
class PoolStats:
    items: int = 0  # items sent to workers (those ``quick`` could not settle)
    timeouts: int = 0  # overruns of the first bound (each item then retried with a larger one)
    undecided: int = 0  # items that overran the larger bound too
    worker_deaths: int = 0
    retries: int = 0  # items retried after their worker died


class _WorkerPool:
    """Worker processes shared by single calls and batches; idle ones are kept for reuse."""

    def __init__(self) -> None:
        self._idle: list[Worker] = []
        self._lock = threading.Lock()
        self.memory_limit_mb = int(os.environ.get("JUSTRL_VERIFIER_MEMORY_MB", DEFAULT_MEMORY_LIMIT_MB))
        self.stats = PoolStats()
        self._busy: set[Worker] = set()
        self._zygote: Zygote | None = None
        self._zygote_lock = threading.Lock()

    def _new_worker(self) -> Worker:
        if not CAN_FORK:
            return Worker(self.memory_limit_mb, None)
        for attempt in range(2):
            with self._zygote_lock:
                if self._zygote is None:
                    self._zygote = Zygote(self.memory_limit_mb)
                zygote = self._zygote
            try:
                return Worker(self.memory_limit_mb, zygote)
            except (OSError, ValueError, WorkerDied):
                with self._zygote_lock:
                    if self._zygote is zygote:
                        self._zygote = None
                zygote.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def acquire(self) -> Worker:
        """An idle worker (a ready one first), else a new one (which starts in the background)."""
        with self._lock:
            alive = [w for w in self._idle if w.alive()]
            for worker in self._idle:
                if worker not in alive:
                    worker.kill()
            alive.sort(key=Worker.poll_ready)  # ready ones last, popped first
            self._idle = alive
            if self._idle:
                worker = self._idle.pop()
                self._busy.add(worker)
                return worker
        worker = self._new_worker()
        with self._lock:
            self._busy.add(worker)
        return worker

    def release(self, worker: Worker, healthy: bool = True) -> None:
        with self._lock:
            self._busy.discard(worker)
            if healthy and len(self._idle) < 2 * cpu_count():
                worker.pending.clear()
                self._idle.append(worker)
                return
        worker.kill()

    def worker_pids(self, busy_only: bool = False) -> list[int]:
        with self._lock:
            busy = [w.pid for w in self._busy]
            return busy if busy_only else busy + [w.pid for w in self._idle]

    def shutdown(self) -> None:
        with self._lock:
            workers = self._idle + list(self._busy)
            self._idle, self._busy = [], set()
        for worker in workers:
            worker.kill()
        with self._zygote_lock:
            zygote, self._zygote = self._zygote, None
        if zygote is not None:
            zygote.close()

    def run_one(self, verifier: Checked, response: str, truth: str, timeout_s: float) -> Verdict:
        results = self.run_many(verifier, [(0, response, truth)], timeout_s, workers=1)
        return results[0]

    def run_many(
        self,
        verifier: Checked,
        items: list[tuple[int, str, str]],
        timeout_s: float,
        workers: int,
        chunk_size: int = 8,
        progress: Callable[[int], None] | None = None,
        retry_timeout_s: float | None = None,
    ) -> dict[int, Verdict]:
        """Verdicts for ``items`` by index, each bounded by ``timeout_s`` of worker time; those that
        overrun it are retried once with ``retry_timeout_s`` (default ``RETRY_FACTOR *
        timeout_s``), then undecided."""
        first = _Batch(self, verifier, items, timeout_s, workers, chunk_size, progress)
        results = first.run()
        if first.timed_out:
            done = len(results)
            relay = None if progress is None else (lambda n: progress(done + n))
            retry_s = retry_timeout_s if retry_timeout_s is not None else timeout_s * RETRY_FACTOR
            second = _Batch(self, verifier, first.timed_out, retry_s, workers, 1, relay, first_bound_s=timeout_s)
            results.update(second.run())
        return results


class _Batch:
    """One batch over a set of workers: dispatch chunks, collect, replace overrunning or dead ones.

    Workers start (and restart) asynchronously: the loop keeps serving the others meanwhile, so a
    replacement never stretches another item's time bound.
    """

    MAX_TRIES = 2  # an item whose worker died is retried once on a fresh worker
    MAX_START_FAILURES = 3  # workers that die while starting, in a row, before giving up

    def __init__(
        self,
        pool: _WorkerPool,
        verifier: Checked,
        items: list[tuple[int, str, str]],
        timeout_s: float,
        workers: int,
        chunk_size: int,
        progress: Callable[[int], None] | None,
        first_bound_s: float | None = None,
    ) -> None:
        self.pool, self.verifier, self.timeout_s = pool, verifier, timeout_s
        self.first_bound_s = first_bound_s  # set on the retry of items that overran this bound
        self.timed_out: list[tuple[int, str, str]] = []  # to retry with a larger bound
        self.todo: deque[tuple[int, str, str]] = deque(items)
        self.results: dict[int, Verdict] = {}
        self.tries: dict[int, int] = {}
        self.n_workers = max(1, min(workers, len(items)))
        self.chunk_size = max(1, min(chunk_size, len(items) // self.n_workers or 1))
        self.progress = progress
        self.total = len(items)
        self.start_failures = 0
        self.workers: list[Worker] = []
        pool.stats.items += len(items)

    def run(self) -> dict[int, Verdict]:
        try:
            while len(self.workers) < self.n_workers:
                self.workers.append(self.pool.acquire())
            while len(self.results) + len(self.timed_out) < self.total:
                self._step()
        finally:
            for worker in self.workers:
                self.pool.release(worker, healthy=not worker.pending and worker.alive())
        return self.results

    def _feed(self, worker: Worker) -> None:
        if not worker.ready or worker.pending or not self.todo:
            return
        chunk = [self.todo.popleft() for _ in range(min(self.chunk_size, len(self.todo)))]
        try:
            worker.send(self.verifier, chunk, self.timeout_s)
        except OSError:  # it died while idle
            self._died(worker)

    def _step(self) -> None:
        for worker in self.workers:
            self._feed(worker)
        watched = [w for w in self.workers if w.pending or not w.ready]
        wait_s = max(0.0, min(w.deadline for w in watched) - time.monotonic())
        ready = multiprocessing.connection.wait([w.conn for w in watched], timeout=wait_s)
        for worker in watched:
            if worker.conn in ready:
                self._receive(worker)
            elif time.monotonic() >= worker.deadline:
                self._overrun(worker)

    def _receive(self, worker: Worker) -> None:
        try:
            if not worker.ready:
                worker.conn.recv()  # the "ready" message
                worker.ready, worker.deadline = True, math.inf
                self.start_failures = 0
                return
            while worker.pending and worker.conn.poll():
                index, verdict = worker.conn.recv()
                head = worker.pending.popleft()
                assert head[0] == index, "worker answered out of order"
                self._record(index, verdict)
                worker.deadline = time.monotonic() + self.timeout_s
        except (EOFError, OSError):
            self._died(worker)

    def _record(self, index: int, verdict: Verdict) -> None:
        self.results[index] = verdict
        if self.progress is not None:
            self.progress(len(self.results))

    def _replace(self, worker: Worker) -> None:
        self.pool.release(worker, healthy=False)
        self.workers[self.workers.index(worker)] = self.pool.acquire()

    def _requeue_rest(self, worker: Worker) -> None:
        self.todo.extendleft(reversed(worker.pending))
        worker.pending.clear()

    def _overrun(self, worker: Worker) -> None:
        if not worker.ready:
            self._start_failed(worker, "did not start in time")
            return
        item = worker.pending.popleft()
        _log.debug("verification worker %d overran %gs on item %d: replaced", worker.pid, self.timeout_s, item[0])
        if self.first_bound_s is None:
            self.pool.stats.timeouts += 1
            self.timed_out.append(item)
        else:
            self.pool.stats.undecided += 1
            why = f"undecided: no verdict within {self.first_bound_s:g}s, nor {self.timeout_s:g}s on a retry"
            self._record(item[0], Verdict(False, None, why, undecided=True))
        self._requeue_rest(worker)
        self._replace(worker)

    def _died(self, worker: Worker) -> None:
        if not worker.ready:
            self._start_failed(worker, "exited while starting")
            return
        self.pool.stats.worker_deaths += 1
        _log.debug("verification worker %d died: replaced", worker.pid)
        if worker.pending:
            index, response, truth = worker.pending.popleft()
            self.tries[index] = self.tries.get(index, 1) + 1
            if self.tries[index] <= self.MAX_TRIES:
                self.pool.stats.retries += 1
                self.todo.appendleft((index, response, truth))
            else:
                self._record(index, Verdict(False, None, "worker-died"))
        self._requeue_rest(worker)
        self._replace(worker)

    def _start_failed(self, worker: Worker, why: str) -> None:
        self.start_failures += 1
        _log.debug("verification worker %d %s (%d in a row)", worker.pid, why, self.start_failures)
        if self.start_failures >= self.MAX_START_FAILURES:
            raise WorkerDied(f"verification worker {why}; gave up after {self.start_failures} tries")
        self._replace(worker)


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


_POOL = _WorkerPool()
atexit.register(_POOL.shutdown)


def worker_pids(busy_only: bool = False) -> list[int]:
    """Process ids of the verification workers, those serving a call first (monitoring, tests)."""
    return _POOL.worker_pids(busy_only)


def shutdown_pool() -> None:
    """Stop the verification workers (they restart on demand, with empty caches)."""
    _POOL.shutdown()


def pool_stats() -> PoolStats:
    """Counters of the shared worker pool since start (items, timeouts, deaths, retries)."""
    return replace(_POOL.stats)



def run_many(
    verifier: Checked,
    items: list[tuple[int, str, str]],
    timeout_s: float,
    workers: int,
    progress: Callable[[int], None] | None = None,
    retry_timeout_s: float | None = None,
) -> dict[int, Verdict]:
    """``verifier.full`` on ``items`` (``(index, response, truth)``) over ``workers`` pool workers,
    each item bounded by ``timeout_s`` (retried once with ``retry_timeout_s``); verdicts by index."""
    return _POOL.run_many(verifier, items, timeout_s, workers, progress=progress, retry_timeout_s=retry_timeout_s)
