"""stated: which part of a response is its answer -- each rule of lenient's extraction, by case."""

from __future__ import annotations

import pytest

from justrl.verifiers import stated
from justrl.verifiers.lenient import Lenient

# (response, the answer read from its boxes)
BOX_CASES = [
    ("So the answer is \\boxed{5}.", "5"),  # the last box
    ("First \\boxed{3}, then we find more. Finally \\boxed{5}.", "5"),  # earlier boxes are drafts
    ("\\boxed{(1,2)} and \\boxed{(2,1)}", "(1,2), (2,1)"),  # pieces of one answer joined
    ("\\boxed{1}, \\boxed{2}, \\boxed{3}", "1, 2, 3"),
    ("\\( y_1 = \\boxed{x+1} \\) and \\( y_2 = \\boxed{x-1} \\)", "x+1, x-1"),
    ("$$\\boxed{(3, 3)} \\text{ for part (a) and } \\boxed{(1, 1)}$$", "(3, 3), (1, 1)"),
    ("\\boxed{2} is wrong since 2 is even; hence \\boxed{3}", "3"),  # prose between: not pieces
    ("\\boxed{2} \\text{ is not it, so } \\boxed{3}", "3"),
    ("The answer is \\boxed{\\boxed{7}}", "7"),  # nested boxes
    ("\\fbox{9}", "9"),
]


@pytest.mark.parametrize(("response", "answer"), BOX_CASES)
def test_box_answer(response: str, answer: str) -> None:
    assert stated.box_answer(response) == answer


def test_an_unclosed_or_retracted_last_box_is_no_answer() -> None:
    assert stated.box_answer("so \\boxed{5") is stated.UNCLOSED
    assert stated.box_answer("\\boxed{4} hence \\boxed{5") is stated.UNCLOSED  # no fallback to 4
    assert stated.box_answer("So \\boxed{5}. Wait, that is wrong: 3 is.") is stated.RETRACTED
    assert stated.box_answer("\\boxed{5}. I made a mistake above.") is stated.RETRACTED
    assert stated.box_answer("\\boxed{5}. I hope it is correct.") == "5"
    assert stated.box_answer("\\boxed{5}. Wait, let me double-check: 2 + 3 = 5. Yes.") == "5"
    assert stated.box_answer("no box here") is None


# (response, the final math span it states, or None)
SPAN_CASES = [
    ("Therefore $x \\geq 5$ is the solution.", "x \\geq 5"),
    ("We find that $x \\lt 3$.", "x \\lt 3"),
    ("Here is a zero matrix: $ \\begin{pmatrix}0 & 0 \\\\0 & 0\\end{pmatrix} $", "\\begin{pmatrix}0 & 0 \\\\0 & 0\\end{pmatrix}"),
    ("Long work... so the probability is\n\\[\\frac{2}{3}\\]", "\\frac{2}{3}"),
    ("The overall loss is $28$ percent.", "28\\%"),  # a percent word after the span belongs to it
    ("We first compute $2+2$ and then go on with the next step of the proof, at length.", None),  # a mention
    ("Then $x = 4$. Next we check the case n = 2.", None),  # digits after: more reasoning
    ("So $x = 4$. Wait, that is wrong.", None),  # retracted
    ("There are 12 ways to do it.", None),  # a number in prose
]


@pytest.mark.parametrize(("response", "span"), SPAN_CASES)
def test_final_math_span(response: str, span: str | None) -> None:
    assert stated.final_math_span(response) == span


# What lenient grades, end to end: (response, truth, correct)
GRADED = [
    ("\\boxed{(1,2)} and \\boxed{(2,1)}", "(1,2),(2,1)", True),
    ("\\boxed{(1,2)} and \\boxed{(2,1)}", "(1,2)", False),
    ("So \\boxed{5}. Wait, that is wrong.", "5", False),
    ("Therefore $x \\geq 5$ is the solution.", "x \\ge 5", True),
    ("Therefore $x \\geq 4$ is the solution.", "x \\ge 5", False),
    ("We first compute $5$ and then go on with the next step of the proof, at length.", "5", False),
    ("There are 12 ways to do it.", "12", False),
    ("The final answer is $12$.", "12", True),
]


@pytest.mark.parametrize(("response", "truth", "correct"), GRADED)
def test_lenient_grades_the_stated_answer(response: str, truth: str, correct: bool) -> None:
    assert Lenient().full(response, truth).correct is correct
