"""dapo-strict, the training reward: verdict-for-verdict parity with verl's math_dapo."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path
from types import ModuleType

import pytest

from justrl.verifiers import Verdict, dapo_reward, get


@pytest.fixture(scope="module")
def verl_math_dapo() -> ModuleType:
    """verl's math_dapo module, loaded from its file so that verl (and torch) is not imported."""
    spec = importlib.util.find_spec("verl")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("verl is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "utils" / "reward_score" / "math_dapo.py"
    module_spec = importlib.util.spec_from_file_location("_verl_math_dapo", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


# dapo-strict
# --------------------------------------------------------------------------------------------


def _strict_responses(gt: str, rng: random.Random) -> list[str]:
    """Hand-made responses around one ground truth: right, wrong, mis-placed and malformed."""
    pad = "Let me think step by step. " * rng.randint(0, 30)
    inner = gt[1:] if gt.startswith("\\boxed{") else gt
    return [
        f"{pad}So the answer is \\boxed{{{gt}}}.",
        f"{pad}So the answer is \\boxed{{{inner}}}",
        f"{pad}\\boxed{{{gt} }}",
        f"{pad}\\boxed{{ {gt}}}",
        f"{pad}\\boxed{{{gt}}}" + " trailing words" * rng.randint(0, 12),
        f"\\boxed{{{gt}}}" + "x" * rng.randint(80, 400),
        f"{pad}\\boxed{{wrong}} then \\boxed{{{gt}}}",
        f"{pad}\\boxed{{{gt}}} then \\boxed{{wrong}}",
        f"{pad}\\boxed{{{gt}",
        f"{pad}\\boxed{{{gt}}} \\boxed{{unclosed",
        f"{pad}\\boxed {{{gt}}}",
        f"{pad}\\fbox{{{gt}}}",
        f"{pad}$\\boxed{{\\boxed{{{gt}}}}}$",
        f"{pad}{gt}",
        "",
    ]


def test_dapo_strict_matches_verl_on_benchmark_answers(verl_math_dapo, ground_truths) -> None:
    rng = random.Random(0)
    strict = get("dapo-strict")
    checked = accepted = 0
    for gt in ground_truths:
        for response in _strict_responses(gt, rng):
            expected = verl_math_dapo.compute_score(response, gt, strict_box_verify=True)
            verdict = strict(response, gt)
            assert verdict.correct == expected["acc"], (response[-120:], gt)
            assert verdict.extracted == expected["pred"], (response[-120:], gt)
            assert dapo_reward(response, gt) == expected["score"]
            checked += 1
            accepted += verdict.correct
    assert checked == len(ground_truths) * 15
    # Not a vacuous parity: plenty of both outcomes.
    assert 0.15 * checked < accepted < 0.5 * checked


def test_dapo_strict_matches_verl_on_random_brace_soup(verl_math_dapo) -> None:
    rng = random.Random(1)
    alphabet = ["\\boxed{", "{", "}", "1", "2", " ", "x", "\\frac", "\n", "\\boxed"]
    for _ in range(3000):
        response = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120)))
        gt = rng.choice(["1", "12", "{1}", "x", "2}"])
        expected = verl_math_dapo.compute_score(response, gt, strict_box_verify=True)
        verdict = get("dapo-strict")(response, gt)
        assert (verdict.correct, verdict.extracted) == (expected["acc"], expected["pred"]), (response, gt)


@pytest.mark.parametrize(
    ("response", "gt", "correct", "extracted"),
    [
        ("The answer is \\boxed{42}.", "42", True, "42"),
        ("The answer is \\boxed{ 42}.", "42", False, " 42"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}", True, "\\frac{1}{2}"),
        ("\\boxed{\\dfrac{1}{2}}", "\\frac{1}{2}", False, "\\dfrac{1}{2}"),
        ("\\boxed{42}" + "." * 100, "42", False, None),  # box outside the final 100 characters
        ("\\boxed{42}" + "." * 90, "42", True, "42"),
        ("\\boxed{1} and finally \\boxed{2}", "1", False, "2"),
        ("\\boxed{204}", "\\boxed{204}", False, "204"),  # AIME24-style ground truths never match
        ("\\boxed{{a}", "a", False, None),
        ("no box at all: 42", "42", False, None),
    ],
)
def test_dapo_strict_cases(response: str, gt: str, correct: bool, extracted: str | None) -> None:
    verdict = get("dapo-strict")(response, gt)
    assert verdict == Verdict(correct, extracted, verdict.reason)
    assert dapo_reward(response, gt) == (1.0 if correct else -1.0)
