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


# Rule 5, the conclusion of a response without a box. Cases modelled on real unboxed outputs
# (MR-GSM8K's MetaMath solutions, Math-Verify's prose cases) and on the classes of issue 20;
# written here, not copied. (response, the answer read from its conclusion, or None)
CONCLUSION_CASES = [
    # an unboxed closing sentence, its unit or currency dropped
    ("After the rent she keeps the rest.\nSo, once the bills are paid, Lena has $35 left.", "35"),
    ("Hence the cyclist covered 180 kilometres in all.", "180"),
    ("Adding the three shifts: 4 + 6 + 5 = 15.\n#### 15", "15"),  # GSM8K's closing marker
    ("Therefore, the tank holds 2.5 litres more.", "2.5"),
    ("Thus Omar pays \\$1,250 for the repairs.", "1,250"),
    ("The final answer is $14{,}916$. I hope it is correct.", "14{,}916"),
    ("**Final Answer**\n42", "42"),  # a heading, then the value alone on its line
    ("So the sum is $3 + 4 = 7$.", "7"),  # a span's own sum read as its result
    ("So the volume is $2 \\times 3 \\times 5 = 30$.", "30"),
    ("The solution is $y != 2$", "y != 2"),  # a relation stays whole
    # a closing sentence stating a result, as reversed-problem solutions end
    ("Solving for y, we get: y = 6.\nThe value of y is 6.", "6"),
    ("The combined weight after the trip will be 12 + 9 = 21 kilograms.", "21"),
    ("The overall loss is $28$ percent.", "28\\%"),
    ("The first term is 3 and we continue with the ratio.", None),  # a result, then more
    # several values in one sentence: the list they form
    ("Thus the solutions are x = 5 and x = -2.", "5, -2"),
    ("So the zeros are -3, 1, and 4.", "-3, 1, 4"),
    ("Hence m = 2 or m = -\\frac{5}{3}.", "2, -\\frac{5}{3}"),
    # Markdown emphasis and stray backslashes
    ("Counting every order, there are **40,320** orderings in all.", "40,320"),
    ("**Answer: 27**", "27"),
    ("**Answer:** 27", "27"),
    ("The answer is *9*.", "9"),
    ("The count is **14**, where $k$ is the row index.", "14"),  # the bold value, not the symbol
    # a value tried and rejected, a number in passing: no answer
    ("Suppose a = 4; then b = 9. But this is not a solution, since b must be even.", None),
    ("Try n = 3: the sum is 10, which contradicts the condition.", None),
    ("There are 6 cases to check.", None),
    ("We get 18 for the first part. Then", None),
    ("Hence the area is $24$ in this case.\n\nI am not able to finish this problem.", None),  # gives up
    ("Therefore $\\angle B = 45^\\circ$ and the tr", None),  # cut off mid-sentence
    ("The sum of their ages will be 25 + 15 = 40", "40"),  # no full stop, but finished
    ("So far the total is 12, and the second box adds 7 more.", None),  # "so far" concludes nothing
]


@pytest.mark.parametrize(("response", "answer"), CONCLUSION_CASES)
def test_concluding_answer(response: str, answer: str | None) -> None:
    assert stated.concluding_answer(response) == answer


def test_clean_markup() -> None:
    assert stated.clean_markup("\\boxed{\\12}") == "\\boxed{12}"  # a stray backslash before digits
    assert stated.clean_markup("a \\\\ 1") == "a \\\\ 1"  # a LaTeX line break stays
    assert stated.clean_markup("**15** and *x*") == "15 and x"
    assert stated.clean_markup("2*3*4 and 2 * 3 * 4") == "2*3*4 and 2 * 3 * 4"  # products stay


# What lenient grades on such conclusions, end to end: (response, ground truth, correct)
CONCLUSIONS_GRADED = [
    ("So, once the bills are paid, Lena has $35 left.", "35", True),
    ("So, once the bills are paid, Lena has $36 left.", "35", False),
    ("Therefore, the train travelled 240 kilometres.", "240", True),
    ("Thus the solutions are x = 5 and x = -2.", "5, -2", True),
    ("Thus the solutions are x = 5 and x = -2.", "-2, 5", True),  # a set: any order
    ("Thus the solutions are x = 5 and x = -2.", "-2", False),  # two answers for one
    ("So the zeros are -3, 1, and 4.", "-3, 1, 4", True),
    ("So the zeros are -3, 1, and 4.", "4", False),
    ("Counting every order, there are **40,320** orderings in all.", "40320", True),
    ("**Answer: 27**", "27", True),
    ("So the answer is \\boxed{\\12}.", "12", True),
    ("Adding the three shifts: 4 + 6 + 5 = 15.\n#### 15", "15", True),
    ("Suppose a = 4; then b = 9. But this is not a solution, since b must be even.", "9", False),
    ("If we let $x = 6$, then $y = 7$, but that does not work.", "7", False),
    ("There are 6 cases to check.", "6", False),  # a number in passing: still no answer
    ("Solving for y, we get: y = 6.\nThe value of y is 6.", "6", True),
    ("The value of y is 7.", "6", False),
    ("The solution is $y != 2$", "y \\neq 2", True),
]


@pytest.mark.parametrize(("response", "truth", "correct"), CONCLUSIONS_GRADED)
def test_lenient_grades_the_conclusion(response: str, truth: str, correct: bool) -> None:
    assert Lenient().full(response, truth).correct is correct
