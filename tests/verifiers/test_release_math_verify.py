"""``release-math-verify``: the release's validation grader (verl's math_verify.compute_score in its fork)."""

from __future__ import annotations

import pytest

from justrl import verifiers


@pytest.mark.parametrize(("response", "truth", "correct"), [
    ("so the answer is \\boxed{25}", "025", True),  # AIME24's leading zeros, read as numbers
    ("Thus $x = \\frac{1}{2}$.", "0.5", True),  # no box needed: the whole response is parsed
    ("The answer is 3/4", "\\frac{3}{4}", True),
    ("\\boxed{71}", "70", False),
    ("no answer at all", "70", False),
    ("", "70", False),
])
def test_release_math_verify(response: str, truth: str, correct: bool) -> None:
    verdict = verifiers.get("release-math-verify")(response, truth)
    assert verdict.correct is correct
    assert "release-math-verify" in verifiers.known_verifiers()


def test_strict_and_release_grading_differ_where_the_release_said() -> None:
    """The strict training check refuses what the release's validation grader accepts."""
    assert not verifiers.get("dapo-strict")("so the answer is \\boxed{25}", "025").correct
