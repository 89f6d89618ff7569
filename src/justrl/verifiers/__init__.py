"""Answer verifiers: the strict training reward and the evaluation graders.

In: a response and its ground truth (one, or a batch). Out: a :class:`Verdict` each (correct,
undecided, the stated answer, the stage that decided, why). Imports: the ground floor only.

Every verifier maps ``(response, ground_truth)`` to a :class:`Verdict` and is looked up by name
with :func:`get`:

``dapo-strict``
    The JustRL training reward (:func:`dapo_reward`): the last balanced ``\\boxed{}`` near the end
    of the response, compared with the ground truth character for character (verl's
    ``math_dapo.compute_score(..., strict_box_verify=True)``).
``release-rule``
    The JustRL release's rule-based evaluation grader (``evals/utils.py: grade_answer_verl``),
    reproduced verdict for verdict, known false negatives included -- but without ever handing
    model text to ``eval``: sympy's token transformations produce the same code the release would
    evaluate, and a small interpreter that only knows arithmetic, sympy numbers, symbols and sympy
    functions evaluates it.
``lenient``
    Math-Verify equivalence (its LaTeX parser, no hand-made one) on the answer the response states
    (the last ``\\boxed{}``, adjacent boxes joined; else an "answer is" statement or the final
    math span), numbers read exactly, with Math-Verify's signal timeouts off.
``release-math-verify``
    The release's in-training validation grader (its reward router's Math-Verify branch for
    AIME24/AIME25/AMC23): Math-Verify on the whole response against ``\\boxed{ground truth}``, 0/1.
``math-verify``
    Math-Verify's default call, ``verify(parse(gold), parse(response))``, as lighteval and
    lm-eval's Math-Verify metrics make it: numbers comparable with theirs.
``justrl-eval``
    The evaluation grader in stages: ``release-rule``, then ``lenient``, then an optional model
    judge (:mod:`justrl.evaluate.judge`). Each verdict records the stage that settled it. Where
    ``lenient`` proves an answer the release's rule accepts different by an exact reading
    (scientific notation, mixed numbers, split digits, bases, unit powers), it is rejected.

A user's own verifier joins them with :func:`register` (or is named ``module:factory``).

Every check that may be slow runs in a worker process that is killed when it exceeds its time
bound (default 1 s), which works from any thread or process, unlike ``signal.alarm``; an item that
overruns is retried once with a larger bound, and is ``undecided`` (``Verdict.undecided``) if it
overruns that too. Cheap string checks (``quick``) settle most answers without leaving the calling
process. :func:`verify_batch` spreads a batch over a pool of such workers.

Where things live (one concept a module):

- ``base``: :class:`Verdict` and the protocols a verifier implements;
- ``boxed``: finding ``\\boxed{}`` answers (brace scanning);
- ``stated``: which part of a response is its stated answer (``lenient``'s extraction rules);
- ``numbers``: reading numbers, percentages, bases and units exactly;
- ``strict``: ``dapo-strict`` and :func:`dapo_reward`, the training reward;
- ``release_rule``: ``release-rule``, the release's grader reproduced;
- ``safe_sympy``: what that grader needs sympy to evaluate, evaluated without ``eval``;
- ``lenient``: ``lenient``, Math-Verify glue;
- ``release_math_verify``: ``release-math-verify``, the release's validation grader;
- ``plain_math_verify``: ``math-verify``, Math-Verify's default call;
- ``staged``: ``justrl-eval`` and the model judge stage (:func:`apply_judge`);
- ``registry``: the verifiers by name (:func:`get`, :func:`known_verifiers`, :func:`register`);
- ``workers``: one verification worker process, the zygote that forks them;
- ``pool``: the time bound -- the shared pool of workers (:func:`run_checked`), the retry of
  items that overran it, ``undecided``;
- ``batch``: :func:`verify_batch`.
"""

from __future__ import annotations

from justrl.verifiers.base import DEFAULT_TIMEOUT_S, Verdict, Verifier
from justrl.verifiers.batch import verify_batch
from justrl.verifiers.boxed import BOXED, last_boxed_content
from justrl.verifiers.lenient import LENIENT_TAIL_CHARS, MAX_BRACE_DEPTH, Lenient
from justrl.verifiers.plain_math_verify import MathVerify
from justrl.verifiers.pool import RETRY_FACTOR, PoolStats, pool_stats, run_checked, shutdown_pool, worker_pids
from justrl.verifiers.registry import (
    UserVerifier,
    check_known,
    check_name,
    get,
    is_known,
    known_verifiers,
    register,
    unregister,
)
from justrl.verifiers.release_math_verify import ReleaseMathVerify
from justrl.verifiers.release_rule import ReleaseRule
from justrl.verifiers.safe_sympy import UnsafeExpression, safe_parse_expr
from justrl.verifiers.staged import STAGE_JUDGE, STAGE_LENIENT, STAGE_RELEASE, Judge, JustrlEval, apply_judge
from justrl.verifiers.strict import STRICT_BOX_WINDOW, STRICT_TAIL_CHARS, DapoStrict, dapo_reward
from justrl.verifiers.workers import DEFAULT_MEMORY_LIMIT_MB, START_TIMEOUT_S, WorkerDied

__all__ = [
    "BOXED",
    "DEFAULT_MEMORY_LIMIT_MB",
    "DEFAULT_TIMEOUT_S",
    "LENIENT_TAIL_CHARS",
    "MAX_BRACE_DEPTH",
    "STAGE_JUDGE",
    "STAGE_LENIENT",
    "STAGE_RELEASE",
    "START_TIMEOUT_S",
    "STRICT_BOX_WINDOW",
    "STRICT_TAIL_CHARS",
    "DapoStrict",
    "Judge",
    "JustrlEval",
    "Lenient",
    "MathVerify",
    "PoolStats",
    "RETRY_FACTOR",
    "ReleaseMathVerify",
    "ReleaseRule",
    "UnsafeExpression",
    "UserVerifier",
    "Verdict",
    "Verifier",
    "WorkerDied",
    "apply_judge",
    "check_known",
    "check_name",
    "dapo_reward",
    "get",
    "is_known",
    "known_verifiers",
    "last_boxed_content",
    "pool_stats",
    "register",
    "run_checked",
    "safe_parse_expr",
    "shutdown_pool",
    "unregister",
    "verify_batch",
    "worker_pids",
]
