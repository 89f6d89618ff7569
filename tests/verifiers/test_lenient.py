"""lenient: Math-Verify glue -- the fast path agrees with Math-Verify's own answer ranking, and
exact readings (numbers, percent, bases, units) decide what Math-Verify would get wrong."""

from __future__ import annotations

import pytest

from justrl.verifiers import boxed, numbers, stated
from justrl.verifiers import lenient as lenient_mod
from justrl.verifiers.lenient import Lenient


def test_lenient_fast_path_picks_the_answer_math_verify_ranks_first(cases) -> None:
    # The fast path reads the last \boxed{} without running Math-Verify's extraction; wherever it
    # does (one box, not joined pieces), Math-Verify's own ranking must lead to the same verdict.
    lenient = Lenient()
    checked = 0
    for c in cases[::2]:
        tail = c["response"][-lenient.tail_chars :]
        box = stated.decisive_box(tail)
        if box is None or box is stated.UNCLOSED or box is stated.RETRACTED or box != boxed.last_box(tail):
            continue
        truth = lenient_mod._unwrap_truth(c["ground_truth"])
        if numbers.override_class(box, truth) is not None:
            continue  # decided by the box's exact form (unit powers, bases), which MV's extraction drops
        answer = lenient._stated_answer(tail)
        assert answer is not None, c["id"]
        fast = lenient._compare_quick(box, truth) or lenient._compare_math_verify(box, truth)
        ranked = lenient._compare_quick(answer, truth) or lenient._compare_math_verify(answer, truth)
        assert fast.correct == ranked.correct, (c["id"], box, answer)
        checked += 1
    assert checked > 150


# (response, ground truth, lenient's verdict): each class of the exact readings, right and wrong.
EXACT_READINGS = [
    ("\\boxed{1 2}", "12", False),  # digits never joined across a space
    ("\\boxed{12 34}", "1234", False),
    ("\\boxed{1 000}", "1000", True),  # ... except as groups of three
    ("\\boxed{1,000}", "1000", True),
    ("\\boxed{1\\,000}", "1000", True),
    ("\\boxed{10 00}", "1000", False),
    ("\\boxed{4 4/9}", "44/9", False),  # a mixed number is its value
    ("\\boxed{4 4/9}", "\\frac{40}{9}", True),
    ("\\boxed{3 1/2}", "31/2", False),
    ("\\boxed{3 1/2}", "3.5", True),
    ("\\boxed{4\\frac{4}{9}}", "40/9", True),
    ("\\boxed{4.6e-25}", "4.6e-24", False),  # scientific notation compared exactly
    ("\\boxed{4.3e-10}", "3.3e-10", False),
    ("\\boxed{4.6 \\times 10^{-24}}", "4.6e-24", True),
    ("\\boxed{4.6e-24}", "4.6 \\times 10^{-24}", True),
    ("\\boxed{28 pct}", "28\\%", True),  # percent in words, in the response and the truth
    ("\\boxed{28 percent}", "28\\%", True),
    ("\\boxed{28 percentage}", "28\\%", True),
    ("\\boxed{28\\%}", "28 percent", True),
    ("\\boxed{27 pct}", "28\\%", False),
    ("\\boxed{204_6}", "204_5", False),  # bases kept
    ("\\boxed{204_5}", "204_{5}", True),
    ("\\boxed{864 \\mbox{ inches}^3}", "864 \\mbox{ inches}^2", False),  # unit powers kept
    ("\\boxed{864 \\mbox{ inches}^2}", "864 \\mbox{ inches}^2", True),
    ("\\boxed{32, 349}", "32349", False),  # a list is not a number
]


@pytest.mark.parametrize(("response", "truth", "correct"), EXACT_READINGS)
def test_exact_readings(response: str, truth: str, correct: bool) -> None:
    assert Lenient().full(response, truth).correct is correct
