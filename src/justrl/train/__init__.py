"""The native GRPO engine: a recipe in, a trained policy and its run folder out.

In: a :class:`~justrl.recipe.Recipe` (and a run folder to start or resume). Out: the run folder --
``metrics.jsonl``, checkpoints, ``final/``, ``summary.json``, the dynamics figure. Imports: every
wing below it (data, verifiers, generate, dynamics) and the ground floor; never evaluate or verl_engine.

Read ``loop`` top to bottom (:func:`~justrl.train.loop.train`); each step's pieces are
``rollouts`` (prompts -> responses -> rewards), ``logprobs`` (packing, chunked log-probs),
``micro_batches`` (by count or token budget) and the update's math in :mod:`justrl.grpo`;
``backend`` picks the rollout generator; ``runs`` is the run folder (checkpoints, resume, summary);
``devices`` seeds and devices; ``ablations`` trains the paper's variants side by side.
"""

__all__ = ["ablations", "backend", "devices", "logprobs", "loop", "micro_batches", "rollouts", "runs"]
