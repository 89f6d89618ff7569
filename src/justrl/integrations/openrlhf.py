"""The recipe's reward as OpenRLHF's ``reward_func(queries, prompts, labels)``.

OpenRLHF loads a Python file passed as ``--remote_rm_url`` (``--reward.remote_url`` in recent
versions) and calls its ``reward_func(queries, prompts, labels, **kwargs)``: ``queries`` are the
prompts with their generated responses appended, ``prompts`` the prompts alone, ``labels`` the
dataset column named by ``--label_key`` (the ground truths). It returns a dict: ``rewards`` (a
tensor, for the advantages), ``scores`` (a tensor in [0, 1], for dynamic filtering) and
``extra_logs`` (scalars for the logger). A file of two lines makes the recipe's reward OpenRLHF's::

    from justrl.integrations.openrlhf import reward_func as make
    reward_func = make("dapo-strict")
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from justrl.integrations import rewards as rewards_mod
from justrl.verifiers import DEFAULT_TIMEOUT_S


def response_of(query: str, prompt: str) -> str:
    """The generated part of ``query``: what follows ``prompt`` (the whole query when it does not
    start with it, e.g. after a tokenizer round trip changed the prompt's spacing)."""
    return query[len(prompt):] if query.startswith(prompt) else query


def reward_func(name: str = "dapo-strict", *, correct: float = 1.0, incorrect: float = -1.0,
                timeout_s: float = DEFAULT_TIMEOUT_S, workers: int | None = None) -> Callable[..., dict[str, Any]]:
    """A ``reward_func(queries, prompts, labels, **kwargs)`` for OpenRLHF grading with verifier ``name``.

    ``rewards`` are ``correct`` / ``incorrect`` (the recipe's +1 / -1), ``scores`` 1 / 0, and
    ``extra_logs`` holds the accuracy and how many verdicts were undecided (no verdict in time).
    """
    rewards_mod.check_verifier(name)

    def reward(queries: Sequence[str], prompts: Sequence[str], labels: Sequence[Any],
               **kwargs: Any) -> dict[str, Any]:
        import torch

        responses = [response_of(q, p) for q, p in zip(queries, prompts)]
        found = rewards_mod.verdicts(name, responses, list(labels), timeout_s=timeout_s, workers=workers)
        values = torch.tensor(rewards_mod.rewards(found, correct, incorrect), dtype=torch.float32)
        accepted = torch.tensor([float(v.correct) for v in found], dtype=torch.float32)
        return {
            "rewards": values,
            "scores": accepted,
            "extra_logs": {"justrl/acc": accepted.mean() if len(found) else torch.tensor(0.0),
                           "justrl/undecided": torch.tensor(float(sum(v.undecided for v in found)))},
        }

    reward.__name__ = f"justrl_{name.replace('-', '_').replace(':', '_').replace('.', '_')}"
    return reward
