"""The recipe and the graders inside other people's trainers, and models shared with their cards.

In: a recipe and verifier names. Out: TRL's config, TRL's and OpenRLHF's reward functions, a model
card. Imports: the ground floor, verifiers, data, train (run folders) and evaluate (summaries).

In more detail, what comes in: a :class:`~justrl.recipe.Recipe` and verifier names (built-in, registered with
:func:`justrl.verifiers.register`, or ``module:factory``), and what the other library hands its
reward functions (TRL: prompts, completions and dataset columns; OpenRLHF: queries, prompts,
labels). What goes out: the other library's objects -- a ``trl.GRPOConfig``, reward callables with
each library's signature and return type -- and, for the Hub, a model card (``README.md``) in a
policy folder.

- ``trl``: :func:`~justrl.integrations.trl.grpo_config`, :func:`~justrl.integrations.trl.reward_func`,
  :func:`~justrl.integrations.trl.dataset`;
- ``openrlhf``: :func:`~justrl.integrations.openrlhf.reward_func`;
- ``hub``: :func:`~justrl.integrations.hub.write_card`, :func:`~justrl.integrations.hub.push`.

Wings it imports, in more detail: the ground floor (recipe, errors, logs), ``verifiers`` (every reward goes
through :func:`justrl.verifiers.verify_batch`: time-bounded, on the worker pool), the training
run's folders (for the card's curves and recipe) and ``evaluate``'s summaries (for the card's
table). TRL, OpenRLHF's conventions and ``huggingface_hub`` are imported only inside the
functions that need them.
"""

__all__ = ["hub", "openrlhf", "rewards", "trl"]
