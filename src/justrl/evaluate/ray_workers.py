"""Spread evaluation samples over Ray actors, each with its own generation backend.

``justrl eval --workers K`` cuts the missing (problem, seed) pairs into shards of ``batch_size``
and hands them to K actors (local, or on the cluster named by ``RAY_ADDRESS``). The actors only
generate; the driver receives each finished shard and is the only writer of the output files, so
a worker that dies loses at most its unfinished shards, which are given to a fresh actor
(up to ``max_retries`` times each). Nothing already written is touched.

Each actor builds its backend from a picklable zero-argument factory
(:class:`justrl.evaluate.BackendSpec`): an ``hf`` model on the CPU threads Ray gives it, or one
vLLM engine per GPU. Before an actor is killed, it is asked to end its backend
(:func:`justrl.generate.vllm.release`): ``ray.kill`` alone can leave vLLM's engine process, a child
of the actor, holding the GPU that the next actor (or the judge) needs.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from justrl import logs
from justrl.errors import WorkerPoolError

log = logs.get(__name__)


class PromptItem(Protocol):
    """What a shard is made of: the text to continue and the sample's seed."""

    text: str
    seed: int


@dataclass
class _Shard:
    items: list[Any]
    attempts: int = 0


class _Worker:
    """The actor: one backend, built once, generating shard after shard."""

    def __init__(self, make_backend: Callable[[], Any], threads: int | None):
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.backend = make_backend()

    def generate(self, texts: list[str], params: Any, seeds: list[int]) -> list[Any]:
        return self.backend.generate(texts, params, seeds=seeds)

    def pid(self) -> int:
        return os.getpid()

    def close(self) -> None:
        """End the backend (vLLM: its engine process) while the actor is still alive."""
        from justrl.generate.vllm import release

        backend, self.backend = self.backend, None
        if backend is not None:
            release(backend)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise WorkerPoolError("--workers needs Ray: pip install 'justrl[ray]'") from exc
    return ray


class WorkerPool:
    """K Ray actors generating shards; use as a context manager.

    Args:
        make_backend: picklable zero-argument callable returning a generator (``.generate``).
        workers: number of actors.
        cpus_per_worker / gpus_per_worker: Ray resources each actor reserves (its torch threads
            follow ``cpus_per_worker``). ``gpus_per_worker=None``: one GPU each when the cluster
            has GPUs, else none (the driver may run on a CPU-only head node).
        max_retries: times one shard may be retried after a failure before the run stops.
        address: Ray cluster address; default ``$RAY_ADDRESS``, else a local Ray started here
            sized to the workers (and shut down on exit).
        in_flight_per_worker: shards queued on each actor, so it never waits for the driver.
    """

    def __init__(
        self,
        make_backend: Callable[[], Any],
        workers: int,
        *,
        cpus_per_worker: float = 1.0,
        gpus_per_worker: float | None = 0,
        max_retries: int = 3,
        address: str | None = None,
        in_flight_per_worker: int = 2,
        close_timeout_s: float = 120.0,
    ):
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.make_backend = make_backend
        self.workers = workers
        self.cpus_per_worker = cpus_per_worker
        self.gpus_per_worker = gpus_per_worker
        self.max_retries = max_retries
        self.address = address or os.environ.get("RAY_ADDRESS")
        self.depth = max(1, in_flight_per_worker)
        self.close_timeout_s = close_timeout_s
        self.restarts = 0  # actors replaced after dying
        self._ray: Any = None
        self._started_ray = False
        self._actors: list[Any] = []

    # --- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> WorkerPool:
        ray = self._ray = _import_ray()
        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, log_to_driver=False)
            else:
                ray.init(
                    num_cpus=max(1, math.ceil(self.workers * self.cpus_per_worker)),
                    include_dashboard=False,
                    object_store_memory=200 * 1024**2,
                    log_to_driver=False,
                )
            self._started_ray = True
        if self.gpus_per_worker is None:
            self.gpus_per_worker = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        self._actors = [self._new_actor() for _ in range(self.workers)]
        return self

    def __exit__(self, *exc: object) -> None:
        for actor in self._actors:
            self._kill(actor)
        self._actors = []
        if self._started_ray:
            self._ray.shutdown()
            self._started_ray = False

    def _new_actor(self) -> Any:
        threads = max(1, int(self.cpus_per_worker)) if self.gpus_per_worker == 0 else None
        cls = self._ray.remote(num_cpus=self.cpus_per_worker, num_gpus=self.gpus_per_worker)(_Worker)
        return cls.remote(self.make_backend, threads)

    def _kill(self, actor: Any) -> None:
        """Have the actor end its backend, then kill it (a dead or stuck actor is just killed)."""
        with contextlib.suppress(Exception):  # dead already, or its close failed or timed out
            self._ray.get(actor.close.remote(), timeout=self.close_timeout_s)
        with contextlib.suppress(Exception):  # already gone
            self._ray.kill(actor, no_restart=True)

    def pids(self) -> list[int]:
        """Process ids of the live actors (for tests and diagnostics)."""
        return self._ray.get([a.pid.remote() for a in self._actors])

    # --- work -----------------------------------------------------------------------------

    def generate(
        self,
        items: Sequence[PromptItem],
        params: Any,
        shard_size: int,
        on_result: Callable[[Any, Any], None],
        *,
        on_submit: Callable[[list[Any]], None] | None = None,
    ) -> None:
        """Generate every item; ``on_result(item, completion)`` runs here, in the driver, as each
        shard comes back (in completion order, not input order). ``on_submit(items)`` is called
        as each shard is handed to a worker."""
        ray = self._ray
        if ray is None:
            raise WorkerPoolError("use WorkerPool as a context manager (with WorkerPool(...) as pool)")
        queue = deque(_Shard(list(items[i : i + shard_size])) for i in range(0, len(items), shard_size))
        in_flight: dict[Any, tuple[int, Any, _Shard]] = {}
        load = [0] * len(self._actors)
        while queue or in_flight:
            while queue and min(load) < self.depth:
                slot = load.index(min(load))
                shard = queue.popleft()
                actor = self._actors[slot]
                ref = actor.generate.remote([it.text for it in shard.items], params, [it.seed for it in shard.items])
                in_flight[ref] = (slot, actor, shard)
                if on_submit is not None:
                    on_submit(shard.items)
                load[slot] += 1
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in ready:
                slot, actor, shard = in_flight.pop(ref)
                load[slot] -= 1
                try:
                    completions = ray.get(ref)
                except Exception as exc:  # the actor died, or generate raised
                    self._retry(shard, slot, actor, exc, queue)
                    continue
                for item, completion in zip(shard.items, completions):
                    on_result(item, completion)

    def _retry(self, shard: _Shard, slot: int, actor: Any, exc: BaseException, queue: deque[_Shard]) -> None:
        ray = self._ray
        shard.attempts += 1
        died = isinstance(exc, (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError))
        cause = getattr(exc, "cause", None) or exc  # RayTaskError wraps what generate raised
        text = str(cause).strip().splitlines()
        reason = f"{type(cause).__name__}: {text[0] if text else ''}"
        if shard.attempts > self.max_retries:
            raise WorkerPoolError(
                f"a shard of {len(shard.items)} samples failed {shard.attempts} times; last error: {reason}"
            ) from exc
        if died and self._actors[slot] is actor:  # its other queued shards fail too: replace once
            self._kill(actor)
            self._actors[slot] = self._new_actor()
            self.restarts += 1
            log.warning("worker %d died (%s); its shard of %d samples goes to a new worker",
                        slot, reason, len(shard.items))
        else:
            log.warning("worker %d failed a shard (%s); retrying it", slot, reason)
        queue.appendleft(shard)
