"""justrl-eval: release-rule, then lenient, then the judge; the settling stage on each verdict."""

from __future__ import annotations

from justrl.verifiers import Verdict, apply_judge, get


def _accuracy(labels: list[bool], truth: list[bool]) -> float:
    return sum(a == b for a, b in zip(labels, truth)) / len(truth)


def test_justrl_eval_is_at_least_as_accurate_as_its_parts_and_math_verify(cases, live_verdicts) -> None:
    truth = [c["truth"] for c in cases]
    acc = {name: _accuracy([v.correct for v in live_verdicts[name]], truth) for name in live_verdicts}
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
        elif c["expected"]["release-rule"]:  # accepted by the release, refuted exactly by lenient
            assert not v.correct and "overrides release-rule" in v.reason, c["id"]


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


# Wrong answers the release's rule accepts (kept in release-rule, verdict for verdict), which
# justrl-eval rejects because lenient proves them different by an exact reading.
RELEASE_FALSE_POSITIVES = [
    ("\\boxed{1 2}", "12", "split-digits"),
    ("\\boxed{12 34}", "1234", "split-digits"),
    ("\\boxed{4 4/9}", "44/9", "mixed-number"),
    ("\\boxed{3 1/2}", "31/2", "mixed-number"),
    ("\\boxed{4.6e-25}", "4.6e-24", "scientific"),
    ("\\boxed{4.3e-10}", "3.3e-10", "scientific"),
    ("\\boxed{32, 349}", "32349", "list-vs-number"),
    ("So \\boxed{5}. Wait, that is wrong: the count misses a case.", "5", "retracted"),
]


def test_justrl_eval_overrides_the_release_where_lenient_refutes_exactly() -> None:
    release, staged = get("release-rule", timeout_s=30.0), get("justrl-eval", timeout_s=30.0)
    for response, truth, cls in RELEASE_FALSE_POSITIVES:
        assert release(response, truth).correct, (response, truth)  # the release's verdict, kept
        verdict = staged(response, truth)
        assert not verdict.correct and verdict.stage == "lenient", (response, verdict)
        assert verdict.reason.endswith(f"overrides release-rule ({cls})")


WRONG_IN_EXACT_CLASSES = [
    ("\\boxed{204_6}", "204_5"),
    ("\\boxed{864 \\mbox{ inches}^3}", "864 \\mbox{ inches}^2"),
    ("\\boxed{10 00}", "1000"),
    ("\\boxed{4\\frac{4}{9}}", "\\frac{44}{9}"),
    ("\\boxed{4.6\\times 10^{-25}}", "4.6 \\times 10^{-24}"),
    ("\\boxed{27 pct}", "28\\%"),
]


def test_justrl_eval_accepts_no_wrong_answer_of_the_exact_classes() -> None:
    staged = get("justrl-eval", timeout_s=30.0)
    pairs = [(r, t) for r, t, _ in RELEASE_FALSE_POSITIVES] + WRONG_IN_EXACT_CLASSES
    for response, truth in pairs:
        assert not staged(response, truth).correct, (response, truth)



def test_the_judge_decides_what_the_rules_left_undecided() -> None:
    undecided = Verdict(False, None, "undecided: no verdict within 1s, nor 4s on a retry", undecided=True)
    judged = apply_judge(_RecordingJudge({"r": True}), [undecided], ["q"], ["r"], ["5"])[0]
    assert (judged.correct, judged.undecided, judged.stage) == (True, False, "judge")
