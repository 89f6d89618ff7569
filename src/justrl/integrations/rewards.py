"""The reward every adapter returns: the recipe's +1 / -1 for a verifier's verdicts, batch-parallel."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from justrl import verifiers
from justrl.errors import ConfigError
from justrl.verifiers import DEFAULT_TIMEOUT_S, Verdict


def check_verifier(name: str) -> None:
    verifiers.check_name(name)


def verdicts(name: str, responses: Sequence[str], ground_truths: Sequence[Any], *,
             timeout_s: float = DEFAULT_TIMEOUT_S, workers: int | None = None) -> list[Verdict]:
    """``verify_batch`` on strings: each check bounded by ``timeout_s``, spread over the workers."""
    if len(responses) != len(ground_truths):
        raise ConfigError(f"{len(responses)} responses but {len(ground_truths)} ground truths")
    return verifiers.verify_batch(name, [str(r) for r in responses], [str(t) for t in ground_truths],
                                  timeout_s=timeout_s, workers=workers)


def rewards(found: Sequence[Verdict], correct: float, incorrect: float) -> list[float]:
    """``correct`` for each accepted verdict, ``incorrect`` for the rest (undecided included)."""
    return [correct if v.correct else incorrect for v in found]
