"""The registry: verifiers by name, and every registered verifier's verdicts on the labeled set.

``tests/fixtures/verifier_cases.jsonl`` holds hand-labelled cases: the truth, and the verdict each
verifier is expected to give (its known false negatives included) and Math-Verify's.
"""

from __future__ import annotations

import pytest

from justrl import verifiers
from justrl.errors import ConfigError
from justrl.verifiers import get

VERIFIER_NAMES = ("dapo-strict", "release-rule", "lenient", "justrl-eval", "math-verify")

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
        assert set(c["expected"]) == set(VERIFIER_NAMES)


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


USER_MODULE = '''
from justrl.verifiers import Verdict


def last_word(response, ground_truth):
    """Right when the response's last word is the ground truth."""
    words = response.split()
    return bool(words) and words[-1] == ground_truth


def make_last_word(timeout_s=1.0):
    return last_word


class Shouting:
    name = "shouting"

    def __init__(self, timeout_s=1.0):
        self.timeout_s = timeout_s

    def quick(self, response, ground_truth):
        return None

    def full(self, response, ground_truth):
        ok = response.upper() == response and ground_truth in response
        return Verdict(ok, ground_truth if ok else None, "loud" if ok else "quiet")
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A user's verifiers in a module of their own, importable here and in the worker processes."""
    (tmp_path / "my_verifiers.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}:{__import__('os').environ.get('PYTHONPATH', '')}")
    verifiers.shutdown_pool()  # workers started from now on see the module
    import my_verifiers

    yield my_verifiers
    for name in ("last-word", "shouting", "my_verifiers:make_last_word"):
        verifiers.unregister(name)
    verifiers.shutdown_pool()


def test_a_registered_verifier_grades_in_the_workers(user_module) -> None:
    verifiers.register("last-word", user_module.make_last_word)
    verifiers.register("shouting", user_module.Shouting)
    assert "last-word" in verifiers.known_verifiers() and verifiers.is_known("shouting")
    verdicts = verifiers.verify_batch("last-word", ["it is 7", "it is 8", ""], ["7", "7", "7"], workers=1)
    assert [v.correct for v in verdicts] == [True, False, False]
    assert [v.reason for v in verdicts] == ["user-accepted", "user-rejected", "user-rejected"]
    loud = verifiers.verify_batch("shouting", ["IT IS 7", "it is 7"], ["7", "7"], workers=1)
    assert [(v.correct, v.reason) for v in loud] == [(True, "loud"), (False, "quiet")]
    assert verifiers.get("last-word")("so 7", "7").correct  # a single call, also bounded


def test_module_factory_names_resolve_and_recipes_accept_them(user_module) -> None:
    from justrl import recipe as recipe_mod

    name = "my_verifiers:make_last_word"
    assert verifiers.verify_batch(name, ["x 3"], ["3"], workers=1)[0].correct
    assert recipe_mod.load("toy", {"verifier": name}).verifier == name
    # the recipe sits below the verifiers, so the engines check its names (before a run folder is touched)
    verifiers.check_known(verifier=name)
    with pytest.raises(Exception, match="cannot import module"):
        verifiers.check_known(verifier="no_such_module_here:f")


def test_register_refuses_what_workers_cannot_rebuild_and_built_in_names() -> None:
    with pytest.raises(ConfigError, match="built in"):
        verifiers.register("dapo-strict", lambda **_: None)
    verifiers.register("local-lambda", lambda **_: (lambda r, t: True))
    try:
        with pytest.raises(ConfigError, match="picklable|__main__"):
            verifiers.get("local-lambda")
    finally:
        verifiers.unregister("local-lambda")
