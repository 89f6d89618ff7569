"""``math-verify``: Math-Verify's default call, for numbers comparable with lighteval / lm-eval.

``verify(parse(gold), parse(response))`` with Math-Verify's default extraction (LaTeX, then plain
expressions, over the whole response) and default comparison (float rounding 6, strict), as
lm-eval's Math-Verify metrics call it. The gold is the ground truth in math delimiters,
``$<ground truth>$`` (as it stands where it already has ``$`` or ``\\boxed``): Math-Verify's LaTeX
extraction needs an anchor, and lm-eval's tasks parse a gold solution that has one. Math-Verify's
own signal timeouts are off (they only work in a main thread); the bound is the worker process's (:mod:`justrl.verifiers.pool`).
"""

from __future__ import annotations

from dataclasses import dataclass

from justrl.verifiers.base import Verdict, require
from justrl.verifiers.pool import run_checked

MATH_VERIFY_TIMEOUT_S = 5.0
"""Math-Verify's default parsing timeout, kept as the worker's bound."""


@dataclass(frozen=True)
class MathVerify:
    """Math-Verify's defaults: ``verify(parse("$gt$"), parse(response))``, right or wrong."""

    name: str = "math-verify"
    timeout_s: float = MATH_VERIFY_TIMEOUT_S

    def __post_init__(self) -> None:
        require("math_verify", self.name)

    def quick(self, response: str, ground_truth: str) -> Verdict | None:
        if not response.strip():
            return Verdict(False, None, "empty-response")
        return None

    def full(self, response: str, ground_truth: str) -> Verdict:
        from math_verify import parse, verify

        try:
            anchored = "$" in ground_truth or "\\boxed" in ground_truth
            gold = parse(ground_truth if anchored else f"${ground_truth}$", parsing_timeout=None)  # type: ignore[arg-type]
            if not gold:
                return Verdict(False, None, "ground-truth-unparsed")
            pred = parse(response, parsing_timeout=None)  # type: ignore[arg-type]
            if not pred:
                return Verdict(False, None, "no-answer-parsed")
            correct = bool(verify(gold, pred, timeout_seconds=None))  # type: ignore[arg-type]
        except Exception:  # lm-eval scores an error 0
            return Verdict(False, None, "math-verify-error")
        return Verdict(correct, str(pred[-1]), "math-verify-equal" if correct else "math-verify-different")

    def __call__(self, response: str, ground_truth: str) -> Verdict:
        return run_checked(self, response, ground_truth)
