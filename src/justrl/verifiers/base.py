"""What every verifier shares: the :class:`Verdict` it returns and the protocols it implements.

A verifier maps ``(response, ground_truth)`` to a :class:`Verdict`. Those that may be slow split
the work in two (:class:`Checked`): ``quick``, a cheap string check that settles most answers in
the calling process, and ``full``, the complete check, which runs in a worker process killed when
it overruns ``timeout_s`` (see :mod:`justrl.verifiers.pool`).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from justrl.errors import BackendUnavailable

DEFAULT_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one response against its ground truth."""

    correct: bool
    extracted: str | None  # the answer the verifier read from the response, if any
    reason: str  # short explanation, e.g. "exact-match", "no-boxed", "timeout"
    stage: str | None = None  # the stage that settled it (``justrl-eval``)
    # No verdict within the time bound, even on the retry with a larger one: neither right nor
    # wrong (``correct`` is False so sums of ``correct`` never count it right); reports count it apart.
    undecided: bool = False


@runtime_checkable
class Verifier(Protocol):
    name: str

    def __call__(self, response: str, ground_truth: str) -> Verdict: ...


class Checked(Protocol):
    """What the verifiers implement: a cheap partial check and a complete one."""

    name: str
    timeout_s: float

    def quick(self, response: str, ground_truth: str) -> Verdict | None: ...

    def full(self, response: str, ground_truth: str) -> Verdict: ...


def require(module: str, verifier: str) -> None:
    """Fail at construction when ``verifier`` lacks its parser: a missing one must not quietly
    change verdicts."""
    if importlib.util.find_spec(module) is None:
        raise BackendUnavailable(f"the {verifier} verifier needs the {module!r} package: pip install {module}")
