"""Agreement with Math-Verify's own expectations, an independent set (see
``benchmarks/mathverify_agreement.py``): the cases its test suite lists, extracted at a pinned
commit into ``tests/fixtures/mathverify_cases.jsonl``. ``lenient`` and ``justrl-eval`` must agree with
at least 97% of them apart from the documented deliberate deviations."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from justrl import verifiers

ROOT = Path(__file__).resolve().parents[2]
CASES_FILE = ROOT / "tests" / "fixtures" / "mathverify_cases.jsonl"
BOUND_S = 30.0  # far above any of these checks' cost: the verdicts do not depend on the machine


def _harness():
    spec = importlib.util.spec_from_file_location("mathverify_agreement", ROOT / "benchmarks" / "mathverify_agreement.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def harness():
    return _harness()


@pytest.fixture(scope="module")
def mv_cases(harness):
    rows = [json.loads(line) for line in CASES_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [harness.Case(**row) for row in rows]


def test_the_cases_are_what_the_harness_extracts(harness, mv_cases) -> None:
    assert len(mv_cases) > 250 and {c.commit for c in mv_cases} == {harness.PINNED_COMMIT}
    for case in mv_cases:
        assert case.ground_truth == harness.ground_truth_of(case.gold), case.source
        assert case.response == harness.response_of(case.pred), case.source
        assert case.deviation == harness.deviation_of(case), case.source
        assert case.deviation is None or case.deviation in harness.DEVIATIONS
    if not harness.MIRROR.is_dir():
        pytest.skip("the Math-Verify mirror is not here: the stored extraction is not re-checked")
    assert [c.source for c in harness.extract_cases()] == [c.source for c in mv_cases]


@pytest.mark.parametrize("name", ["lenient", "justrl-eval"])
def test_agreement_with_math_verify_expectations(name: str, harness, mv_cases, warm_pool) -> None:
    verdicts = verifiers.verify_batch(
        name, [c.response for c in mv_cases], [c.ground_truth for c in mv_cases], timeout_s=BOUND_S
    )
    assert not any(v.undecided for v in verdicts)
    decided = [v.correct for v in verdicts]
    assert harness.agreement(mv_cases, decided, name) >= 0.97
    counted = [(c, v) for c, v in zip(mv_cases, decided) if harness.counts_for(c, name)]
    false_positives = [c.source for c, v in counted if v and not c.expected]
    assert not false_positives
