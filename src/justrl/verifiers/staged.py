"""``justrl-eval``: the evaluation grader in stages, and the model judge as its last stage.

``release-rule`` first (so the scores stay comparable with the paper's), then ``lenient`` for
what it wrongly rejects, then -- only when a judge is given -- the model judge on what both
rejected. Each verdict records the stage that settled it, so a report can say how much each
stage contributed.

Where ``release-rule`` accepts an answer that ``lenient`` proves different by an exact reading
(:meth:`Lenient.refutes`), ``lenient``'s rejection stands: ``justrl-eval`` never accepts a wrong
answer in those classes, while ``release-rule`` itself keeps the release's verdicts. The classes
(:func:`justrl.verifiers.numbers.override_class`) and the release's verdict each overrides:

- ``scientific``: the release's sympy comparison uses an absolute tolerance, so ``4.6e-25``
  "equals" ``4.6e-24``; compared exactly here;
- ``mixed-number`` and ``split-digits``: the release deletes spaces, so ``4 4/9`` is ``44/9``
  and ``1 2`` is ``12``; here ``4 4/9`` is ``40/9`` and ``1 2`` two numbers;
- ``list-vs-number``: the release deletes ``, `` inside numbers, so ``32, 349`` is ``32349``;
- ``base`` and ``unit-power``: ``204_6`` for ``204_5``, ``inches^3`` for ``inches^2``;
- ``retracted``: the release reads the last box even when the response then says it is wrong
  ("\\boxed{5}. Wait, that is wrong."); here a retracted box is no answer.
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
    """A model judge (see :mod:`justrl.evaluate.judge`): True when it grades the answer correct."""

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
    An acceptance by ``release-rule`` that ``lenient`` refutes exactly is ``lenient``'s rejection.
    """

    name: str = "justrl-eval"
    timeout_s: float = DEFAULT_TIMEOUT_S
    judge: Judge | None = field(default=None, compare=False)
    release: ReleaseRule = field(default_factory=ReleaseRule)
    lenient: Lenient = field(default_factory=Lenient)

    def _accepted(self, first: Verdict, response: str, ground_truth: str) -> Verdict:
        refuted = self.lenient.refutes(response, ground_truth)
        if refuted is not None:
            return replace(refuted, stage=STAGE_LENIENT)
        return replace(first, stage=STAGE_RELEASE)

    def quick(self, response: str, ground_truth: str) -> Verdict | None:
        first = self.release.quick(response, ground_truth)
        if first is None:
            return None
        if first.correct:
            return self._accepted(first, response, ground_truth)
        second = self.lenient.quick(response, ground_truth)
        if second is None:
            return None
        return replace(second, stage=STAGE_LENIENT)

    def full(self, response: str, ground_truth: str) -> Verdict:
        first = self.release.full(response, ground_truth)
        if first.correct:
            return self._accepted(first, response, ground_truth)
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
    """Send every rejected (or undecided) verdict to ``judge`` in one batch and record its grades:
    the judge decides what the rules left undecided."""
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
            undecided=False,
        )
    return out

