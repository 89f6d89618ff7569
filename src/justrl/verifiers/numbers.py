"""How ``lenient`` reads numbers, percentages, bases and units -- exactly, never by a tolerance.

Math-Verify (and the release's sympy comparison) can turn a wrong answer right: ``1 2`` read as
``12``, ``4 4/9`` as ``44/9``, ``204_6`` as ``204_5``, ``inches^3`` as ``inches^2``, and any two
tiny numbers equal under an absolute tolerance. What is decided here is decided exactly:

- thousands separators only between groups of three digits (``1,000``, ``1 000``, ``1\\,000``);
  digits split by a space otherwise are two numbers, never one (:func:`split_digits`);
- a mixed number is its value (``4 4/9`` and ``4\\frac{4}{9}`` are ``40/9``);
- scientific notation (``4.6e-24``, ``4.6\\times 10^{-24}``) becomes its exact decimal, so two
  numbers compare exactly, whatever their size;
- percent written ``\\%``, ``%``, ``percent``, ``pct`` or ``percentage`` (:func:`strip_percent`);
- a base subscript (``204_5``) and a unit's exponent (``\\text{ inches}^3``) take part in the
  comparison (:func:`base_mismatch`, :func:`unit_power_mismatch`).
"""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction

_COMMA_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_THOUSANDS_MARK = re.compile(r"(?<=\d)(?:\\,|\\!|\{,\}|\\ |~)(?=\d{3}(?!\d))")
_SPACED_THOUSANDS = re.compile(r"-?\d{1,3}(?: \d{3})+(?:\.\d+)?")
SCIENTIFIC = re.compile(
    r"(-?\d+(?:\.\d+)?)\s*(?:[eE]|\\times\s*10\s*\^|\\cdot\s*10\s*\^|\*\s*10\s*\^)\s*\{?([+-]?\d{1,3})\}?"
)
MIXED = re.compile(r"(-?)(\d+)(?:\s+(\d+)\s*/\s*(\d+)|\s*\\[dt]?frac\{(\d+)\}\{(\d+)\})")
_SPLIT_DIGITS = re.compile(r"\d(?:\s|\\[ ,;:!]|~)+\d")
_PERCENT = re.compile(
    r"(.+?)\s*(?:\\%|%|\\text\{\s*(?:\\%|%|percent|percentage|pct)\s*\}|\s+(?:percentage|percent|pct)\b)\.?"
)
_BASE = re.compile(r"([0-9A-Fa-f]+)_\{?\(?(\d+)\)?\}?")
_UNIT_POWER = re.compile(r"\\(?:text|mbox|mathrm)\{\s*([A-Za-z]+)\s*\}\s*(?:\^\s*\{?(\d)\}?)?")
_EXACT_NUMBER = re.compile(
    r"(-?)(?:(\d{1,60}(?:\.\d{1,60})?)|\\frac\{(\d{1,60})\}\{(\d{1,60})\}|(\d{1,60})/(\d{1,60}))"
)


def _scientific_to_decimal(m: re.Match[str]) -> str:
    text = format(Decimal(m.group(1)).scaleb(int(m.group(2))), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _mixed_to_fraction(m: re.Match[str]) -> str | None:
    sign, whole, num_a, den_a, num_b, den_b = m.groups()
    num, den = int(num_a or num_b), int(den_a or den_b)
    if den == 0 or num >= den:
        return None  # not a proper fraction: ``2 5/3`` or ``2\frac{5}{3}`` is no mixed number
    value = int(whole) * den + num
    return f"{sign}\\frac{{{value}}}{{{den}}}"


def normalize_number(text: str) -> str:
    """A number written any of the accepted ways, rewritten as a plain decimal or ``\\frac``;
    anything else unchanged."""
    text = _THOUSANDS_MARK.sub("", text)
    if _SPACED_THOUSANDS.fullmatch(text) or _COMMA_THOUSANDS.fullmatch(text):
        return text.replace(" ", "").replace(",", "")
    m = SCIENTIFIC.fullmatch(text)
    if m is not None and abs(int(m.group(2))) <= 300:
        return _scientific_to_decimal(m)
    m = MIXED.fullmatch(text)
    if m is not None:
        return _mixed_to_fraction(m) or text
    return text


def split_digits(text: str) -> bool:
    """Whether digits are split by spacing in a way no number is written (``1 2``, ``12 34``)."""
    return _SPLIT_DIGITS.search(normalize_number(text)) is not None and not MIXED.fullmatch(text)


def exact_number(text: str) -> Fraction | None:
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


def strip_percent(text: str) -> tuple[str, bool]:
    """``(number, True)`` for ``28\\%``, ``28 percent``, ``28 pct``...; else ``(text, False)``."""
    m = _PERCENT.fullmatch(text.strip())
    return (m.group(1).strip(), True) if m is not None else (text, False)


def base_mismatch(given: str, truth: str) -> bool:
    """``204_6`` against ``204_5``: both written in a base, and the digits or the bases differ."""
    g, t = _BASE.fullmatch(given.replace(" ", "")), _BASE.fullmatch(truth.replace(" ", ""))
    if g is None or t is None:
        return False
    return (g.group(1).lower(), int(g.group(2))) != (t.group(1).lower(), int(t.group(2)))


def unit_power_mismatch(given: str, truth: str) -> bool:
    """``inches^3`` against ``inches^2``: both name units, and a unit's power differs."""
    g = {unit: int(power or 1) for unit, power in _UNIT_POWER.findall(given)}
    t = {unit: int(power or 1) for unit, power in _UNIT_POWER.findall(truth)}
    return any(unit in t and t[unit] != power for unit, power in g.items())


_NUMBER_LIST = re.compile(r"-?\d+(?:\.\d+)?(?:\s*[,;]\s+-?\d+(?:\.\d+)?)+")


def number_list_vs_number(given: str, truth: str) -> bool:
    """``32, 349`` against ``32349``: a list of numbers (comma and space) answering one number."""
    return bool(_NUMBER_LIST.fullmatch(given.strip())) and exact_number(normalize_number(truth.strip())) is not None


def override_class(given: str, truth: str) -> str | None:
    """The class in which an exact reading here outranks a looser one (the release's rule):
    scientific notation, mixed numbers, split digits, bases, units with powers; else ``None``."""
    pair = (given.strip(), truth.strip())
    if any(SCIENTIFIC.fullmatch(x) for x in pair):
        return "scientific"
    if any(MIXED.fullmatch(x) for x in pair):
        return "mixed-number"
    if split_digits(pair[0]):
        return "split-digits"
    if number_list_vs_number(*pair):
        return "list-vs-number"
    if base_mismatch(*pair):
        return "base"
    if unit_power_mismatch(*pair):
        return "unit-power"
    return None
