"""justrl-eval: release-rule, then lenient, then the judge; the settling stage on each verdict."""

from __future__ import annotations

from justrl.verifiers import get


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
        else:
            assert not c["expected"]["release-rule"]


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
