"""The reward function verl calls, backed by our verifiers.

verl loads it through ``reward.custom_reward_function.path=pkg://justrl.verl_reward`` and
``reward.custom_reward_function.name=compute_score`` (see ``verl.trainer.ppo.reward.get_custom_reward_fn``),
and its reward manager calls it once per response with keyword arguments
``data_source, solution_str, ground_truth, extra_info``. Anything under
``reward.custom_reward_function.reward_kwargs`` is passed along as extra keyword arguments; the
launcher puts the recipe's ``verifier``, ``reward_correct`` and ``reward_incorrect`` there.

The verifier is chosen by data source, as the release's reward router
(``verl/utils/reward_score/__init__.py`` of its fork) did: the sources it graded with Math-Verify
(``AIME24``, ``AIME25``, ``AMC23``, MATH; :data:`justrl.data.release_data.MATH_VERIFY_SOURCES`) get the
``val_verifier`` keyword's verifier, scored 1/0 as the release scored them (when one is given;
the launcher passes the recipe's); every other source (``math_dapo``, the training data) gets,
in order: the ``verifier`` keyword, the ``JUSTRL_VERIFIER`` environment variable, ``dapo-strict``
(the paper's training reward), scored ``reward_correct`` / ``reward_incorrect``.

It returns a dict, which verl's reward managers accept: ``score`` is the reward, and every other
key becomes a per-sample column of ``reward_extra_info`` (``acc`` drives verl's
``val-core/<data_source>/acc/mean@N`` validation metric, ``pred`` its majority vote).
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from justrl import verifiers
from justrl.data.release_data import MATH_VERIFY_SOURCES

VERIFIER_ENV = "JUSTRL_VERIFIER"
DEFAULT_VERIFIER = "dapo-strict"


@lru_cache(maxsize=16)
def _verifier(name: str) -> verifiers.Verifier:
    return verifiers.get(name)


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: str,
    extra_info: dict[str, Any] | None = None,
    *,
    verifier: str | None = None,
    val_verifier: str | None = None,
    reward_correct: float = 1.0,
    reward_incorrect: float = -1.0,
    **_: Any,
) -> dict[str, Any]:
    """Score one response: ``{"score": reward, "acc": 1.0 or 0.0, "pred": extracted answer}``.

    ``data_source`` picks the verifier (see the module docstring); ``extra_info`` is part of verl's
    calling convention and not needed here; unknown keyword arguments (verl adds some for
    reward-model routing) are ignored.
    """
    if val_verifier and data_source in MATH_VERIFY_SOURCES:
        name, correct_score, incorrect_score = val_verifier, 1.0, 0.0
    else:
        name = verifier or os.environ.get(VERIFIER_ENV) or DEFAULT_VERIFIER
        correct_score, incorrect_score = reward_correct, reward_incorrect
    verdict = _verifier(name)(solution_str, str(ground_truth))
    return {
        "score": float(correct_score if verdict.correct else incorrect_score),
        "acc": 1.0 if verdict.correct else 0.0,
        "pred": verdict.extracted or "",
    }
