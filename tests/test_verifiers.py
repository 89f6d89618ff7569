"""Tests for justrl.verifiers: the strict reward, the graders, safety, time bounds and the pool."""

from __future__ import annotations

import importlib.util
import json
import os
import random
import signal
import subprocess
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

import pyarrow.parquet as pq
import pytest

from justrl import verifiers
from justrl.verifiers import Verdict, dapo_reward, get

BENCHMARKS = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"


def _benchmark_ground_truths() -> list[str]:
    truths: list[str] = []
    for path in sorted(BENCHMARKS.glob("*/test.parquet")):
        for row in pq.read_table(path).to_pylist():
            truths.append(row["reward_model"]["ground_truth"] if "reward_model" in row else row["answer"])
    return truths


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


@pytest.fixture(scope="module")
def ground_truths() -> list[str]:
    truths = _benchmark_ground_truths()
    if len(truths) != 1646:
        pytest.skip(f"benchmarks not found under {BENCHMARKS}")
    return truths


# --------------------------------------------------------------------------------------------
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


def test_get_unknown_name_lists_known_verifiers() -> None:
    with pytest.raises(ValueError, match="dapo-strict"):
        get("no-such-verifier")
    assert "dapo-strict" in verifiers.known_verifiers()


# --------------------------------------------------------------------------------------------
# The labeled set: every verifier's expected verdicts, and accuracy against the truth
# --------------------------------------------------------------------------------------------

CASES_FILE = Path(__file__).parent / "data" / "verifier_cases.jsonl"
VERIFIER_NAMES = ("dapo-strict", "release-rule", "lenient", "justrl-eval")
REQUIRED_CATEGORIES = {
    "integer", "fraction", "radical", "interval", "tuple", "matrix", "set", "choice", "units", "scientific",
    "expression", "format",
}  # fmt: skip


@pytest.fixture(scope="module")
def cases() -> list[dict]:
    rows = [json.loads(line) for line in CASES_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows


@pytest.fixture(scope="module")
def live_verdicts(cases) -> dict[str, list[Verdict]]:
    responses = [c["response"] for c in cases]
    truths = [c["ground_truth"] for c in cases]
    return {name: verifiers.verify_batch(name, responses, truths, timeout_s=5.0) for name in VERIFIER_NAMES}


def _accuracy(labels: list[bool], truth: list[bool]) -> float:
    return sum(a == b for a, b in zip(labels, truth)) / len(truth)


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


def test_justrl_eval_is_at_least_as_accurate_as_its_parts_and_math_verify(cases, live_verdicts) -> None:
    truth = [c["truth"] for c in cases]
    acc = {name: _accuracy([v.correct for v in live_verdicts[name]], truth) for name in VERIFIER_NAMES}
    acc["math-verify"] = _accuracy([c["expected"]["math-verify"] for c in cases], truth)
    assert acc["justrl-eval"] >= acc["math-verify"]
    assert acc["justrl-eval"] >= acc["release-rule"]
    assert acc["justrl-eval"] >= 0.95
    assert acc["dapo-strict"] < acc["release-rule"]  # the strict reward's false negatives are real


def test_justrl_eval_records_the_settling_stage(cases, live_verdicts) -> None:
    stages = {v.stage for v in live_verdicts["justrl-eval"]}
    assert stages == {"release-rule", "lenient"}
    for c, v in zip(cases, live_verdicts["justrl-eval"]):
        if v.stage == "release-rule":
            assert v.correct and c["expected"]["release-rule"]
        else:
            assert not c["expected"]["release-rule"]


def _load_release_grader(tmp_path_factory) -> ModuleType:
    """The JustRL release's evals/utils.py from a local clone (JUSTRL_RELEASE_REPO), for parity."""
    repo = os.environ.get("JUSTRL_RELEASE_REPO", "/work/.mirror/thunlp+JustRL/repo")
    try:
        source = subprocess.run(
            ["git", "-C", repo, "show", "HEAD:evals/utils.py"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"no clone of the JustRL release at {repo} (set JUSTRL_RELEASE_REPO)")
    path = tmp_path_factory.mktemp("release") / "release_utils.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("release_utils", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings():  # its regexes are written with invalid escape sequences
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", SyntaxWarning)
        spec.loader.exec_module(module)
    return module


def test_release_rule_matches_the_release_grader_on_benchmark_answers(
    tmp_path_factory, ground_truths
) -> None:
    release = _load_release_grader(tmp_path_factory)
    rng = random.Random(7)
    sample = rng.sample(ground_truths, 80)
    responses, truths = [], []
    for gt in sample:
        bare = gt[7:-1] if gt.startswith("\\boxed{") else gt.strip("$")
        other = rng.choice(ground_truths)
        variants = [
            bare,
            bare.replace("\\frac", "\\dfrac"),
            bare.replace(" ", ""),
            f"x = {bare}",
            f"ab = {bare}",
            f"{bare} \\text{{ cm}}",
            f"{bare}^\\circ",
            f"\\text{{{bare}}}",
            other[7:-1] if other.startswith("\\boxed{") else other,
        ]
        for answer in variants:
            responses.append(f"Reasoning... so the answer is $\\boxed{{{answer}}}$.")
            truths.append(gt)
    ours = verifiers.verify_batch("release-rule", responses, truths, timeout_s=10.0)
    differ = [
        (t, r[-60:])
        for r, t, v in zip(responses, truths, ours)
        if v.correct != bool(release.grade_answer_verl(r, t))
    ]
    assert not differ, differ[:5]
    assert sum(v.correct for v in ours) > len(ours) // 2


# --------------------------------------------------------------------------------------------
# Safety: model text never reaches eval
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "(1)-(2)",
        "(sqrt(2))-(2**(1/2))",
        "(3pi)-(x)",
        "(5!)-(120)",
        "(2x y)-(ab)",
        "(7+3/4)-(31/4)",
        "(1.5e3)-(1500)",
        "(0.[3])-(1/3)",
        "(x<5)",
        "(1,2)",
        "(sqrt2)-(2)",
        "(e**(i*pi))",
        "2**-1",
        "-(-(3))",
    ],
)
def test_safe_parse_expr_builds_what_parse_expr_builds(text: str) -> None:
    from sympy.parsing import sympy_parser as sp

    transformations = sp.standard_transformations + (sp.implicit_multiplication_application,)
    assert verifiers.safe_parse_expr(text) == sp.parse_expr(text, transformations=transformations)


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('touch {path}')",
        "open('{path}', 'w')",
        "().__class__.__bases__[0].__subclasses__()",
        'sqrt(\'__import__("os").system("touch {path}")\')',
        "Integer(1).__class__",
        "(lambda: 1)()",
        "exec('x=1')",
        "eval('1')",
        "S('1+1')",
        "sympify('1')",
        "Symbol('x', commutative=False)",
        "[x for x in (1, 2)]",
    ],
)
def test_safe_parse_expr_refuses_code(text: str, tmp_path: Path) -> None:
    target = tmp_path / "pwned.txt"
    with pytest.raises((verifiers.UnsafeExpression, SyntaxError, NameError, TypeError)):
        verifiers.safe_parse_expr(text.format(path=target))
    assert not target.exists()


def _payload_responses(payload: str) -> list[tuple[str, str]]:
    """(response, ground truth) pairs with ``payload`` everywhere a model (or a data file) can put text."""
    return [
        (f"\\boxed{{{payload}}}", "5"),
        (f"The answer is $\\boxed{{{payload}}}$", payload),
        (f"{payload}\n\nSo the answer is \\boxed{{5}}", "5"),
        (f"\\boxed{{5}} {payload}", "5"),
        (f"Answer: {payload}", "5"),
        (f"The final answer is ${payload}$. I hope it is correct.", "5"),
        (f"\\boxed{{\\text{{{payload}}}}}", f"\\text{{{payload}}}"),
        (f"\\boxed{{x = {payload}}}", f"\\boxed{{{payload}}}"),
        (f"\\boxed{{({payload}, {payload})}}", "(1, 2)"),
        ("\\boxed{5}", payload),
        (f"\\fbox{{{payload}}}", "5"),
        (payload, payload),
    ]


def test_payloads_never_run(tmp_path: Path) -> None:
    target = tmp_path / "pwned.txt"
    payloads = [
        f"__import__('os').system('touch {target}')",
        f"open('{target}', 'w').write('x')",
        f"exec(\"open('{target}', 'w')\")",
        f'sqrt(\'__import__("os").system("touch {target}")\')',
    ]
    pairs = [pair for payload in payloads for pair in _payload_responses(payload)]
    responses, truths = [r for r, _ in pairs], [t for _, t in pairs]
    for name in VERIFIER_NAMES:
        batch = verifiers.verify_batch(name, responses, truths, timeout_s=5.0)
        single = [get(name, timeout_s=5.0)(r, t) for r, t in pairs[:12]]
        assert all(isinstance(v, Verdict) for v in batch + single)
        assert not any(v.reason.startswith("error") for v in batch), [v.reason for v in batch]
    assert not target.exists()


# --------------------------------------------------------------------------------------------
# Time bounds
# --------------------------------------------------------------------------------------------

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


@pytest.fixture(scope="module")
def warm_pool() -> None:
    verifiers.verify_batch("lenient", ["\\boxed{\\sqrt{2}}"] * 4, ["2^{1/2}"] * 4)


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


# --------------------------------------------------------------------------------------------
# verify_batch: the pool
# --------------------------------------------------------------------------------------------


def _mixed_batch(n: int) -> tuple[list[str], list[str]]:
    rng = random.Random(3)
    answers = [("\\sqrt{2}", "2^{1/2}"), ("\\frac{1}{2}", "0.5"), ("7", "7"), ("x \\le 3", "(-\\infty, 3]")]
    answers += [("\\{3, 1, 2\\}", "\\{1,2,3\\}"), ("8", "7"), ("\\dfrac{3}{4}", "0.75"), ("(1,2)", "(2,1)")]
    responses, truths = [], []
    for i in range(n):
        answer, truth = rng.choice(answers)
        responses.append(f"Step {i}. " * rng.randint(1, 50) + f"So \\boxed{{{answer}}}")
        truths.append(truth)
    return responses, truths


def test_verify_batch_keeps_input_order(warm_pool) -> None:
    responses, truths = _mixed_batch(60)
    batch = verifiers.verify_batch("justrl-eval", responses, truths, workers=2)
    single = [get("justrl-eval")(r, t) for r, t in zip(responses, truths)]
    assert batch == single
    assert len({v.correct for v in batch}) == 2


def test_verify_batch_survives_a_killed_worker(warm_pool) -> None:
    responses, truths = _mixed_batch(120)
    # A slow item keeps workers busy, so the kill lands mid-batch.
    responses[5], truths[5] = "\\boxed{1000000!}", "5"
    before = verifiers.pool_stats()
    killed: list[int] = []

    def kill_one(done: int) -> None:
        busy = verifiers.worker_pids(busy_only=True)  # this batch's workers, once they serve it
        if busy and not killed:
            os.kill(busy[0], signal.SIGKILL)
            killed.append(busy[0])

    batch = verifiers.verify_batch("lenient", responses, truths, workers=2, timeout_s=10.0, progress=kill_one)
    after = verifiers.pool_stats()
    assert killed and after.worker_deaths > before.worker_deaths
    assert killed[0] not in verifiers.worker_pids()
    expected = [get("lenient", timeout_s=10.0)(r, t) for r, t in zip(responses, truths)]
    assert batch == expected


def test_verify_batch_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="known verifiers"):
        verifiers.verify_batch("nope", ["a"], ["b"])
    with pytest.raises(ValueError, match="ground truths"):
        verifiers.verify_batch("lenient", ["a", "b"], ["b"])
    assert verifiers.verify_batch("lenient", [], []) == []


def test_get_passes_options() -> None:
    assert get("lenient", timeout_s=3.0).timeout_s == 3.0
    assert get("release-rule").name == "release-rule"
    with pytest.raises(TypeError):
        get("dapo-strict", no_such_option=1)


# --------------------------------------------------------------------------------------------
# justrl-eval with a judge
# --------------------------------------------------------------------------------------------


class _RecordingJudge:
    def __init__(self, grades: dict[str, bool]) -> None:
        self.grades = grades
        self.seen: list[str] = []

    def judge(self, questions, responses, ground_truths) -> list[bool]:
        self.seen.extend(responses)
        return [self.grades.get(r, False) for r in responses]


def test_justrl_eval_calls_the_judge_only_for_what_both_rule_stages_reject() -> None:
    judge = _RecordingJudge({"\\boxed{forty-two}": True})
    verifier = get("justrl-eval", judge=judge)
    assert verifier("\\boxed{42}", "42").stage == "release-rule"
    assert verifier("\\boxed{\\{2,1\\}}", "\\{1,2\\}").stage == "lenient"
    accepted = verifier("\\boxed{forty-two}", "42")
    rejected = verifier("\\boxed{41}", "42")
    assert (accepted.correct, accepted.stage, accepted.reason) == (True, "judge", "judge-correct")
    assert (rejected.correct, rejected.stage) == (False, "judge")
    assert judge.seen == ["\\boxed{forty-two}", "\\boxed{41}"]


def test_lenient_fast_path_picks_the_answer_math_verify_ranks_first(cases) -> None:
    # The fast path reads the last \boxed{} without running Math-Verify's extraction; wherever it
    # does, Math-Verify's own ranking must lead to the same verdict.
    lenient = verifiers.Lenient()
    checked = 0
    for c in cases[::2]:
        tail = c["response"][-lenient.tail_chars :]
        box = verifiers._decisive_box(tail)
        if box is None or box is verifiers._UNCLOSED:
            continue
        truth = verifiers._unwrap_truth(c["ground_truth"])
        stated = lenient._stated_answer(tail)
        assert stated is not None, c["id"]
        fast = lenient._compare_quick(box, truth) or lenient._compare_math_verify(box, truth)
        ranked = lenient._compare_quick(stated, truth) or lenient._compare_math_verify(stated, truth)
        assert fast.correct == ranked.correct, (c["id"], box, stated)
        checked += 1
    assert checked > 150


def test_verify_batch_replaces_workers_that_died_while_idle(warm_pool) -> None:
    responses, truths = _mixed_batch(30)
    expected = [get("lenient")(r, t) for r, t in zip(responses, truths)]
    for pid in verifiers.worker_pids():
        os.kill(pid, signal.SIGKILL)
    assert verifiers.verify_batch("lenient", responses, truths, workers=2) == expected
