"""Time bounds: every check gets a verdict within its bound, from any thread."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from justrl.verifiers import Verdict, get

SLOW_ANSWER = "\\boxed{\\binom{10^{7}}{5000000}}"  # seconds of big-integer arithmetic in sympy


HUGE_INPUTS = [
    ("x" * 1_000_000 + " so \\boxed{7}", "7"),
    ("y" * 1_000_000, "7"),
    ("\\boxed{10^{10^{10}}}", "5"),
    ("\\boxed{10^{10^{10}}}", "10^{10^{10}}+1"),
    ("\\boxed{" + "{" * 10_000 + "5" + "}" * 10_000 + "}", "5"),
    ("\\boxed{" + "{" * 10_000 + "5", "5"),
    ("Answer: $" + "\\frac{" * 3000 + "1" + "}{2}" * 3000 + "$", "1"),
    (SLOW_ANSWER, "3"),
]


@pytest.mark.parametrize("name", ["release-rule", "lenient", "justrl-eval"])
def test_huge_inputs_get_a_verdict_within_the_bound(name: str, warm_pool) -> None:
    verifier = get(name, timeout_s=1.0)
    for response, truth in HUGE_INPUTS:
        start = time.monotonic()
        verdict = verifier(response, truth)
        elapsed = time.monotonic() - start
        assert isinstance(verdict, Verdict)
        assert elapsed < 1.0 + 1.5, (name, response[:40], elapsed)  # the bound plus process overhead
    assert verifier(HUGE_INPUTS[0][0], "7").correct


def test_a_slow_check_times_out_and_is_graded_wrong(warm_pool) -> None:
    start = time.monotonic()
    verdict = get("lenient", timeout_s=0.5)(SLOW_ANSWER, "3")
    assert time.monotonic() - start < 2.0
    assert verdict == Verdict(False, None, "timeout after 0.5s")


def test_the_bound_holds_inside_threads(warm_pool) -> None:
    # signal.alarm cannot do this: only the main thread receives signals.
    verifier = get("lenient", timeout_s=0.5)
    pairs = [(SLOW_ANSWER, "3"), ("\\boxed{\\frac{1}{2}}", "0.5")] * 2
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        verdicts = list(pool.map(lambda pair: verifier(*pair), pairs))
    assert time.monotonic() - start < 4.0
    assert [v.correct for v in verdicts] == [False, True, False, True]
    assert verdicts[0].reason.startswith("timeout")
