"""numbers: exact readings of numbers, percentages, bases and units."""

from __future__ import annotations

from fractions import Fraction

import pytest

from justrl.verifiers import numbers


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("1,000", "1000"),
        ("1 000 000", "1000000"),
        ("1\\,000", "1000"),
        ("12,34", "12,34"),  # not groups of three: left alone (not a number here)
        ("4 4/9", "\\frac{40}{9}"),
        ("-3 1/2", "-\\frac{7}{2}"),
        ("4\\frac{4}{9}", "\\frac{40}{9}"),
        ("2 5/3", "2 5/3"),  # improper: no mixed number
        ("4.6e-24", "0.0000000000000000000000046"),
        ("4.6\\times 10^{3}", "4600"),
        ("7", "7"),
    ],
)
def test_normalize_number(text: str, normalized: str) -> None:
    assert numbers.normalize_number(text) == normalized


def test_split_digits_are_two_numbers_unless_grouped_or_mixed() -> None:
    assert numbers.split_digits("1 2") and numbers.split_digits("12 34") and numbers.split_digits("10 00")
    assert not numbers.split_digits("1 000") and not numbers.split_digits("4 4/9")
    assert not numbers.split_digits("(1, 2)") and not numbers.split_digits("1 & 2 \\\\ 3 & 4")


def test_exact_number_and_percent() -> None:
    assert numbers.exact_number("\\frac{1}{4}") == Fraction(1, 4) == numbers.exact_number("0.25")
    assert numbers.exact_number("x") is None
    for text in ("28\\%", "28 %", "28 percent", "28 pct", "28 percentage", "28\\text{ percent}"):
        assert numbers.strip_percent(text) == ("28", True), text
    assert numbers.strip_percent("28") == ("28", False)


def test_bases_and_unit_powers() -> None:
    assert numbers.base_mismatch("204_6", "204_5") and numbers.base_mismatch("203_5", "204_5")
    assert not numbers.base_mismatch("204_{5}", "204_5") and not numbers.base_mismatch("204", "204_5")
    assert numbers.unit_power_mismatch("864 \\mbox{ inches}^3", "864 \\mbox{ inches}^2")
    assert numbers.unit_power_mismatch("5 \\text{cm}", "5 \\text{cm}^2")
    assert not numbers.unit_power_mismatch("5 \\text{cm}^2", "5 \\text{ cm}^{2}")
    assert not numbers.unit_power_mismatch("5", "5 \\text{cm}^2")


def test_override_classes() -> None:
    assert numbers.override_class("4.6e-25", "4.6e-24") == "scientific"
    assert numbers.override_class("4 4/9", "44/9") == "mixed-number"
    assert numbers.override_class("1 2", "12") == "split-digits"
    assert numbers.override_class("32, 349", "32349") == "list-vs-number"
    assert numbers.override_class("204_6", "204_5") == "base"
    assert numbers.override_class("3 \\text{m}^3", "3 \\text{m}^2") == "unit-power"
    assert numbers.override_class("\\frac{1}{2}", "0.5") is None
