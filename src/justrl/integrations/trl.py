"""The recipe and the graders inside TRL's ``GRPOTrainer``.

Five lines train with the recipe in TRL::

    from trl import GRPOTrainer
    from justrl import recipe
    from justrl.integrations import trl as jtrl
    r = recipe.load("justrl-deepseek-1.5b")
    GRPOTrainer(model=r.model, args=jtrl.grpo_config(r, output_dir="out"), reward_funcs=jtrl.reward_func(r.verifier),
                train_dataset=jtrl.dataset(r)).train()

:func:`grpo_config` maps every recipe field TRL has a knob for; those it has none for are listed in
one warning. The sizes are TRL's, per process: one optimizer step takes ``mini_batch_prompts x
rollouts_per_prompt`` sequences (``per_device_train_batch_size = micro_batch_sequences``,
``gradient_accumulation_steps`` the rest), one generation round feeds ``prompts_per_step /
mini_batch_prompts`` optimizer steps (``steps_per_generation``, counted in micro-batches as TRL
counts it), so ``max_steps``, warm-up and checkpoint intervals are the recipe's steps times that
many updates. ``loss_type="dapo"`` divides by the active tokens of the whole accumulated batch:
token-mean over the mini-batch, as the recipe's. Dual-clip is TRL's ``delta`` (the ratio capped
before the clipped objective: the same loss, and the same zero gradient past the cap, as verl's
``clip_ratio_c``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

from justrl.errors import ConfigError
from justrl.integrations import rewards as rewards_mod
from justrl.recipe import PAPER, Recipe
from justrl.verifiers import DEFAULT_TIMEOUT_S

LOSS_TYPES = {"token-mean": "dapo", "seq-mean-token-mean": "grpo", "seq-mean-token-sum": "dr_grpo"}
"""The recipe's ``loss_agg`` in TRL's names (``dr_grpo`` divides by a constant, not each sequence's sum)."""
REPORT_TO = {"wandb": "wandb", "tensorboard": "tensorboard", "mlflow": "mlflow", "trackio": "trackio"}

NOT_IN_TRL: dict[str, str] = {
    "adv_epsilon": "TRL adds 1e-4 to the group std (the recipe: adv_epsilon)",
    "max_prompt_tokens": "TRL does not filter long prompts; filter the dataset (dataset() does)",
    "shuffle_mini_batches": "TRL shuffles each generation batch before cutting it into steps",
    "rollout_seed": "TRL seeds sampling from seed",
    "lr_schedule": "TRL's warm-up advances every optimizer step, the recipe's every policy step",
    "val_every": "validation needs an eval_dataset and eval_strategy of your own",
}
"""Recipe fields TRL has no knob for (always named in the warning)."""
NOT_IN_TRL_WHEN_SET: dict[str, str] = {
    "loss_agg": "dr_grpo divides by max_completion_length, not each sequence's token sum",
}
"""Fields TRL lacks only at values other than the paper's."""


def _cuda_bf16() -> bool:
    """The recipe's ``dtype=auto``: bfloat16 on a GPU that has it, float32 elsewhere."""
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def updates_per_step(recipe: Recipe) -> int:
    return recipe.prompts_per_step // recipe.mini_batch_prompts


def config_arguments(recipe: Recipe, *, num_processes: int = 1) -> tuple[dict[str, Any], list[str]]:
    """``(GRPOConfig keyword arguments, what TRL lacks)`` for ``recipe`` on ``num_processes`` processes."""
    recipe.validate()
    mini_batch = recipe.mini_batch_prompts * recipe.rollouts_per_prompt
    per_device = min(recipe.micro_batch_sequences, mini_batch)
    if mini_batch % (per_device * num_processes):
        raise ConfigError(f"mini_batch_prompts x rollouts_per_prompt ({mini_batch}) must be a multiple of "
                          f"micro_batch_sequences x processes ({per_device} x {num_processes}) for TRL")
    accumulation = mini_batch // (per_device * num_processes)
    updates = updates_per_step(recipe)
    arguments: dict[str, Any] = {
        "max_steps": recipe.total_steps * updates,
        "per_device_train_batch_size": per_device,
        "gradient_accumulation_steps": accumulation,
        "steps_per_generation": updates * accumulation,
        "num_generations": recipe.rollouts_per_prompt,
        "num_iterations": recipe.ppo_epochs,
        "max_completion_length": recipe.max_response_tokens,
        "temperature": recipe.temperature, "top_p": recipe.top_p, "top_k": 0,
        "beta": recipe.kl_coef, "entropy_coef": recipe.entropy_coef,
        "epsilon": recipe.clip_low, "epsilon_high": recipe.clip_high, "delta": recipe.clip_c,
        "loss_type": LOSS_TYPES[recipe.loss_agg],
        "scale_rewards": "group" if recipe.normalize_adv_by_std else "none",
        "mask_truncated_completions": False,  # the paper trains on truncated responses
        "learning_rate": recipe.lr, "lr_scheduler_type": "constant_with_warmup",
        "warmup_steps": recipe.warmup_steps * updates,
        "optim": "adamw_torch", "weight_decay": recipe.weight_decay,
        "adam_beta1": recipe.adam_betas[0], "adam_beta2": recipe.adam_betas[1],
        "max_grad_norm": recipe.grad_clip,
        "gradient_checkpointing": recipe.gradient_checkpointing,
        "seed": recipe.seed,
        "save_strategy": "steps", "save_steps": recipe.save_every * updates,
        "report_to": [REPORT_TO[n] for n in recipe.loggers if n in REPORT_TO] or "none",
        "use_cpu": recipe.device == "cpu",
    }
    arguments["bf16"] = recipe.dtype == "bfloat16" or (recipe.dtype == "auto" and _cuda_bf16())
    if recipe.data_seed is not None:
        arguments["data_seed"] = recipe.data_seed
    if recipe.rollout_backend == "vllm":
        arguments.update(use_vllm=True, vllm_mode="colocate",
                         vllm_gpu_memory_utilization=recipe.vllm_gpu_memory_utilization,
                         # the recipe (like the paper) corrects nothing for the sampler's mismatch
                         vllm_importance_sampling_correction=False)
    lacking = [f"{name} ({why})" for name, why in NOT_IN_TRL.items()]
    lacking += [f"{name}={getattr(recipe, name)!r} ({why})" for name, why in NOT_IN_TRL_WHEN_SET.items()
                if getattr(recipe, name) != getattr(PAPER, name)]
    return arguments, lacking


def grpo_config(recipe: Recipe, *, num_processes: int = 1, **overrides: Any) -> Any:
    """A ``trl.GRPOConfig`` doing what ``recipe`` says; ``overrides`` are GRPOConfig's own arguments
    (``output_dir=...``), applied last. Warns once, listing the recipe fields TRL lacks."""
    from trl import GRPOConfig

    arguments, lacking = config_arguments(recipe, num_processes=num_processes)
    if lacking:
        warnings.warn("TRL has no setting for these recipe fields: " + "; ".join(lacking), UserWarning,
                      stacklevel=2)
    return GRPOConfig(**{**arguments, **overrides})


def completion_text(completion: Any) -> str:
    """A completion as text: TRL passes a string, or (conversational data) a list of messages whose
    last is the assistant's, with content a string or a list of ``{"type": "text", "text"}`` parts."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion:
        content = completion[-1].get("content", "") if isinstance(completion[-1], dict) else completion[-1]
        if isinstance(content, str):
            return content
        if isinstance(content, Sequence):
            return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def reward_func(name: str = "dapo-strict", *, recipe: Recipe | None = None, column: str = "ground_truth",
                timeout_s: float = DEFAULT_TIMEOUT_S, workers: int | None = None) -> Callable[..., list[float]]:
    """A TRL reward function grading with verifier ``name``: ``(prompts, completions, **kwargs) -> floats``.

    The gold answers are the dataset column ``column`` (TRL passes every column as a keyword
    argument). Rewards are the recipe's (``reward_correct`` / ``reward_incorrect``; +1 / -1 by
    default), plus DAPO's overlong penalty when the recipe's ``overlong_buffer_tokens`` is on (the
    lengths from TRL's ``completion_ids``); the batch is verified on the worker pool, each answer
    bounded by ``timeout_s``.
    """
    rewards_mod.check_verifier(name)
    correct = recipe.reward_correct if recipe else PAPER.reward_correct
    incorrect = recipe.reward_incorrect if recipe else PAPER.reward_incorrect

    def reward(prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
        if column not in kwargs:
            raise ConfigError(f"the training dataset has no {column!r} column (the gold answers the "
                              f"{name} reward needs); columns passed: {', '.join(sorted(kwargs)) or 'none'}")
        found = rewards_mod.verdicts(name, [completion_text(c) for c in completions], list(kwargs[column]),
                                     timeout_s=timeout_s, workers=workers)
        values = rewards_mod.rewards(found, correct, incorrect)
        if recipe is not None and recipe.overlong_buffer_tokens > 0:
            values = _with_overlong_penalty(values, kwargs.get("completion_ids"), recipe)
        return values

    reward.__name__ = f"justrl_{name.replace('-', '_').replace(':', '_').replace('.', '_')}"
    return reward


def _with_overlong_penalty(values: list[float], completion_ids: Sequence[Sequence[int]] | None,
                           recipe: Recipe) -> list[float]:
    import torch

    from justrl.train.rollouts import overlong_penalty

    if completion_ids is None:
        raise ConfigError("overlong_buffer_tokens needs the completions' lengths: TRL passes completion_ids")
    lengths = torch.tensor([len(ids) for ids in completion_ids], dtype=torch.float32)
    penalty = overlong_penalty(lengths, recipe.max_response_tokens, recipe.overlong_buffer_tokens,
                               recipe.overlong_penalty_factor)
    return [v + p for v, p in zip(values, penalty.tolist())]


def dataset(recipe: Recipe, problems: Sequence[Any] | None = None, *, tokenizer: Any = None) -> Any:
    """The recipe's training problems as a ``datasets.Dataset`` TRL reads: a conversational
    ``prompt`` (one user turn: the problem + ``prompt_suffix``) and ``ground_truth``.

    ``problems`` default to the recipe's ``train_data`` (deduplicated when ``train_dedup``), each
    prompt built as the native trainer builds it (``prompt_format``); with a ``tokenizer``, prompts
    longer than ``max_prompt_tokens`` are left out, as the recipe does.
    """
    from datasets import Dataset

    from justrl.data.problems import chat_messages

    if problems is None:
        from justrl.train.rollouts import load_problems

        problems = load_problems(recipe.train_data, "train", dedupe=recipe.train_dedup,
                                 answer_from=recipe.answer_from)
    rows = [{"prompt": chat_messages(p, recipe.prompt_suffix, recipe.prompt_format), "ground_truth": p.ground_truth}
            for p in problems]
    if tokenizer is not None:
        rows = [r for r in rows if len(tokenizer.apply_chat_template(r["prompt"], tokenize=True,
                                                                     add_generation_prompt=True))
                <= recipe.max_prompt_tokens]
    return Dataset.from_list(rows)
