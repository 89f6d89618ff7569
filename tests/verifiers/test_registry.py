"""The registry: verifiers by name, and every registered verifier's verdicts on the labeled set.

``tests/fixtures/verifier_cases.jsonl`` holds hand-labelled cases: the truth, and the verdict each
verifier is expected to give (its known false negatives included) and Math-Verify's.
"""

from __future__ import annotations

import pytest

from justrl import verifiers
from justrl.errors import ConfigError
from justrl.verifiers import get

VERIFIER_NAMES = ("dapo-strict", "release-rule", "lenient", "justrl-eval")

REQUIRED_CATEGORIES = {
    "integer", "fraction", "radical", "interval", "tuple", "matrix", "set", "choice", "units", "scientific",
    "expression", "format", "no-box", "pieces", "retracted", "percent", "split-digits", "mixed-number", "base",
}  # fmt: skip


def test_get_unknown_name_lists_known_verifiers() -> None:
    with pytest.raises(ValueError, match="dapo-strict"):
        get("no-such-verifier")
    assert "dapo-strict" in verifiers.known_verifiers()


def test_get_passes_options() -> None:
    assert get("lenient", timeout_s=3.0).timeout_s == 3.0
    assert get("release-rule").name == "release-rule"
    with pytest.raises(TypeError):
        get("dapo-strict", no_such_option=1)


def test_labeled_set_is_large_and_covers_the_answer_types(cases) -> None:
    assert len(cases) >= 300
    assert {c["category"] for c in cases} >= REQUIRED_CATEGORIES
    assert len({c["id"] for c in cases}) == len(cases)
    n_true = sum(c["truth"] for c in cases)
    assert 0.3 * len(cases) < n_true < 0.8 * len(cases)  # both verdicts well represented
    for c in cases:
        assert set(c["expected"]) == {*VERIFIER_NAMES, "math-verify"}


@pytest.mark.parametrize("name", VERIFIER_NAMES)
def test_verifier_gives_its_expected_verdicts(name, cases, live_verdicts) -> None:
    wrong = [
        (c["id"], c["ground_truth"], c["response"][-80:], v.reason)
        for c, v in zip(cases, live_verdicts[name])
        if v.correct != c["expected"][name]
    ]
    assert not wrong, f"{len(wrong)} verdicts differ from the labels: {wrong[:5]}"


def test_math_verify_labels_are_what_math_verify_says(cases) -> None:
    # The "math-verify" column is the baseline of the accuracy table: math-verify called the usual
    # way. Recomputing it keeps the table honest when math-verify is upgraded.
    from math_verify import parse, verify

    for c in cases:
        gt = c["ground_truth"]
        gold = gt if ("$" in gt or "\\boxed" in gt) else f"${gt}$"
        assert bool(verify(parse(gold), parse(c["response"]))) == c["expected"]["math-verify"], c["id"]


def test_registry_knows_the_verifiers_and_unknown_names_are_config_errors() -> None:
    # release-math-verify (the release's validation grader) has its own tests, not the labeled cases
    assert set(verifiers.known_verifiers()) == {*VERIFIER_NAMES, "release-math-verify"}
    with pytest.raises(ConfigError, match="no-such-verifier"):
        get("no-such-verifier")
