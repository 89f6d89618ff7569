"""``verify_batch``: many answers graded by one verifier, named, on the worker pool.

What evaluation, grading and the trainer call: the cheap checks settle most answers in this
process, and the rest are spread over the pool's workers, each bounded in time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from justrl.verifiers import pool
from justrl.verifiers.base import DEFAULT_TIMEOUT_S, Checked, Verdict
from justrl.verifiers.registry import get
from justrl.verifiers.staged import JustrlEval


def verify_batch(
    verifier_name: str,
    responses: list[str],
    ground_truths: list[str],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    retry_timeout_s: float | None = None,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    **options: Any,
) -> list[Verdict]:
    """Verdicts for ``responses`` in input order, verified on a pool of worker processes.

    What a cheap check settles is settled here; the rest goes to ``workers`` processes (default:
    the CPUs this process may use), each item bounded by ``timeout_s`` (a worker that overruns is
    killed and replaced; the item is retried once, on a fresh worker with the larger bound
    ``retry_timeout_s`` (default ``pool.RETRY_FACTOR * timeout_s``), and is ``undecided`` if it
    overruns that too -- never graded wrong for it). A worker that dies is
    replaced and its item retried once. ``progress(n_done)`` is called as items complete.
    """
    if len(responses) != len(ground_truths):
        raise ValueError(f"{len(responses)} responses but {len(ground_truths)} ground truths")
    verifier = get(verifier_name, timeout_s=timeout_s, **options)
    assert hasattr(verifier, "quick") and hasattr(verifier, "full")
    if isinstance(verifier, JustrlEval):
        verifier = replace(verifier, judge=None)
    checked: Checked = verifier  # type: ignore[assignment]
    results: list[Verdict | None] = [None] * len(responses)
    heavy: list[tuple[int, str, str]] = []
    for i, (response, truth) in enumerate(zip(responses, ground_truths)):
        verdict = checked.quick(response, truth)
        if verdict is None:
            heavy.append((i, response, truth))
        else:
            results[i] = verdict
    settled = len(responses) - len(heavy)
    if progress is not None and settled:
        progress(settled)
    if heavy:
        n_workers = workers if workers is not None else pool.cpu_count()
        relay = None if progress is None else (lambda n: progress(settled + n))
        for index, verdict in pool.run_many(
            checked, heavy, timeout_s, n_workers, progress=relay, retry_timeout_s=retry_timeout_s
        ).items():
            results[index] = verdict
    return [v for v in results if v is not None]
