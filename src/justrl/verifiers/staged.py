"""``justrl-eval``: the evaluation grader in stages, and the model judge as its last stage.

``release-rule`` first (so the scores stay comparable with the paper's), then ``lenient`` for
what it wrongly rejects, then -- only when a judge is given -- the model judge on what both
rejected. Each verdict records the stage that settled it, so a report can say how much each
stage contributed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from justrl.verifiers.base import DEFAULT_TIMEOUT_S, Verdict
from justrl.verifiers.lenient import Lenient
from justrl.verifiers.pool import run_checked
from justrl.verifiers.release_rule import ReleaseRule


class Judge(Protocol):
    """A model judge (see :mod:`justrl.judge`): True when it grades the answer correct."""

    def judge(
        self, questions: Sequence[str], responses: Sequence[str], ground_truths: Sequence[str]
    ) -> list[bool]: ...


STAGE_RELEASE = "release-rule"
STAGE_LENIENT = "lenient"
STAGE_JUDGE = "judge"


@dataclass(frozen=True)
class JustrlEval:
    """The evaluation grader: each answer is settled by the first stage that accepts it.

    Stages: ``release-rule`` (the JustRL release's rule grader), ``lenient`` (Math-Verify
    equivalence), then -- only when a ``judge`` is given -- the model judge on what both
    rejected. A rejection records the last stage that ran. ``stage`` on the verdict says which.
    """

    name: str = "justrl-eval"
    timeout_s: float = DEFAULT_TIMEOUT_S
    judge: Judge | None = field(default=None, compare=False)
    release: ReleaseRule = field(default_factory=ReleaseRule)
    lenient: Lenient = field(default_factory=Lenient)

    def quick(self, response: str, ground_truth: str) -> Verdict | None:
        first = self.release.quick(response, ground_truth)
        if first is None:
            return None
        if first.correct:
            return replace(first, stage=STAGE_RELEASE)
        second = self.lenient.quick(response, ground_truth)
        if second is None:
            return None
        return replace(second, stage=STAGE_LENIENT)

    def full(self, response: str, ground_truth: str) -> Verdict:
        first = self.release.full(response, ground_truth)
        if first.correct:
            return replace(first, stage=STAGE_RELEASE)
        return replace(self.lenient.full(response, ground_truth), stage=STAGE_LENIENT)

    def __call__(self, response: str, ground_truth: str) -> Verdict:
        verdict = run_checked(replace(self, judge=None), response, ground_truth)
        if verdict.correct or self.judge is None:
            return verdict
        return apply_judge(self.judge, [verdict], [""], [response], [ground_truth])[0]


def apply_judge(
    judge: Judge,
    verdicts: Sequence[Verdict],
    questions: Sequence[str],
    responses: Sequence[str],
    ground_truths: Sequence[str],
) -> list[Verdict]:
    """Send every rejected verdict to ``judge`` in one batch and record its grades."""
    rejected = [i for i, v in enumerate(verdicts) if not v.correct]
    out = list(verdicts)
    if not rejected:
        return out
    grades = judge.judge(
        [questions[i] for i in rejected],
        [responses[i] for i in rejected],
        [ground_truths[i] for i in rejected],
    )
    for i, grade in zip(rejected, grades):
        out[i] = replace(
            out[i],
            correct=bool(grade),
            reason="judge-correct" if grade else "judge-rejected",
            stage=STAGE_JUDGE,
        )
    return out

