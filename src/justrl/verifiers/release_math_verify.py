"""``release-math-verify``: the JustRL release's in-training validation grader, Math-Verify 0/1.

The release's reward router (``verl/utils/reward_score/__init__.py`` of its verl fork) sent the
data sources ``AIME24``, ``AIME25`` and ``AMC23`` to ``math_verify.compute_score``: Math-Verify's
``math_metric`` with the gold read by ``LatexExtractionConfig`` from ``\\boxed{<ground truth>}`` and
the prediction read by ``ExprExtractionConfig`` then ``LatexExtractionConfig`` from the *whole*
response; score 1.0 when any gold equals the prediction (``verify`` at precision 6), else 0.0, and
0.0 on any error or timeout. Reproduced with Math-Verify's own functions, its signal timeouts off
(the bound is the worker process's, :mod:`justrl.verifiers.pool`).
"""

from __future__ import annotations

from dataclasses import dataclass

from justrl.verifiers.base import Verdict, require
from justrl.verifiers.pool import run_checked

RELEASE_MV_TIMEOUT_S = 5.0
"""Math-Verify's own default parsing timeout, which the release's call kept."""
RELEASE_MV_PRECISION = 6
"""``math_metric``'s default precision, passed to ``verify`` as its float rounding."""


@dataclass(frozen=True)
class ReleaseMathVerify:
    """The release's validation check: Math-Verify on the whole response against ``\\boxed{gt}``."""

    name: str = "release-math-verify"
    timeout_s: float = RELEASE_MV_TIMEOUT_S

    def __post_init__(self) -> None:
        require("math_verify", self.name)

    def quick(self, response: str, ground_truth: str) -> Verdict | None:
        if not response.strip():
            return Verdict(False, None, "empty-response")
        return None

    def full(self, response: str, ground_truth: str) -> Verdict:
        from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

        try:
            gold = parse("\\boxed{" + ground_truth + "}", [LatexExtractionConfig()],
                         parsing_timeout=None)  # type: ignore[arg-type]
            if not gold:
                return Verdict(False, None, "ground-truth-unparsed")  # math_metric raised: score 0
            pred = parse(response, [ExprExtractionConfig(), LatexExtractionConfig()],
                         parsing_timeout=None)  # type: ignore[arg-type]
            correct = bool(pred) and verify(gold, pred, RELEASE_MV_PRECISION, timeout_seconds=None)
        except Exception:  # the release caught every exception and scored 0
            return Verdict(False, None, "math-verify-error")
        extracted = str(pred[-1]) if pred else None
        return Verdict(bool(correct), extracted, "math-verify-equal" if correct else "math-verify-different")

    def __call__(self, response: str, ground_truth: str) -> Verdict:
        return run_checked(self, response, ground_truth)
