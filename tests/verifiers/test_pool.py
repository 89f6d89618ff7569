"""Time bounds: every check gets a verdict within its bound, from any thread, and a busy machine
changes no verdict -- an item that overruns is retried with a larger bound, then undecided.

Nothing here depends on how fast the machine is: items meant to overrun never end (or are
thousands of times over their bound), and items meant to finish get bounds far above their cost.
"""

from __future__ import annotations

import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from justrl import verifiers
from justrl.verifiers import Verdict, get, pool

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
TINY_BOUND_S = 0.05  # the first bound in these tests: slow items overrun it on any machine
SLACK_S = 30.0  # process start-up on a loaded machine; only a missing bound would exceed it


def _endless() -> SimpleNamespace:
    """A "verifier" whose check never ends: ``sum`` over an endless stream (picklable builtins)."""
    return SimpleNamespace(name="endless", timeout_s=TINY_BOUND_S, full=sum)


@pytest.mark.parametrize("name", ["release-rule", "lenient", "justrl-eval"])
def test_huge_inputs_get_a_verdict_within_the_bound(name: str, warm_pool) -> None:
    verifier = get(name, timeout_s=TINY_BOUND_S)
    for i, (response, truth) in enumerate(HUGE_INPUTS):
        start = time.monotonic()
        verdict = verifier(response, truth)
        assert isinstance(verdict, Verdict)
        if i != 4:  # 5 in ten thousand braces is 5, to a verifier that gets that far
            assert verdict.correct == (i == 0), (name, response[:40], verdict)
        assert time.monotonic() - start < TINY_BOUND_S * (1 + verifiers.RETRY_FACTOR) + SLACK_S
    assert get(name, timeout_s=10.0)(HUGE_INPUTS[0][0], "7").correct


def test_an_item_that_never_ends_is_undecided_not_wrong(warm_pool) -> None:
    before = verifiers.pool_stats()
    items = [(0, itertools.repeat(0), 0)]
    verdict = pool.run_many(_endless(), items, TINY_BOUND_S, workers=1)[0]  # type: ignore[arg-type]
    after = verifiers.pool_stats()
    assert verdict.undecided and not verdict.correct
    assert verdict.reason == f"undecided: no verdict within {TINY_BOUND_S:g}s, nor {TINY_BOUND_S * 4:g}s on a retry"
    assert (after.timeouts - before.timeouts, after.undecided - before.undecided) == (1, 1)


def test_an_item_that_overruns_its_bound_gets_its_verdict_on_the_retry(warm_pool) -> None:
    # A first bound no check can meet (0.1 ms, less than a round trip to a worker): every item
    # overruns it, and the retry with a bound far above their cost gives the real verdicts.
    responses = [f"So \\boxed{{{a}}}" for a in ("\\sqrt{2}", "x \\le 3", "\\{3, 1, 2\\}", "\\sqrt{3}")]
    truths = ["2^{1/2}", "(-\\infty, 3]", "\\{1,2,3\\}", "2^{1/2}"]
    expected = [get("lenient", timeout_s=SLACK_S)(r, t) for r, t in zip(responses, truths)]
    batch = verifiers.verify_batch("lenient", responses, truths, timeout_s=1e-4, retry_timeout_s=SLACK_S)
    assert batch == expected
    assert [v.correct for v in batch] == [True, True, True, False]


def test_a_slow_check_is_undecided_within_its_bounds(warm_pool) -> None:
    start = time.monotonic()
    verdict = get("lenient", timeout_s=0.001)(SLOW_ANSWER, "3")
    assert time.monotonic() - start < 0.005 + SLACK_S
    assert verdict.undecided and verdict.reason.startswith("undecided")


def test_the_bound_holds_inside_threads(warm_pool) -> None:
    # signal.alarm cannot do this: only the main thread receives signals.
    pairs = [(SLOW_ANSWER, "3"), ("\\boxed{\\frac{1}{2}}", "0.5")] * 2
    verifier = get("lenient", timeout_s=0.001)
    with ThreadPoolExecutor(max_workers=4) as threads:
        verdicts = list(threads.map(lambda pair: verifier(*pair), pairs))
    assert [v.correct for v in verdicts] == [False, True, False, True]
    assert verdicts[0].undecided and verdicts[2].undecided
