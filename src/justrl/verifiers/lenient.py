"""``lenient``: Math-Verify equivalence on the answer the response states.

Math-Verify's own LaTeX parser and comparison (no hand-made parser), on the answer the response
states (:mod:`justrl.verifiers.stated`), after reading numbers exactly
(:mod:`justrl.verifiers.numbers`) and rewriting a few notations it misreads. Its signal-based
timeouts are off (they only work in a process's main thread): the time bound is the worker
process's (:mod:`justrl.verifiers.pool`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

from justrl.verifiers import numbers, stated, workers
from justrl.verifiers.base import DEFAULT_TIMEOUT_S, Verdict, require
from justrl.verifiers.boxed import FBOX, brace_depth
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
_REPEATING = re.compile(r"(-?)(\d*)\.(\d*)\\overline\{(\d+)\}")


def _repeating_to_fraction(m: re.Match[str]) -> str:
    sign, whole, fixed, period = m.groups()
    value = Fraction(int(whole or "0")) + Fraction(int(fixed or "0"), 10 ** len(fixed))
    value += Fraction(int(period), (10 ** len(period) - 1) * 10 ** len(fixed))
    value = -value if sign else value
    return f"\\frac{{{value.numerator}}}{{{value.denominator}}}"


def _prenormalize(answer: str) -> str:
    """Rewrite notations Math-Verify misreads into ones it reads (same value, other spelling)."""
    text = stated.clean_markup(answer).strip().rstrip(".").strip()
    text = text.replace("\\degree", "^\\circ").replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    m = _TEXT_NUMBER.fullmatch(text)
    if m is not None and (m.group(1).lower() in _NUMBER_WORDS or m.group(1)[-1:].isdigit()):
        text = m.group(1)
    text = _NUMBER_WORDS.get(text.lower(), text)
    text = numbers.normalize_number(text)
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
    """The answer a ground truth states: its boxes (joined as :mod:`.stated` joins them), its one
    math span, or itself."""
    truth = ground_truth.strip()
    if "\\boxed" in truth:
        inner = stated.box_answer(truth)
        if inner is not None and inner is not stated.UNCLOSED and inner is not stated.RETRACTED:
            return inner
    span = _ONE_SPAN.fullmatch(truth)
    if span is not None:
        return next(g for g in span.groups() if g is not None).strip()
    return truth


_ONE_SPAN = re.compile(r"\$\$([^$]*)\$\$|\$([^$]*)\$|\\\[(.*)\\\]", re.DOTALL)
_TOWER = re.compile(r"\^\s*\{[^{}]*\^|\^\s*\(?[0-9]+\s*\^|\*\*\s*\(?[0-9]+\s*\*\*")


def _percent_readings(given: str, truth: str) -> list[tuple[str, str]]:
    """``(given, truth)`` pairs to compare: percent signs dropped, and ``25%`` also read as 0.25."""
    (g, given_pct), (t, truth_pct) = numbers.strip_percent(given), numbers.strip_percent(truth)
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


_ASSIGNMENT = re.compile(r"[A-Za-z]=([^=<>]+)")
_SENTINELS = (stated.UNCLOSED, stated.RETRACTED)


def _settled_by_form(given: str, truth: str) -> Verdict | None:
    """What the answers' form alone settles (depth, towers, split digits, bases, unit powers)."""
    if brace_depth(given) > MAX_BRACE_DEPTH:
        return Verdict(False, given[:200], "too-deeply-nested")
    if _TOWER.search(given) and not _TOWER.search(truth):
        return Verdict(False, given[:200], "power-tower")
    if numbers.split_digits(given) and not numbers.split_digits(truth):
        return Verdict(False, given, "digits-split-by-space")
    if numbers.number_list_vs_number(given, truth):
        return Verdict(False, given, "list-vs-number")
    if numbers.base_mismatch(given, truth):
        return Verdict(False, given, "different-base")
    if numbers.unit_power_mismatch(given, truth):
        return Verdict(False, given, "different-unit-power")
    return None


@dataclass(frozen=True)
class Lenient:
    """Math-Verify equivalence on the answer the response states.

    The answer is found as :mod:`justrl.verifiers.stated` describes (the last ``\\boxed{}``,
    adjacent boxes joined, a retracted box not counting; else the conclusion -- "so/therefore
    ... <value>", "the answer is", "Answer:", ``####`` -- or the final math span), in the
    response's last ``tail_chars`` characters; a number in passing, or a value tried and
    rejected, is not an answer. Comparison is Math-Verify's (``\\dfrac`` vs ``/``, ``0.5`` vs ``\\frac12``,
    ``x=5`` vs ``5``, set order, intervals vs inequalities, units, percent, ...) after
    :mod:`justrl.verifiers.numbers` has read numbers exactly (thousands groups, mixed numbers,
    scientific notation, percent words, bases, unit powers). Its signal-based timeouts are off:
    the bound is ours (a worker process killed on overrun).
    """

    name: str = "lenient"
    timeout_s: float = DEFAULT_TIMEOUT_S
    tail_chars: int = LENIENT_TAIL_CHARS

    def __post_init__(self) -> None:
        require("math_verify", self.name)

    def quick(self, response: str, ground_truth: str) -> Verdict | None:
        tail = response[-self.tail_chars :]
        truth = _unwrap_truth(ground_truth)
        if "\\boxed" not in tail and FBOX not in tail:
            concluded = stated.concluding_answer(tail)
            if concluded is not None:
                return self._compare_quick(concluded, truth)  # None: Math-Verify compares (full)
            if stated.rejects_its_value(tail):
                return Verdict(False, None, "rejected-value")  # tried, then rejected: no answer
            if "answer" in tail.lower():
                return None  # Math-Verify's anchored extraction decides (see _stated_answer)
            span = stated.final_math_span(tail)
            if span is None:
                return Verdict(False, None, "no-stated-answer")
            return self._compare_quick(span, truth)
        given = stated.decisive_box(tail)
        if given is None:
            return None  # Math-Verify's ranking decides (see _stated_answer)
        if given is stated.UNCLOSED:
            return Verdict(False, None, "unclosed-box")  # cut off inside its final answer
        if given is stated.RETRACTED:
            return Verdict(False, None, "retracted-box")
        return self._compare_quick(given, truth)

    def full(self, response: str, ground_truth: str) -> Verdict:
        verdict = self.quick(response, ground_truth)
        if verdict is not None:
            return verdict
        tail = response[-self.tail_chars :]
        given = stated.decisive_box(tail)
        if given is None:
            given = self._stated_answer(tail)
        if given is None or given in _SENTINELS:
            return Verdict(False, None, "no-stated-answer")
        truth = _unwrap_truth(ground_truth)
        return self._compare_quick(given, truth) or self._compare_math_verify(given, truth)

    def refutes(self, response: str, ground_truth: str) -> Verdict | None:
        """Lenient's rejection when it proves the boxed answer different in a class where its
        exact reading outranks the release's (:func:`justrl.verifiers.numbers.override_class`);
        else ``None``. Cheap: string checks only."""
        given = stated.decisive_box(response[-self.tail_chars :])
        if given is stated.RETRACTED:
            return Verdict(False, None, "retracted-box, overrides release-rule (retracted)")
        if given is None or given is stated.UNCLOSED:
            return None
        truth = _unwrap_truth(ground_truth)
        cls = numbers.override_class(given, truth)
        verdict = None if cls is None else self._compare_quick(given, truth)
        if verdict is None or verdict.correct:
            return None
        return replace(verdict, reason=f"{verdict.reason}, overrides release-rule ({cls})")

    @staticmethod
    def _stated_answer(tail: str) -> str | None:
        from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

        if "\\boxed" not in tail and FBOX not in tail:
            concluded = stated.concluding_answer(tail)
            if concluded is not None:
                return concluded
            tail = stated.clean_markup(tail)  # "**Answer: 15**" is not "15**"
        anchored = [
            LatexExtractionConfig(try_extract_without_anchor=False),
            ExprExtractionConfig(try_extract_without_anchor=False),
        ]
        found = parse(tail, anchored, parsing_timeout=None)  # type: ignore[arg-type]
        if found and isinstance(found[-1], str):
            return found[-1]
        if found:
            return str(found[0])
        return stated.final_math_span(tail) or stated.box_answer(tail)

    @staticmethod
    def _compare_quick(given: str, truth: str) -> Verdict | None:
        settled = _settled_by_form(given, truth)
        if settled is not None:
            return settled
        (g_text, g_pct), (t_text, t_pct) = numbers.strip_percent(given), numbers.strip_percent(truth)
        g, t = _light_normalize(g_text), _light_normalize(t_text)
        assignment = _ASSIGNMENT.fullmatch(g)
        if assignment is not None and "=" not in t:
            g = assignment.group(1)  # "x=5" answers "5", as Math-Verify reads it
        if g and g == t:
            return Verdict(True, given, "normalized-match")
        g_value, t_value = numbers.exact_number(g), numbers.exact_number(t)
        if g_value is not None and t_value is not None:
            equal = g_value == t_value or (g_pct and not t_pct and g_value / 100 == t_value)
            return Verdict(bool(equal), given, "number-compare")
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


WARM_UP_ANSWERS = (
    "\\frac{\\sqrt{21}}{5}",
    "(-6,6), (2,6)",
    "\\left( 3, \\frac{\\pi}{2} \\right) \\cup [-2, 7]",
    "\\{1,2,3\\}",
    "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}",
    "x^2+2x+1 = y",
    "\\text{Evelyn}",
    "2^{99} \\cdot 10^{-3}",
    "x \\le 3",
    "1-\\frac{2}{\\pi}",
    "3.5\\%",
    "90^\\circ",
    "\\sin(x) + \\log_2 8",
    "\\pm\\sqrt{3}i",
)
"""LaTeX answers of the kinds Math-Verify's parser meets, parsed once per worker before it serves."""


def _warm_up() -> None:
    workers.full_safely(Lenient(), "The answer is \\boxed{\\frac{1}{2}}.", "0.5")
    workers.full_safely(Lenient(), "Answer: $x^2+1$", "1+x^{2}")
    for answer in WARM_UP_ANSWERS:
        with contextlib.suppress(Exception):
            mv_parse.__wrapped__(answer)


workers.register_warm_up(_warm_up)
