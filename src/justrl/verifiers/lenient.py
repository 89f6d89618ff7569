"""``lenient``: Math-Verify equivalence on the answer the response states.

Math-Verify's own LaTeX parser and comparison (no hand-made parser), on the last ``\\boxed{}`` or
an "answer"-anchored statement, after rewriting a few notations it misreads. Its signal-based
timeouts are off (they only work in a process's main thread): the time bound is the worker
process's (:mod:`justrl.verifiers.pool`).
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from justrl.verifiers.base import DEFAULT_TIMEOUT_S, Verdict, require
from justrl.verifiers.boxed import BOXED, FBOX, brace_depth, last_box, last_boxed_content
from justrl.verifiers.pool import run_checked

LENIENT_TAIL_CHARS = 4096  # the stated answer is looked for in the response's last 4 KiB
MAX_BRACE_DEPTH = 64


class _DropTimeoutWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Timeout is disabled" not in record.getMessage()


for _logger_name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_logger_name).addFilter(_DropTimeoutWarning())

_SPACES = re.compile(r"\s+|\\[,;:! ]|\\q?quad")
_LIGHT_DROPS = ("\\left", "\\right", "\\displaystyle", "$", "\\$")
_NUMBER_WORDS_TEXT = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
    " fifteen sixteen seventeen eighteen nineteen twenty"
)
_NUMBER_WORDS = {word: str(value) for value, word in enumerate(_NUMBER_WORDS_TEXT.split())}
_TEXT_NUMBER = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{\s*(-?[0-9.]+|[A-Za-z]+)(?:\s+[A-Za-z ]*)?\}")
_THOUSANDS_MARK = re.compile(r"(?<=\d)(?:\\,|\\!|\{,\}|\\ |~)(?=\d{3}(?!\d))")
_SPACED_THOUSANDS = re.compile(r"-?\d{1,3}(?: \d{3})+")
_SCIENTIFIC = re.compile(
    r"(-?\d+(?:\.\d+)?)\s*(?:[eE]|\\times\s*10\s*\^|\\cdot\s*10\s*\^|\*\s*10\s*\^)\s*\{?([+-]?\d{1,3})\}?"
)
_REPEATING = re.compile(r"(-?)(\d*)\.(\d*)\\overline\{(\d+)\}")
_PERCENT = re.compile(r"(.+?)\s*(?:\\%|%|\\text\{\s*percent\s*\}|\s+percent)")


def _scientific_to_decimal(m: re.Match[str]) -> str:
    from decimal import Decimal

    value = Decimal(m.group(1)).scaleb(int(m.group(2)))
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _repeating_to_fraction(m: re.Match[str]) -> str:
    sign, whole, fixed, period = m.groups()
    value = Fraction(int(whole or "0")) + Fraction(int(fixed or "0"), 10 ** len(fixed))
    value += Fraction(int(period), (10 ** len(period) - 1) * 10 ** len(fixed))
    value = -value if sign else value
    return f"\\frac{{{value.numerator}}}{{{value.denominator}}}"


def _prenormalize(answer: str) -> str:
    """Rewrite notations Math-Verify misreads into ones it reads (same value, other spelling)."""
    text = answer.strip().rstrip(".").strip()
    text = text.replace("\\degree", "^\\circ").replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    m = _TEXT_NUMBER.fullmatch(text)
    if m is not None and (m.group(1).lower() in _NUMBER_WORDS or m.group(1)[-1:].isdigit()):
        text = m.group(1)
    text = _NUMBER_WORDS.get(text.lower(), text)
    text = _THOUSANDS_MARK.sub("", text)
    if _SPACED_THOUSANDS.fullmatch(text):
        text = text.replace(" ", "")
    m = _SCIENTIFIC.fullmatch(text)
    if m is not None and abs(int(m.group(2))) <= 60:
        text = _scientific_to_decimal(m)
    m = _REPEATING.fullmatch(text)
    if m is not None:
        text = _repeating_to_fraction(m)
    return text


def _light_normalize(answer: str) -> str:
    """Formatting-only normalisation: equal results mean the same mathematical answer."""
    text = _prenormalize(answer)
    for token in _LIGHT_DROPS:
        text = text.replace(token, "")
    return _SPACES.sub("", text)


def _unwrap_truth(ground_truth: str) -> str:
    truth = ground_truth.strip()
    if "\\boxed" in truth:
        inner = last_boxed_content(truth)
        if inner is not None:
            return inner
    if len(truth) >= 2 and truth[0] == "$" and truth[-1] == "$" and truth.count("$") == 2:
        return truth[1:-1]
    return truth


_TOWER = re.compile(r"\^\s*\{[^{}]*\^|\^\s*\(?[0-9]+\s*\^|\*\*\s*\(?[0-9]+\s*\*\*")


def _percent_readings(given: str, truth: str) -> list[tuple[str, str]]:
    """``(given, truth)`` pairs to compare: percent signs dropped, and ``25%`` also read as 0.25."""
    given_pct, truth_pct = _PERCENT.fullmatch(given), _PERCENT.fullmatch(truth)
    g = given_pct.group(1) if given_pct else given
    t = truth_pct.group(1) if truth_pct else truth
    readings = [(g, t)]
    if given_pct and not truth_pct:
        readings.append((f"\\frac{{{g}}}{{100}}", t))
    return readings


@functools.lru_cache(maxsize=4096)
def mv_parse(latex: str) -> tuple[Any, ...]:
    """Math-Verify's parse of one answer, cached (the samples of one problem repeat answers)."""
    from math_verify import parse

    return tuple(parse("\\boxed{" + latex + "}", parsing_timeout=None))  # type: ignore[arg-type]


@functools.lru_cache(maxsize=16384)
def _mv_equal(gold_latex: str, pred_latex: str) -> bool | None:
    """Math-Verify's verdict on two answers (``None`` when the gold one does not parse); cached,
    since the samples of one problem repeat answers."""
    from math_verify import verify

    gold = mv_parse(gold_latex)
    if not gold:
        return None
    pred = mv_parse(pred_latex)
    return bool(pred) and verify(list(gold), list(pred), allow_set_relation_comp=True, timeout_seconds=None)


_EXACT_NUMBER = re.compile(
    r"(-?)(?:(\d{1,60}(?:\.\d{1,60})?)|\\frac\{(\d{1,60})\}\{(\d{1,60})\}|(\d{1,60})/(\d{1,60}))"
)


def _exact_number(text: str) -> Fraction | None:
    """The exact value of a plain integer, decimal or fraction (``-3``, ``0.25``, ``\\frac{1}{4}``)."""
    m = _EXACT_NUMBER.fullmatch(text)
    if m is None:
        return None
    sign, decimal, frac_num, frac_den, slash_num, slash_den = m.groups()
    try:
        if decimal is not None:
            value = Fraction(decimal)
        elif frac_num is not None:
            value = Fraction(int(frac_num), int(frac_den))
        else:
            value = Fraction(int(slash_num), int(slash_den))
    except ZeroDivisionError:
        return None
    return -value if sign else value


_PHRASE_TO_BOX = re.compile(r"[^$\\]{0,80}?(?:\$\$?|\\\[|\\\()?\s*")


_ASSIGNMENT = re.compile(r"[A-Za-z]=([^=<>]+)")
_UNCLOSED = "\\boxed{"  # sentinel returned by _decisive_box (compared by identity)


def _decisive_box(tail: str) -> str | None:
    """The content of the last ``\\boxed{}`` when Math-Verify's ranking surely picks it as the
    answer, :data:`_UNCLOSED` when that box never closes, else ``None`` (let Math-Verify rank).

    The box is decisive when no "final answer" phrase precedes it, or a single one leads straight
    into it ("**Final Answer** \\[ \\boxed{...", "final answer is $\\boxed{..."), which
    Math-Verify's phrase patterns then read as the same answer.
    """
    box = tail.rfind(BOXED)
    if box < 0 or box < tail.rfind(FBOX):
        return None
    lowered = tail.lower()
    phrase = lowered.find("final answer")
    if phrase >= 0:
        if lowered.find("final answer", phrase + 1) >= 0 or phrase > box:
            return None
        if _PHRASE_TO_BOX.fullmatch(tail, phrase + len("final answer"), box) is None:
            return None
    content = last_boxed_content(tail[box:])
    return _UNCLOSED if content is None else content


@dataclass(frozen=True)
class Lenient:
    """Math-Verify equivalence on the answer the response states.

    The answer is the last ``\\boxed{}`` (or ``\\fbox{}``), or an "answer"-anchored statement
    ("The final answer is $x$", "Answer: 5"), found the way Math-Verify ranks them, in the
    response's last ``tail_chars`` characters; a bare number in the text is not an answer.
    Comparison is Math-Verify's (``\\dfrac`` vs ``/``, ``0.5`` vs ``\\frac12``, ``x=5`` vs ``5``,
    set order, intervals vs inequalities, units, percent, ...) after rewriting a few notations it
    misreads (``4.5e33``, ``3\\,159``, ``0.\\overline{3}``, ``\\text{three}``, ``\\degree``). Its
    signal-based timeouts are off: the bound is ours (a worker process killed on overrun).
    """

    name: str = "lenient"
    timeout_s: float = DEFAULT_TIMEOUT_S
    tail_chars: int = LENIENT_TAIL_CHARS

    def __post_init__(self) -> None:
        require("math_verify", self.name)

    def quick(self, response: str, ground_truth: str) -> Verdict | None:
        tail = response[-self.tail_chars :]
        if "\\boxed" not in tail and FBOX not in tail and "answer" not in tail.lower():
            return Verdict(False, None, "no-stated-answer")
        given = _decisive_box(tail)
        if given is None:
            return None  # Math-Verify's ranking decides (see _stated_answer)
        if given is _UNCLOSED:
            return Verdict(False, None, "unclosed-box")  # cut off inside its final answer
        return self._compare_quick(given, _unwrap_truth(ground_truth))

    def full(self, response: str, ground_truth: str) -> Verdict:
        verdict = self.quick(response, ground_truth)
        if verdict is not None:
            return verdict
        tail = response[-self.tail_chars :]
        given = _decisive_box(tail)
        if given is None:
            given = self._stated_answer(tail)
        if given is None:
            return Verdict(False, None, "no-stated-answer")
        truth = _unwrap_truth(ground_truth)
        return self._compare_quick(given, truth) or self._compare_math_verify(given, truth)

    @staticmethod
    def _stated_answer(tail: str) -> str | None:
        from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

        anchored = [
            LatexExtractionConfig(try_extract_without_anchor=False),
            ExprExtractionConfig(try_extract_without_anchor=False),
        ]
        found = parse(tail, anchored, parsing_timeout=None)  # type: ignore[arg-type]
        if found and isinstance(found[-1], str):
            return found[-1]
        if found:
            return str(found[0])
        return last_box(tail)  # \fbox{}, which Math-Verify does not look for

    @staticmethod
    def _compare_quick(given: str, truth: str) -> Verdict | None:
        if brace_depth(given) > MAX_BRACE_DEPTH:
            return Verdict(False, given[:200], "too-deeply-nested")
        if _TOWER.search(given) and not _TOWER.search(truth):
            return Verdict(False, given[:200], "power-tower")
        g, t = _light_normalize(given), _light_normalize(truth)
        assignment = _ASSIGNMENT.fullmatch(g)
        if assignment is not None and "=" not in t:
            g = assignment.group(1)  # "x=5" answers "5", as Math-Verify reads it
        if g and g == t:
            return Verdict(True, given, "normalized-match")
        g_value, t_value = _exact_number(g), _exact_number(t)
        if g_value is not None and t_value is not None:
            return Verdict(g_value == t_value, given, "number-compare")
        return None

    @staticmethod
    def _compare_math_verify(given: str, truth: str) -> Verdict:
        for pred_latex, gold_latex in _percent_readings(_prenormalize(given), _prenormalize(truth)):
            equal = _mv_equal(gold_latex, pred_latex)
            if equal is None:
                return Verdict(False, given, "ground-truth-unparsed")
            if equal:
                return Verdict(True, given, "math-verify-equal")
        return Verdict(False, given, "math-verify-different")

    def __call__(self, response: str, ground_truth: str) -> Verdict:
        return run_checked(self, response, ground_truth)

