"""The Ray path: (problem, seed) shards over 2 local CPU workers on a tiny model, worker deaths."""

from __future__ import annotations

import io
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")

from justrl import evaluate as E  # noqa: E402
from justrl.evaluate.ray_workers import WorkerPool, WorkerPoolError  # noqa: E402
from justrl.generate.hf import SamplingParams  # noqa: E402

# The fault-injecting factories below travel to the workers by value (this module is not importable
# there).
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One small local Ray for the tests that use it (2 CPUs, 200 MB object store), shut down
    afterwards. The first test runs before it exists: there the pool starts Ray itself."""
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024**2, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def _config(model: Path, data: Path, out: Path, *overrides: str) -> E.EvalConfig:
    config = E.EvalConfig(model=str(model), benchmarks=["MATH-500,AIME24"], data_dir=str(data), out=str(out))
    return E.apply_overrides(config, ["bootstrap=200", "max_tokens=8", "batch_size=3", *overrides])


def _lines(result: E.EvalResult) -> dict[tuple[str, int, int], str]:
    out = {}
    for name, path in result.files.items():
        for rec in E.read_samples(path):
            key = (name, rec["example_id"], rec["seed"])
            assert key not in out, f"{key} written twice"
            out[key] = rec["response"]
    return out


def test_two_workers_write_what_one_process_writes(tiny_model, data_dir, tmp_path):
    """``--workers 2`` starts a local Ray, spreads the shards, writes every (problem, seed) once,
    and shuts Ray down. Each sample has its own seed, so the responses are those of a run without
    Ray (bar a rare token flipped by float rounding: the workers run 1 torch thread, this process 2,
    and the batches differ); a seed sent with the wrong sample would change nearly all of them."""
    assert not ray.is_initialized()
    local = E.run(_config(tiny_model, data_dir, tmp_path / "local", "n=2", "limit=4"))
    quiet = _quiet()
    spread = E.run(replace(_config(tiny_model, data_dir, tmp_path / "ray", "n=2", "limit=4"), workers=2),
                   console=quiet)
    assert not ray.is_initialized()
    assert spread.generated == local.generated == 16
    ours, theirs = _lines(spread), _lines(local)
    assert set(ours) == set(theirs) and len(ours) == 16
    assert sum(ours[k] == theirs[k] for k in ours) >= 12
    assert "avg@N" in quiet.file.getvalue()  # the score table goes to the console passed, if any


# --- worker deaths ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DiesOnCall:
    """A backend factory whose workers, all together, die (``os._exit``) on the ``die_at``-th
    generate call; the calls are counted in a file shared by the worker processes."""

    inner: Callable[[], Any]
    counter: str
    die_at: int

    def __call__(self) -> Any:
        return _Dying(self.inner(), self.counter, self.die_at)


class _Dying:
    def __init__(self, inner: Any, counter: str, die_at: int):
        self.inner, self.counter, self.die_at = inner, counter, die_at

    def generate(self, prompts: Any, params: Any, seeds: Any = None) -> Any:
        with open(self.counter, "ab") as handle:
            handle.write(b".")
        if os.path.getsize(self.counter) == self.die_at:
            os._exit(1)
        return self.inner.generate(prompts, params, seeds=seeds)


@dataclass(frozen=True)
class AlwaysFails:
    def __call__(self) -> Any:
        return self

    def generate(self, prompts: Any, params: Any, seeds: Any = None) -> Any:
        raise ValueError("broken backend")


def _quiet() -> Any:
    from rich.console import Console

    return Console(file=io.StringIO(), width=200)


def test_a_dead_workers_shard_is_retried_and_nothing_written_is_lost(tiny_model, data_dir, tmp_path, local_ray,
                                                                     caplog):
    out = tmp_path / "out"
    first = E.run(_config(tiny_model, data_dir, out, "n=2", "limit=2"))
    before = {name: path.read_bytes() for name, path in first.files.items()}
    counter = tmp_path / "calls"
    dying = DiesOnCall(E.backend_spec(_config(tiny_model, data_dir, out)), str(counter), die_at=3)
    config = replace(_config(tiny_model, data_dir, out, "n=2", "limit=5"), workers=2)
    result = E.run(config, backend=dying)
    assert counter.stat().st_size > 3  # a worker died at the third call, and work went on
    assert "died" in caplog.text
    assert result.generated == 2 * 2 * (5 - 2)
    lines = _lines(result)
    assert Counter(name for name, _, _ in lines) == {"MATH-500": 10, "AIME24": 10}
    for name, path in result.files.items():
        assert path.read_bytes().startswith(before[name])  # earlier lines untouched


@dataclass(frozen=True)
class _Item:
    text: str
    seed: int


def test_a_shard_that_keeps_failing_stops_the_run(local_ray):
    with WorkerPool(AlwaysFails(), 2, max_retries=1) as pool, \
            pytest.raises(WorkerPoolError, match="failed 2 times; last error: .*broken backend"):
        pool.generate([_Item("a", 1), _Item("b", 2)], SamplingParams(), 1, lambda *_: None)
    assert ray.is_initialized()  # a Ray it did not start is left running


def test_pool_direct_use_keeps_item_and_completion_together(tiny_model, local_ray):
    spec = E.BackendSpec("hf", str(tiny_model), {"batch_size": 4})
    items = [_Item(f"<|user|>{i}+{i}=?<|assistant|>", seed=i) for i in range(7)]
    got: dict[int, Any] = {}
    with WorkerPool(spec, 2) as pool:
        assert len(set(pool.pids())) == 2 and os.getpid() not in pool.pids()
        pool.generate(items, SamplingParams(temperature=0.7, top_p=0.9, max_new_tokens=5), 2,
                      lambda item, c: got.setdefault(item.seed, c))
    direct = spec().generate([it.text for it in items], SamplingParams(temperature=0.7, top_p=0.9, max_new_tokens=5),
                             seeds=[it.seed for it in items])
    assert sorted(got) == list(range(7))
    assert sum(got[i].token_ids == c.token_ids for i, c in enumerate(direct)) >= 5  # see the first test


# --- issue 14: engines end before their actors ----------------------------------------------


@dataclass(frozen=True)
class ClosesTo:
    """A backend factory whose backends note in ``folder`` when their ``close()`` runs, and in
    which process (the actor's, before ``ray.kill``)."""

    folder: str

    def __call__(self) -> Any:
        return _Closing(self.folder)


class _Closing:
    def __init__(self, folder: str):
        self.folder = folder

    def generate(self, prompts: Any, params: Any, seeds: Any = None) -> Any:
        return [prompt for prompt in prompts]

    def close(self) -> None:
        Path(self.folder, f"closed-{os.getpid()}").touch()


def test_workers_end_their_backends_before_the_actors_are_killed(tmp_path, local_ray):
    """Case 3: ``ray.kill`` alone can leave vLLM's engine process, the actor's child, on the GPU."""
    with WorkerPool(ClosesTo(str(tmp_path)), 2) as pool:
        pids = pool.pids()
        pool.generate([_Item("a", 1), _Item("b", 2)], SamplingParams(), 1, lambda *_: None)
        assert not list(tmp_path.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"closed-{pid}" for pid in pids)


def test_gpus_per_worker_none_follows_the_cluster(local_ray):
    """A CPU-only cluster (or head) gives hf workers no GPU rather than a request Ray cannot meet."""
    with WorkerPool(AlwaysFails(), 1, gpus_per_worker=None) as pool:
        assert pool.gpus_per_worker == 0 and len(pool.pids()) == 1
