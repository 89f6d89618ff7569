"""``release-rule``: the JustRL release's rule-based evaluation grader, verdict for verdict.

A reproduction of the release's ``evals/utils.py: grade_answer_verl``: the last ``\\boxed{}`` of
the response, Hendrycks' MATH normalisation, then PRM800K's normalisation and sympy equality with
the release's guards. Its known false negatives are kept on purpose, so that scores stay
comparable with the paper's. One difference: the code sympy would ``eval`` is evaluated by
:mod:`justrl.verifiers.safe_sympy` instead, which builds the same sympy objects.
"""

from __future__ import annotations

import contextlib
import functools
import re
from dataclasses import dataclass
from typing import Any

from justrl.verifiers import workers
from justrl.verifiers.base import DEFAULT_TIMEOUT_S, Verdict, require
from justrl.verifiers.boxed import BOXED, closing_brace
from justrl.verifiers.pool import run_checked
from justrl.verifiers.safe_sympy import safe_parse_expr


def _release_last_boxed(text: str) -> str | None:
    """The release's ``last_boxed_only_string``: from the last ``\\boxed`` (else ``\\fbox``)
    to the brace that closes the first ``{`` after it, ``\\boxed`` included."""
    start = text.rfind("\\boxed")
    if start < 0:
        start = text.rfind("\\fbox")
        if start < 0:
            return None
    end = closing_brace(text, start)
    return None if end is None else text[start : end + 1]


def _release_extract(text: str) -> str | None:
    """The release's ``extract_answer``: only responses containing ``\\boxed`` have an answer, and
    only a ``\\boxed{...}`` group is unwrapped (so ``\\fbox{}`` and ``\\boxed 5`` give none)."""
    if "\\boxed" not in text:
        return None
    boxed = _release_last_boxed(text)
    if boxed is None or not boxed.startswith(BOXED) or not boxed.endswith("}"):
        return None
    return boxed[len(BOXED) : -1]


_TEXT_WRAPPED = re.compile(r"^\\text\{(?P<text>.+?)\}$")


def _mathd_normalize(answer: str) -> str:
    """Hendrycks' MATH normalisation as the release applies it (``mathd_normalize_answer``)."""
    answer = answer.strip()
    try:
        m = _TEXT_WRAPPED.search(answer)
        if m is not None:
            answer = m.group("text").strip()
        return _hendrycks_strip(answer)
    except Exception:
        return answer


def _fix_fracs(string: str) -> str:
    parts = string.split("\\frac")
    out = parts[0]
    for part in parts[1:]:
        out += "\\frac"
        if part[0] == "{":  # an empty part raises IndexError, as in the release
            out += part
            continue
        if len(part) < 2:
            return string
        a, b, rest = part[0], part[1], part[2:]
        out += "{" + a + "}" + b + rest if b == "{" else "{" + a + "}{" + b + "}" + rest
    return out


def _fix_a_slash_b(string: str) -> str:
    pieces = string.split("/")
    if len(pieces) != 2:
        return string
    try:
        a, b = int(pieces[0]), int(pieces[1])
    except ValueError:
        return string
    if string != f"{a}/{b}":
        return string
    return "\\frac{" + str(a) + "}{" + str(b) + "}"


def _remove_right_units(string: str) -> str:
    if "\\text{ " not in string:
        return string
    pieces = string.split("\\text{ ")
    if len(pieces) != 2:
        raise ValueError("more than one unit")  # the release asserts here (and then gives up)
    return pieces[0]


def _fix_sqrt(string: str) -> str:
    if "\\sqrt" not in string:
        return string
    parts = string.split("\\sqrt")
    out = parts[0]
    for part in parts[1:]:
        if part[0] != "{":  # an empty part raises IndexError, as in the release
            out += "\\sqrt{" + part[0] + "}" + part[1:]
        else:
            out += "\\sqrt" + part
    return out


def _hendrycks_strip(string: str) -> str:
    string = string.replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    string = string.replace("tfrac", "frac").replace("dfrac", "frac")
    string = string.replace("\\left", "").replace("\\right", "")
    string = string.replace("^{\\circ}", "").replace("^\\circ", "")
    string = string.replace("\\$", "")
    string = _remove_right_units(string)
    string = string.replace("\\%", "")
    string = string.replace(" .", " 0.").replace("{.", "{0.")
    if not string:
        return string
    if string[0] == ".":
        string = "0" + string
    sides = string.split("=")
    if len(sides) == 2 and len(sides[0]) <= 2:
        string = sides[1]
    string = _fix_sqrt(string)
    string = string.replace(" ", "")
    string = _fix_fracs(string)
    if string == "0.5":
        string = "\\frac{1}{2}"
    return _fix_a_slash_b(string)


_UNIT_WORDS = (
    "degree", "cm", "centimeter", "meter", "mile", "second", "minute", "hour", "day", "week",
    "month", "year", "foot", "feet", "inch", "yard",
)  # fmt: skip
_UNIT_PATTERNS = tuple(re.compile(f"{unit}(es)?(s)? *(\\^[0-9]+)?") for unit in _UNIT_WORDS)
_CIRC = re.compile(r"\^ *\\circ")
_THIN_SPACE_COMMA = re.compile(r",\\! *")
_MINUS_SPACES = re.compile(r"- *")
_MIXED_NUMBER = re.compile(r"([0-9]) +([0-9])")
_FORMATTED_COMMA = re.compile(r"(\d)(,)(\d\d\d)($|\D)")
_RELEASE_FRACTION = re.compile(r"^-?[0-9]+.?/0*[1-9][0-9]*.?$")
_BAD_POWERS = (re.compile(r"\^[0-9]+\^"), re.compile(r"\^[0-9][0-9]+"))


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_int(x: float) -> bool:
    try:
        return abs(x - int(round(x))) <= 1e-7
    except (ValueError, OverflowError):
        return False


def _strip_formatted_commas(expr: str) -> str:
    while True:
        nxt = _FORMATTED_COMMA.sub("\\1\\3\\4", expr)
        if nxt == expr:
            return nxt
        expr = nxt


def _str_is_int(text: str) -> bool:
    try:
        x = float(_strip_formatted_commas(text))
        return abs(x - int(round(x))) <= 1e-7
    except (ValueError, OverflowError):
        return False


@functools.lru_cache(maxsize=1)
def _latex2text() -> Any:
    from pylatexenc import latex2text

    return latex2text.LatexNodes2Text()


def _latex_to_text(expr: str) -> str:
    """The release's ``_parse_latex``: pylatexenc's LaTeX-to-text plus a few symbol names."""
    expr = expr.replace("\\tfrac", "\\frac").replace("\\dfrac", "\\frac")
    expr = expr.replace("\\frac", " \\frac")
    expr = _latex2text().latex_to_text(expr)
    for symbol, name in (("√", "sqrt"), ("π", "pi"), ("∞", "inf"), ("∪", "U"), ("·", "*"), ("×", "*")):
        expr = expr.replace(symbol, name)
    return expr.strip()


def _release_normalize(expr: str) -> str:
    """The release's ``_normalize`` (PRM800K's answer normalisation)."""
    m = _TEXT_WRAPPED.search(expr)
    if m is not None:
        expr = m.group("text")
    expr = expr.replace("\\%", "%").replace("\\$", "$").replace("$", "").replace("%", "")
    expr = expr.replace(" or ", " , ").replace(" and ", " , ")
    expr = expr.replace("million", "*10^6").replace("billion", "*10^9").replace("trillion", "*10^12")
    for pattern in _UNIT_PATTERNS:
        expr = pattern.sub("", expr)
    expr = _CIRC.sub("", expr)
    if expr and expr[0] == "{" and expr[-1] == "}":
        expr = expr[1:-1]
    expr = _THIN_SPACE_COMMA.sub("", expr)
    if _is_float(expr) and _is_int(float(expr)):
        expr = str(int(round(float(expr))))
    if "\\" in expr:
        with contextlib.suppress(Exception):  # the release keeps the text when pylatexenc fails
            expr = _latex_to_text(expr)
    expr = _MINUS_SPACES.sub("-", expr)
    expr = _MIXED_NUMBER.sub("\\1+\\2", expr)
    expr = expr.replace(" ", "").replace("{", "").replace("}", "").lower()
    if _str_is_int(expr):
        expr = str(int(float(expr.replace(",", ""))))
    return expr


def _should_allow_eval(expr: str) -> bool:
    letters = {ch for ch in expr.replace("sqrt", "").replace("frac", "") if ch.isalpha()}
    if len(letters) > 2 or "^{" in expr or "^(" in expr:
        return False
    return not any(p.search(expr) for p in _BAD_POWERS)


def _equal_under_sympy(truth: str, given: str) -> bool:
    expr = f"({truth})-({given})"
    if not _should_allow_eval(expr):
        return False
    try:
        import sympy

        return sympy.simplify(safe_parse_expr(expr.replace("^", "**"))) == 0
    except Exception:
        return False


def _split_tuple(expr: str) -> list[str]:
    expr = _strip_formatted_commas(expr)
    if not expr:
        return []
    brackets = "()[]"
    if (
        len(expr) > 2
        and expr[0] in brackets
        and expr[-1] in brackets
        and all(ch not in expr[1:-1] for ch in brackets)
    ):
        return [elem.strip() for elem in expr[1:-1].split(",")]
    return [expr]


def _release_sympy_grade(given: str, truth: str) -> bool:
    """The release's ``grade_answer_sympy``."""
    truth_n = _release_normalize(truth)
    given_n = _release_normalize(given)
    if truth_n == given_n:
        return True
    if not given_n:
        return False
    truth_elems = _split_tuple(truth_n)
    given_elems = _split_tuple(given_n)
    if len(truth_elems) > 1 and (truth_n[0] != given_n[0] or truth_n[-1] != given_n[-1]):
        return False
    if len(truth_elems) != len(given_elems):
        return False
    for t, g in zip(truth_elems, given_elems):
        if _RELEASE_FRACTION.search(t) and _RELEASE_FRACTION.search(g):
            ok = t == g  # unreduced fractions must match exactly
        elif _str_is_int(t) != _str_is_int(g):
            ok = False
        else:
            ok = _equal_under_sympy(t, g)
        if not ok:
            return False
    return True


def _release_truth(ground_truth: str) -> str | None:
    if "\\boxed" in ground_truth:
        return _release_extract(ground_truth)
    return ground_truth


_PLAIN_INT = re.compile(r"-?[0-9]{1,15}")


@dataclass(frozen=True)
class ReleaseRule:
    """The JustRL release's rule-based grader, verdict for verdict (``evals/utils.py``).

    The last ``\\boxed{}`` of the whole response; ground truths bare or as ``\\boxed{..}``;
    Hendrycks MATH normalisation, then PRM800K normalisation and sympy equality with the
    release's guards. Its known false negatives are kept on purpose (reordered sets,
    ``2^{1/2}`` vs ``\\sqrt{2}``, ``\\fbox``, ...).
    """

    name: str = "release-rule"
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __post_init__(self) -> None:
        require("pylatexenc", self.name)

    def quick(self, response: str, ground_truth: str) -> Verdict | None:
        if not ground_truth:
            return Verdict(False, None, "empty-ground-truth")
        truth = _release_truth(ground_truth)
        given = _release_extract(response)
        if given is None:
            return Verdict(False, None, "no-boxed")
        if truth is None:
            return Verdict(False, given, "ground-truth-unreadable")
        if _mathd_normalize(given) == _mathd_normalize(truth):
            return Verdict(True, given, "normalized-match")
        if _PLAIN_INT.fullmatch(given) and _PLAIN_INT.fullmatch(truth):
            return Verdict(int(given) == int(truth), given, "integer-compare")
        return None

    def full(self, response: str, ground_truth: str) -> Verdict:
        verdict = self.quick(response, ground_truth)
        if verdict is not None:
            return verdict
        truth = _release_truth(ground_truth)
        given = _release_extract(response)
        assert truth is not None and given is not None
        if _release_sympy_grade(given, truth):
            return Verdict(True, given, "sympy-equal")
        return Verdict(False, given, "not-equal")

    def __call__(self, response: str, ground_truth: str) -> Verdict:
        return run_checked(self, response, ground_truth)


def _warm_up() -> None:
    workers.full_safely(ReleaseRule(), "The answer is \\boxed{\\frac{1}{2}}.", "0.5")
    workers.full_safely(ReleaseRule(), "Answer: $x^2+1$", "1+x^{2}")


workers.register_warm_up(_warm_up)
