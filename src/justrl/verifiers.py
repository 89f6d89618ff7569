"""Answer verifiers: the strict training reward and the evaluation graders.

Every verifier maps ``(response, ground_truth)`` to a :class:`Verdict` and is looked up by name
with :func:`get`:

``dapo-strict``
    The JustRL training reward (:func:`dapo_reward`): the last balanced ``\\boxed{}`` near the end
    of the response, compared with the ground truth character for character (verl's
    ``math_dapo.compute_score(..., strict_box_verify=True)``).
``release-rule``
    The JustRL release's rule-based evaluation grader (``evals/utils.py: grade_answer_verl``),
    reproduced verdict for verdict, known false negatives included -- but without ever handing
    model text to ``eval``: sympy's token transformations produce the same code the release would
    evaluate, and a small interpreter that only knows arithmetic, sympy numbers, symbols and sympy
    functions evaluates it.
``lenient``
    Math-Verify equivalence (its LaTeX parser, no hand-made one) on the answer the response states
    (``\\boxed{}`` or an "answer:"-anchored statement), with Math-Verify's signal timeouts off.
``justrl-eval``
    The evaluation grader in stages: ``release-rule``, then ``lenient``, then an optional model
    judge (:mod:`justrl.judge`). Each verdict records the stage that settled it.

Every check that may be slow runs in a worker process that is killed when it exceeds its time
bound (default 1 s), which works from any thread or process, unlike ``signal.alarm``. Cheap string
checks (``quick``) settle most answers without leaving the calling process. :func:`verify_batch`
spreads a batch over a pool of such workers.
"""

from __future__ import annotations

import ast
import atexit
import contextlib
import functools
import logging
import math
import multiprocessing
import multiprocessing.connection
import operator
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any, Protocol, runtime_checkable

DEFAULT_TIMEOUT_S = 1.0
DEFAULT_MEMORY_LIMIT_MB = 2048  # address-space cap of a verification worker


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one response against its ground truth."""

    correct: bool
    extracted: str | None  # the answer the verifier read from the response, if any
    reason: str  # short explanation, e.g. "exact-match", "no-boxed", "timeout"
    stage: str | None = None  # the stage that settled it (``justrl-eval``)


@runtime_checkable
class Verifier(Protocol):
    name: str

    def __call__(self, response: str, ground_truth: str) -> Verdict: ...


class _Checked(Protocol):
    """What the verifiers below implement: a cheap partial check and a complete one."""

    name: str
    timeout_s: float

    def quick(self, response: str, ground_truth: str) -> Verdict | None: ...

    def full(self, response: str, ground_truth: str) -> Verdict: ...


# --------------------------------------------------------------------------------------------
# dapo-strict: the training reward
# --------------------------------------------------------------------------------------------

BOXED = "\\boxed{"
STRICT_TAIL_CHARS = 300  # verl's compute_score only reads the response's last 300 characters
STRICT_BOX_WINDOW = 100  # ... and the strict box check only the last 100 of those


def last_boxed_content(text: str, opener: str = BOXED) -> str | None:
    """Content of the last ``opener`` (``\\boxed{``) if its braces balance, else ``None``.

    The last occurrence is the only candidate: when its braces never close there is no answer
    (as in verl's ``last_boxed_only_string``).
    """
    start = text.rfind(opener)
    if start < 0:
        return None
    body = start + len(opener)
    depth = 1
    for i in range(body, len(text)):
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[body:i]
    return None


@dataclass(frozen=True)
class DapoStrict:
    """JustRL's training reward: the last balanced ``\\boxed{}`` near the end, compared exactly.

    Matches ``verl.utils.reward_score.math_dapo.compute_score(..., strict_box_verify=True)``:
    only the last 300 characters of the response are read, the box must lie within the final 100
    of those, and its content must equal the ground truth string character for character (no
    stripping, no normalisation; a ground truth written ``\\boxed{204}``, as in AIME24, therefore
    never matches -- unwrap such ground truths before training on them).
    """

    name: str = "dapo-strict"
    tail_chars: int = STRICT_TAIL_CHARS
    box_window: int = STRICT_BOX_WINDOW
    timeout_s: float = DEFAULT_TIMEOUT_S  # unused: the check is linear in a 300-character tail

    def quick(self, response: str, ground_truth: str) -> Verdict:
        window = response[-self.tail_chars :][-self.box_window :]
        extracted = last_boxed_content(window)
        if extracted is None:
            return Verdict(False, None, "no-boxed")
        if extracted == ground_truth:
            return Verdict(True, extracted, "exact-match")
        return Verdict(False, extracted, "mismatch")

    full = quick

    def __call__(self, response: str, ground_truth: str) -> Verdict:
        return self.quick(response, ground_truth)


_DAPO_STRICT = DapoStrict()


def dapo_reward(response: str, ground_truth: str) -> float:
    """The JustRL training reward: +1.0 when ``dapo-strict`` accepts the response, else -1.0."""
    return 1.0 if _DAPO_STRICT.quick(response, ground_truth).correct else -1.0


# --------------------------------------------------------------------------------------------
# Safe evaluation of the code sympy's parse_expr would eval
# --------------------------------------------------------------------------------------------


class UnsafeExpression(ValueError):
    """The expression needs something the safe evaluator does not do (it is never run)."""


_STRING_CONSTRUCTORS = frozenset({"Symbol", "Function", "Integer", "Float", "Rational", "Number"})
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMERIC_LITERAL = re.compile(r"[0-9]*\.?[0-9]*(?:[eE][+-]?[0-9]+)?")
_PLAIN_SYMPY_FUNCTIONS = frozenset({"sqrt", "root", "cbrt", "real_root"})  # functions, not classes
_BIN_OPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.Mod: operator.mod,
    ast.FloorDiv: operator.floordiv,
}
_UNARY_OPS: dict[type, Callable[[Any], Any]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
    ast.Not: operator.not_,
}
_COMPARE_OPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


class _SafeSympyEvaluator:
    """Evaluates the Python code produced by sympy's ``stringify_expr`` without ``eval``.

    It knows numbers, tuples/lists, arithmetic and comparisons, names bound to sympy objects,
    sympy classes and a few sympy functions, and the constructors the token transformations
    emit (``Symbol('x')``, ``Integer(2)``, ``Float('1.5')``, ...). Strings exist only as
    arguments of those constructors; no attribute access, subscripts, keywords, builtins or
    anything else -- those raise :class:`UnsafeExpression`.
    """

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.namespace = namespace

    def evaluate(self, code: str) -> Any:
        tree = ast.parse(code.strip(" \t"), mode="eval")
        return self._eval(tree.body)

    def _eval(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, (bool, int, float, complex)) or node.value is None:
                return node.value
            raise UnsafeExpression(f"constant {type(node.value).__name__}")
        if isinstance(node, ast.Name):
            return self._name(node.id)
        if isinstance(node, ast.BinOp) and type(node.op) in _BIN_OPS:
            return _BIN_OPS[type(node.op)](self._eval(node.left), self._eval(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY_OPS:
            return _UNARY_OPS[type(node.op)](self._eval(node.operand))
        if isinstance(node, (ast.Tuple, ast.List)):
            items = [self._eval(elt) for elt in node.elts]
            return tuple(items) if isinstance(node, ast.Tuple) else items
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        raise UnsafeExpression(f"{type(node).__name__} is not evaluated")

    def _name(self, name: str) -> Any:
        if name not in self.namespace:
            raise NameError(name)
        obj = self.namespace[name]
        from sympy import Basic

        if isinstance(obj, Basic) or (isinstance(obj, type) and issubclass(obj, Basic)):
            return obj
        if name in _PLAIN_SYMPY_FUNCTIONS:
            return obj
        raise UnsafeExpression(f"name {name!r} is not evaluated")

    def _compare(self, node: ast.Compare) -> Any:
        left = self._eval(node.left)
        result: Any = True
        for i, (op, comparator) in enumerate(zip(node.ops, node.comparators)):
            if type(op) not in _COMPARE_OPS:
                raise UnsafeExpression(f"{type(op).__name__} is not evaluated")
            right = self._eval(comparator)
            result = _COMPARE_OPS[type(op)](left, right)
            if i < len(node.ops) - 1 and not result:  # Python's chained comparison
                return result
            left = right
        return result

    def _call(self, node: ast.Call) -> Any:
        if not isinstance(node.func, ast.Name) or node.keywords:
            raise UnsafeExpression("only plain calls of sympy names are evaluated")
        name = node.func.id
        func = self._name(name)
        if name == "Number" and [type(a) for a in node.args] == [ast.Constant]:
            return self._number_literal(node.args[0])  # sympy's Number(str) would sympify it
        return func(*[self._argument(name, arg) for arg in node.args])

    @staticmethod
    def _number_literal(node: ast.AST) -> Any:
        import sympy

        text = getattr(node, "value", None)
        if not isinstance(text, str) or not _NUMERIC_LITERAL.fullmatch(text) or not text.strip("."):
            raise UnsafeExpression("number literal expected")
        return sympy.Integer(text) if text.isdigit() else sympy.Float(text)

    def _argument(self, func_name: str, node: ast.AST) -> Any:
        if isinstance(node, ast.Starred):
            raise UnsafeExpression("starred arguments are not evaluated")
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            return self._eval(node)
        text = node.value
        if func_name not in _STRING_CONSTRUCTORS:
            raise UnsafeExpression(f"string argument to {func_name}")
        if func_name in ("Symbol", "Function"):
            if not _IDENTIFIER.fullmatch(text):
                raise UnsafeExpression("symbol name is not an identifier")
            return text
        if (
            func_name == "Number"
            or not _NUMERIC_LITERAL.fullmatch(text)
            or not any(c.isdigit() for c in text)
        ):
            raise UnsafeExpression("number literal expected")
        return text


_PARSE_NAMESPACE: dict[str, Any] | None = None


def _parse_namespace() -> dict[str, Any]:
    """The namespace ``parse_expr`` uses by default (sympy's names, builtin functions, Max/Min)."""
    global _PARSE_NAMESPACE
    if _PARSE_NAMESPACE is None:
        import builtins
        import types

        import sympy

        namespace: dict[str, Any] = {}
        namespace.update({name: getattr(sympy, name) for name in sympy.__all__})
        for name, obj in vars(builtins).items():
            if isinstance(obj, types.BuiltinFunctionType):
                namespace[name] = obj  # kept so tokens are transformed exactly as parse_expr does
        namespace["max"] = sympy.Max
        namespace["min"] = sympy.Min
        _PARSE_NAMESPACE = namespace
    return _PARSE_NAMESPACE


def safe_parse_expr(text: str, implicit_multiplication: bool = True) -> Any:
    """What ``sympy.parse_expr(text, transformations=standard (+ implicit))`` returns, without eval.

    The string goes through sympy's own tokenizer and token transformations (so the code is the
    code parse_expr would evaluate); that code is then evaluated by :class:`_SafeSympyEvaluator`.
    Raises :class:`UnsafeExpression` for anything beyond arithmetic on sympy objects.
    """
    from sympy.parsing import sympy_parser as sp

    transformations = sp.standard_transformations
    if implicit_multiplication:
        transformations = transformations + (sp.implicit_multiplication_application,)
    namespace = _parse_namespace()
    code = sp.stringify_expr(text, {}, namespace, transformations)
    return _SafeSympyEvaluator(namespace).evaluate(code)


# --------------------------------------------------------------------------------------------
# release-rule: the JustRL release's rule-based grader (evals/utils.py), reproduced
# --------------------------------------------------------------------------------------------


def _release_last_boxed(text: str) -> str | None:
    """The release's ``last_boxed_only_string``: from the last ``\\boxed`` (else ``\\fbox``)
    to the brace that closes the first ``{`` after it, ``\\boxed`` included."""
    start = text.rfind("\\boxed")
    if start < 0:
        start = text.rfind("\\fbox")
        if start < 0:
            return None
    depth = 0
    for i in range(start, len(text)):
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
    return None


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


def _require(module: str, verifier: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ImportError(f"the {verifier} verifier needs the {module!r} package: pip install {module}")


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
        _require("pylatexenc", self.name)  # a missing parser must not quietly change verdicts

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


# --------------------------------------------------------------------------------------------
# lenient: Math-Verify equivalence
# --------------------------------------------------------------------------------------------

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
    from fractions import Fraction

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


def _brace_depth(text: str) -> int:
    depth = deepest = 0
    for ch in text:
        if ch == "{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch == "}":
            depth -= 1
    return deepest


_TOWER = re.compile(r"\^\s*\{[^{}]*\^|\^\s*\(?[0-9]+\s*\^|\*\*\s*\(?[0-9]+\s*\*\*")
_FBOX = "\\fbox{"


def _last_box(text: str) -> str | None:
    """Content of the last ``\\boxed{}`` or ``\\fbox{}`` whose braces balance."""
    opener = BOXED if text.rfind(BOXED) >= text.rfind(_FBOX) else _FBOX
    return last_boxed_content(text, opener)


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
def _mv_parse(latex: str) -> tuple[Any, ...]:
    from math_verify import parse

    return tuple(parse("\\boxed{" + latex + "}", parsing_timeout=None))  # type: ignore[arg-type]


@functools.lru_cache(maxsize=16384)
def _mv_equal(gold_latex: str, pred_latex: str) -> bool | None:
    """Math-Verify's verdict on two answers (``None`` when the gold one does not parse); cached,
    since the samples of one problem repeat answers."""
    from math_verify import verify

    gold = _mv_parse(gold_latex)
    if not gold:
        return None
    pred = _mv_parse(pred_latex)
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
    if box < 0 or box < tail.rfind(_FBOX):
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
        _require("math_verify", self.name)

    def quick(self, response: str, ground_truth: str) -> Verdict | None:
        tail = response[-self.tail_chars :]
        if "\\boxed" not in tail and _FBOX not in tail and "answer" not in tail.lower():
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
        return _last_box(tail)  # \fbox{}, which Math-Verify does not look for

    @staticmethod
    def _compare_quick(given: str, truth: str) -> Verdict | None:
        if _brace_depth(given) > MAX_BRACE_DEPTH:
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


# --------------------------------------------------------------------------------------------
# justrl-eval: release-rule, then lenient, then an optional judge
# --------------------------------------------------------------------------------------------


class Judge(Protocol):
    """A model judge (see :mod:`justrl.judge`): True when it grades the answer correct."""

    def judge(
        self, questions: Sequence[str], responses: Sequence[str], ground_truths: Sequence[str]
    ) -> list[bool]: ...


STAGE_RELEASE = "release-rule"
STAGE_LENIENT = "lenient"
STAGE_JUDGE = "judge"


@dataclass(frozen=True)
class JustrlEval:
    """The evaluation grader: each answer is settled by the first stage that accepts it.

    Stages: ``release-rule`` (the JustRL release's rule grader), ``lenient`` (Math-Verify
    equivalence), then -- only when a ``judge`` is given -- the model judge on what both
    rejected. A rejection records the last stage that ran. ``stage`` on the verdict says which.
    """

    name: str = "justrl-eval"
    timeout_s: float = DEFAULT_TIMEOUT_S
    judge: Judge | None = field(default=None, compare=False)
    release: ReleaseRule = field(default_factory=ReleaseRule)
    lenient: Lenient = field(default_factory=Lenient)

    def quick(self, response: str, ground_truth: str) -> Verdict | None:
        first = self.release.quick(response, ground_truth)
        if first is None:
            return None
        if first.correct:
            return replace(first, stage=STAGE_RELEASE)
        second = self.lenient.quick(response, ground_truth)
        if second is None:
            return None
        return replace(second, stage=STAGE_LENIENT)

    def full(self, response: str, ground_truth: str) -> Verdict:
        first = self.release.full(response, ground_truth)
        if first.correct:
            return replace(first, stage=STAGE_RELEASE)
        return replace(self.lenient.full(response, ground_truth), stage=STAGE_LENIENT)

    def __call__(self, response: str, ground_truth: str) -> Verdict:
        verdict = run_checked(replace(self, judge=None), response, ground_truth)
        if verdict.correct or self.judge is None:
            return verdict
        return apply_judge(self.judge, [verdict], [""], [response], [ground_truth])[0]


def apply_judge(
    judge: Judge,
    verdicts: Sequence[Verdict],
    questions: Sequence[str],
    responses: Sequence[str],
    ground_truths: Sequence[str],
) -> list[Verdict]:
    """Send every rejected verdict to ``judge`` in one batch and record its grades."""
    rejected = [i for i, v in enumerate(verdicts) if not v.correct]
    out = list(verdicts)
    if not rejected:
        return out
    grades = judge.judge(
        [questions[i] for i in rejected],
        [responses[i] for i in rejected],
        [ground_truths[i] for i in rejected],
    )
    for i, grade in zip(rejected, grades):
        out[i] = replace(
            out[i],
            correct=bool(grade),
            reason="judge-correct" if grade else "judge-rejected",
            stage=STAGE_JUDGE,
        )
    return out


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------

_FACTORIES: dict[str, Callable[..., Any]] = {
    "dapo-strict": DapoStrict,
    "lenient": Lenient,
    "release-rule": ReleaseRule,
    "justrl-eval": JustrlEval,
}


def known_verifiers() -> list[str]:
    return list(_FACTORIES)


def get(name: str, **options: Any) -> Verifier:
    """The verifier called ``name``, built with ``options`` (e.g. ``timeout_s=2.0``).

    Unknown names raise ``ValueError`` listing the known ones.
    """
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ValueError(
            f"unknown verifier {name!r}; known verifiers: {', '.join(known_verifiers())}"
        ) from None
    return factory(**options)


# --------------------------------------------------------------------------------------------
# Bounded execution: worker processes that are killed when they overrun
# --------------------------------------------------------------------------------------------

_IN_WORKER = False  # set in verification workers: run checks inline, the parent bounds them


def _full_safely(verifier: _Checked, response: str, ground_truth: str) -> Verdict:
    try:
        return verifier.full(response, ground_truth)
    except MemoryError:
        return Verdict(False, None, "memory-limit")
    except RecursionError:
        return Verdict(False, None, "too-deeply-nested")
    except Exception as exc:  # a verifier bug must not take the batch down
        return Verdict(False, None, f"error: {type(exc).__name__}")


def run_checked(verifier: _Checked, response: str, ground_truth: str) -> Verdict:
    """``verifier.quick`` here, else ``verifier.full`` in a worker bounded by ``timeout_s``."""
    verdict = verifier.quick(response, ground_truth)
    if verdict is not None:
        return verdict
    if _IN_WORKER:
        return _full_safely(verifier, response, ground_truth)
    return _POOL.run_one(verifier, response, ground_truth, verifier.timeout_s)


def _limit_memory(megabytes: int) -> None:
    if megabytes <= 0:
        return
    try:
        import resource

        limit = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass


def _worker_setup(memory_limit_mb: int) -> None:
    import signal

    global _IN_WORKER
    _IN_WORKER = True
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    _limit_memory(memory_limit_mb)


def _serve(conn: multiprocessing.connection.Connection) -> None:
    """A verification worker's loop: answers ``(verifier, [(index, response, truth), ...])``
    item by item, until the parent closes the connection."""
    _exit_with_parent()
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        verifier, items = message
        for index, response, truth in items:
            conn.send((index, _full_safely(verifier, response, truth)))


def _worker_main(fd: int, memory_limit_mb: int) -> None:
    """Entry point of a worker started as its own interpreter (where there is no fork)."""
    _worker_setup(memory_limit_mb)
    _warm_up()
    _serve(multiprocessing.connection.Connection(fd))


def _zygote_main(fd: int, memory_limit_mb: int) -> None:
    """Entry point of the zygote: a warmed-up interpreter that forks workers on request.

    Each byte received asks for a worker; the reply is the worker's pid with one end of a
    socket pair to it (``SCM_RIGHTS``). The zygote has one thread, so forking it is safe, and
    its children inherit the imported modules and warm parser caches: a worker starts in
    milliseconds. It exits when the parent closes the control socket (or dies).
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # workers are reaped by the kernel
    control = socket.socket(fileno=fd)
    _warm_up()
    control.sendall(b"R")
    while control.recv(1):
        mine, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            control.close()
            mine.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            _worker_setup(memory_limit_mb)
            try:
                _serve(multiprocessing.connection.Connection(theirs.detach()))
            finally:
                os._exit(0)
        theirs.close()
        socket.send_fds(control, [str(pid).encode()], [mine.fileno()])
        mine.close()
    os._exit(0)


def _exit_with_parent() -> None:
    """Leave as soon as the parent is gone, even in the middle of a long check."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="justrl-parent-watch", daemon=True).start()


_WARM_UP_ANSWERS = (
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


def _warm_up() -> None:
    """Build the parsers' caches once, outside any item's time budget.

    Math-Verify's LaTeX parser (ANTLR) builds its prediction tables lazily: a worker's first
    parses of each kind of answer take several times longer than later ones.
    """
    for verifier in (Lenient(), ReleaseRule()):
        _full_safely(verifier, "The answer is \\boxed{\\frac{1}{2}}.", "0.5")
        _full_safely(verifier, "Answer: $x^2+1$", "1+x^{2}")
    for answer in _WARM_UP_ANSWERS:
        with contextlib.suppress(Exception):
            _mv_parse.__wrapped__(answer)


class WorkerDied(RuntimeError):
    pass


_ENTRY_CODE = "import sys; from justrl import verifiers; verifiers.{}(int(sys.argv[1]), int(sys.argv[2]))"
START_TIMEOUT_S = 60.0


def _start_interpreter(entry: str, memory_limit_mb: int) -> tuple[subprocess.Popen[bytes], socket.socket]:
    """``python -c 'verifiers.<entry>(fd, memory_limit_mb)'`` with a socket to it.

    A fresh interpreter, not a fork of the caller: safe from threaded parents, and the caller's
    ``__main__`` is never re-imported.
    """
    parent_sock, child_sock = socket.socketpair()
    env = dict(os.environ)
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    child_fd = child_sock.fileno()
    process = subprocess.Popen(
        [sys.executable, "-c", _ENTRY_CODE.format(entry), str(child_fd), str(memory_limit_mb)],
        pass_fds=(child_fd,),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        env=env,
        close_fds=True,
    )
    child_sock.close()
    return process, parent_sock


class _Zygote:
    """The parent's handle on the zygote process (see :func:`_zygote_main`)."""

    def __init__(self, memory_limit_mb: int) -> None:
        self.process, self.control = _start_interpreter("_zygote_main", memory_limit_mb)
        self.ready = False
        self.lock = threading.Lock()

    def fork_worker(self) -> tuple[int, socket.socket]:
        with self.lock:
            if not self.ready:
                self.control.settimeout(START_TIMEOUT_S)
                if self.control.recv(1) != b"R":
                    raise WorkerDied(f"the verification zygote exited (code {self.process.poll()})")
                self.ready = True
            self.control.settimeout(START_TIMEOUT_S)
            self.control.sendall(b"F")
            message, fds, _, _ = socket.recv_fds(self.control, 32, 1)
            if not message or not fds:
                raise WorkerDied(f"the verification zygote exited (code {self.process.poll()})")
            return int(message), socket.socket(fileno=fds[0])

    def close(self) -> None:
        self.control.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        if self.process.poll() is None:
            self.process.kill()


_CAN_FORK = hasattr(os, "fork") and hasattr(socket, "send_fds")


class _Worker:
    """One verification worker process and the connection to it.

    Forked by the zygote where the platform can fork, else started as its own interpreter.
    """

    def __init__(self, memory_limit_mb: int, zygote: _Zygote | None) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        if zygote is not None:
            self.pid, sock = zygote.fork_worker()
        else:
            self.process, sock = _start_interpreter("_worker_main", memory_limit_mb)
            self.pid = self.process.pid
        self.conn = multiprocessing.connection.Connection(sock.detach())
        self.pending: deque[tuple[int, str, str]] = deque()
        self.ready = False  # set when the worker has said "ready"
        self.deadline = time.monotonic() + START_TIMEOUT_S

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def poll_ready(self) -> bool:
        """Whether the worker is ready, reading its "ready" message if it has come (no waiting)."""
        if not self.ready and self.conn.poll(0):
            try:
                self.conn.recv()
            except (EOFError, OSError):
                return False
            self.ready, self.deadline = True, math.inf
        return self.ready

    def send(self, verifier: _Checked, items: list[tuple[int, str, str]], timeout_s: float) -> None:
        self.pending.extend(items)
        self.deadline = time.monotonic() + timeout_s
        self.conn.send((verifier, items))

    def kill(self) -> None:
        import signal

        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
        self.conn.close()


@dataclass
class PoolStats:
    items: int = 0  # items sent to workers (those ``quick`` could not settle)
    timeouts: int = 0
    worker_deaths: int = 0
    retries: int = 0


class _WorkerPool:
    """Worker processes shared by single calls and batches; idle ones are kept for reuse."""

    def __init__(self) -> None:
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self.memory_limit_mb = int(os.environ.get("JUSTRL_VERIFIER_MEMORY_MB", DEFAULT_MEMORY_LIMIT_MB))
        self.stats = PoolStats()
        self._busy: set[_Worker] = set()
        self._zygote: _Zygote | None = None
        self._zygote_lock = threading.Lock()

    def _new_worker(self) -> _Worker:
        if not _CAN_FORK:
            return _Worker(self.memory_limit_mb, None)
        for attempt in range(2):
            with self._zygote_lock:
                if self._zygote is None:
                    self._zygote = _Zygote(self.memory_limit_mb)
                zygote = self._zygote
            try:
                return _Worker(self.memory_limit_mb, zygote)
            except (OSError, ValueError, WorkerDied):
                with self._zygote_lock:
                    if self._zygote is zygote:
                        self._zygote = None
                zygote.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def acquire(self) -> _Worker:
        """An idle worker (a ready one first), else a new one (which starts in the background)."""
        with self._lock:
            alive = [w for w in self._idle if w.alive()]
            for worker in self._idle:
                if worker not in alive:
                    worker.kill()
            alive.sort(key=_Worker.poll_ready)  # ready ones last, popped first
            self._idle = alive
            if self._idle:
                worker = self._idle.pop()
                self._busy.add(worker)
                return worker
        worker = self._new_worker()
        with self._lock:
            self._busy.add(worker)
        return worker

    def release(self, worker: _Worker, healthy: bool = True) -> None:
        with self._lock:
            self._busy.discard(worker)
            if healthy and len(self._idle) < 2 * _cpu_count():
                worker.pending.clear()
                self._idle.append(worker)
                return
        worker.kill()

    def worker_pids(self, busy_only: bool = False) -> list[int]:
        with self._lock:
            busy = [w.pid for w in self._busy]
            return busy if busy_only else busy + [w.pid for w in self._idle]

    def shutdown(self) -> None:
        with self._lock:
            workers = self._idle + list(self._busy)
            self._idle, self._busy = [], set()
        for worker in workers:
            worker.kill()
        with self._zygote_lock:
            zygote, self._zygote = self._zygote, None
        if zygote is not None:
            zygote.close()

    def run_one(self, verifier: _Checked, response: str, truth: str, timeout_s: float) -> Verdict:
        results = self.run_many(verifier, [(0, response, truth)], timeout_s, workers=1)
        return results[0]

    def run_many(
        self,
        verifier: _Checked,
        items: list[tuple[int, str, str]],
        timeout_s: float,
        workers: int,
        chunk_size: int = 8,
        progress: Callable[[int], None] | None = None,
    ) -> dict[int, Verdict]:
        """Verdicts for ``items`` by index, each bounded by ``timeout_s`` of worker time."""
        return _Batch(self, verifier, items, timeout_s, workers, chunk_size, progress).run()


class _Batch:
    """One batch over a set of workers: dispatch chunks, collect, replace overrunning or dead ones.

    Workers start (and restart) asynchronously: the loop keeps serving the others meanwhile, so a
    replacement never stretches another item's time bound.
    """

    MAX_TRIES = 2  # an item whose worker died is retried once on a fresh worker
    MAX_START_FAILURES = 3  # workers that die while starting, in a row, before giving up

    def __init__(
        self,
        pool: _WorkerPool,
        verifier: _Checked,
        items: list[tuple[int, str, str]],
        timeout_s: float,
        workers: int,
        chunk_size: int,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.pool, self.verifier, self.timeout_s = pool, verifier, timeout_s
        self.todo: deque[tuple[int, str, str]] = deque(items)
        self.results: dict[int, Verdict] = {}
        self.tries: dict[int, int] = {}
        self.n_workers = max(1, min(workers, len(items)))
        self.chunk_size = max(1, min(chunk_size, len(items) // self.n_workers or 1))
        self.progress = progress
        self.total = len(items)
        self.start_failures = 0
        self.workers: list[_Worker] = []
        pool.stats.items += len(items)

    def run(self) -> dict[int, Verdict]:
        try:
            while len(self.workers) < self.n_workers:
                self.workers.append(self.pool.acquire())
            while len(self.results) < self.total:
                self._step()
        finally:
            for worker in self.workers:
                self.pool.release(worker, healthy=not worker.pending and worker.alive())
        return self.results

    def _feed(self, worker: _Worker) -> None:
        if not worker.ready or worker.pending or not self.todo:
            return
        chunk = [self.todo.popleft() for _ in range(min(self.chunk_size, len(self.todo)))]
        try:
            worker.send(self.verifier, chunk, self.timeout_s)
        except OSError:  # it died while idle
            self._died(worker)

    def _step(self) -> None:
        for worker in self.workers:
            self._feed(worker)
        watched = [w for w in self.workers if w.pending or not w.ready]
        wait_s = max(0.0, min(w.deadline for w in watched) - time.monotonic())
        ready = multiprocessing.connection.wait([w.conn for w in watched], timeout=wait_s)
        for worker in watched:
            if worker.conn in ready:
                self._receive(worker)
            elif time.monotonic() >= worker.deadline:
                self._overrun(worker)

    def _receive(self, worker: _Worker) -> None:
        try:
            if not worker.ready:
                worker.conn.recv()  # the "ready" message
                worker.ready, worker.deadline = True, math.inf
                self.start_failures = 0
                return
            while worker.pending and worker.conn.poll():
                index, verdict = worker.conn.recv()
                head = worker.pending.popleft()
                assert head[0] == index, "worker answered out of order"
                self._record(index, verdict)
                worker.deadline = time.monotonic() + self.timeout_s
        except (EOFError, OSError):
            self._died(worker)

    def _record(self, index: int, verdict: Verdict) -> None:
        self.results[index] = verdict
        if self.progress is not None:
            self.progress(len(self.results))

    def _replace(self, worker: _Worker) -> None:
        self.pool.release(worker, healthy=False)
        self.workers[self.workers.index(worker)] = self.pool.acquire()

    def _requeue_rest(self, worker: _Worker) -> None:
        self.todo.extendleft(reversed(worker.pending))
        worker.pending.clear()

    def _overrun(self, worker: _Worker) -> None:
        if not worker.ready:
            self._start_failed(worker, "did not start in time")
            return
        index, _, _ = worker.pending.popleft()
        self.pool.stats.timeouts += 1
        self._record(index, Verdict(False, None, f"timeout after {self.timeout_s:g}s"))
        self._requeue_rest(worker)
        self._replace(worker)

    def _died(self, worker: _Worker) -> None:
        if not worker.ready:
            self._start_failed(worker, "exited while starting")
            return
        self.pool.stats.worker_deaths += 1
        if worker.pending:
            index, response, truth = worker.pending.popleft()
            self.tries[index] = self.tries.get(index, 1) + 1
            if self.tries[index] <= self.MAX_TRIES:
                self.pool.stats.retries += 1
                self.todo.appendleft((index, response, truth))
            else:
                self._record(index, Verdict(False, None, "worker-died"))
        self._requeue_rest(worker)
        self._replace(worker)

    def _start_failed(self, worker: _Worker, why: str) -> None:
        self.start_failures += 1
        if self.start_failures >= self.MAX_START_FAILURES:
            raise WorkerDied(f"verification worker {why}; gave up after {self.start_failures} tries")
        self._replace(worker)


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


_POOL = _WorkerPool()
atexit.register(_POOL.shutdown)


def worker_pids(busy_only: bool = False) -> list[int]:
    """Process ids of the verification workers, those serving a call first (monitoring, tests)."""
    return _POOL.worker_pids(busy_only)


def shutdown_pool() -> None:
    """Stop the verification workers (they restart on demand, with empty caches)."""
    _POOL.shutdown()


def pool_stats() -> PoolStats:
    """Counters of the shared worker pool since start (items, timeouts, deaths, retries)."""
    return replace(_POOL.stats)


def verify_batch(
    verifier_name: str,
    responses: list[str],
    ground_truths: list[str],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    **options: Any,
) -> list[Verdict]:
    """Verdicts for ``responses`` in input order, verified on a pool of worker processes.

    What a cheap check settles is settled here; the rest goes to ``workers`` processes (default:
    the CPUs this process may use), each item bounded by ``timeout_s`` (a worker that overruns is
    killed and replaced; the item is graded wrong with reason ``timeout``). A worker that dies is
    replaced and its item retried once. ``progress(n_done)`` is called as items complete.
    """
    if len(responses) != len(ground_truths):
        raise ValueError(f"{len(responses)} responses but {len(ground_truths)} ground truths")
    verifier = get(verifier_name, timeout_s=timeout_s, **options)
    assert hasattr(verifier, "quick") and hasattr(verifier, "full")
    if isinstance(verifier, JustrlEval):
        verifier = replace(verifier, judge=None)
    checked: _Checked = verifier  # type: ignore[assignment]
    results: list[Verdict | None] = [None] * len(responses)
    heavy: list[tuple[int, str, str]] = []
    for i, (response, truth) in enumerate(zip(responses, ground_truths)):
        verdict = checked.quick(response, truth)
        if verdict is None:
            heavy.append((i, response, truth))
        else:
            results[i] = verdict
    settled = len(responses) - len(heavy)
    if progress is not None and settled:
        progress(settled)
    if heavy:
        n_workers = workers if workers is not None else _cpu_count()
        relay = None if progress is None else (lambda n: progress(settled + n))
        for index, verdict in _POOL.run_many(checked, heavy, timeout_s, n_workers, progress=relay).items():
            results[index] = verdict
    return [v for v in results if v is not None]
