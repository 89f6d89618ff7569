"""The translation table: every recipe field -> the verl key(s) it sets, or why it sets none.

- :data:`MAPPING` holds one :class:`Route` per field of :class:`~justrl.recipe.Recipe`: the verl keys
  it sets (and how its value converts), or the reason it has none (a native-engine-only knob,
  something carried by the exported data), or the one value verl always behaves as.
- :func:`engine_settings` holds the verl settings that are not part of the recipe (vLLM rollout,
  token budgets, the reward adapter), taken from the release's launch script.
- :func:`verl_settings` is the two together, key -> value, for one recipe and :class:`VerlPlan`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from justrl.errors import VerlConfigError
from justrl.recipe import Recipe
from justrl.verl_engine.plan import VerlPlan

VERL_VERSION = "0.9.1"
"""The verl release the overrides are written for and tested against (the ``verl`` extra pins it)."""
PROJECT_NAME = "justrl"
REWARD_FN_PATH = "pkg://justrl.verl_reward"
REWARD_FN_NAME = "compute_score"

# Keys verl reads but its schema does not declare; they must be added with Hydra's ``+`` prefix.
# Anything else outside the schema is refused: verl would silently ignore it.
ADDED_KEY_PREFIXES = (
    "reward.reward_kwargs.",  # read by verl's DAPO reward manager (overlong buffer, max_resp_len)
    "reward.custom_reward_function.reward_kwargs.",  # passed by verl to our compute_score
    "ray_kwargs.ray_init.runtime_env.env_vars.",  # environment of every Ray worker
    "ray_kwargs.ray_init.num_gpus",  # CPU mode: logical GPUs for verl's GPU-asking Ray pools
    "actor_rollout_ref.model.override_config.",  # passed to the model's config (CPU mode: attention)
    "actor_rollout_ref.rollout.enable_sleep_mode",  # a RolloutConfig field the yaml lacks (CPU mode)
)


def is_added_key(key: str) -> bool:
    """Whether ``key`` is outside verl's schema and so goes to Hydra with a ``+``."""
    return key.startswith(ADDED_KEY_PREFIXES)


Convert = Callable[[Any, VerlPlan], tuple[Any, ...]]


@dataclass(frozen=True)
class Route:
    """How one recipe field reaches verl."""

    keys: tuple[str, ...] = ()
    """The verl keys the field sets (empty: the field has no verl key, see ``reason``)."""
    convert: Convert | None = None
    """Field value (and plan) -> one verl value per key; None: the value itself for every key."""
    reason: str = ""
    """Why the field has no verl key, or a remark on the conversion."""
    only_value: Any = None
    """For a field without a key whose value verl cannot change: the value verl always uses ..."""
    has_only_value: bool = False
    """... and whether there is one (``only_value`` may legitimately be None)."""

    def values(self, value: Any, plan: VerlPlan) -> tuple[Any, ...]:
        out = self.convert(value, plan) if self.convert else (value,) * len(self.keys)
        if len(out) != len(self.keys):  # pragma: no cover - a bug in the table
            raise AssertionError(f"route {self.keys} produced {len(out)} values")
        return out


def to(*keys: str, convert: Convert | None = None, note: str = "") -> Route:
    """The field sets ``keys`` (its value as is, unless ``convert`` says otherwise)."""
    return Route(keys=keys, convert=convert, reason=note)


def not_in_verl(reason: str) -> Route:
    """The field has no verl counterpart (a native-engine knob, or carried by the exported data)."""
    return Route(reason=reason)


def fixed_in_verl(value: Any, reason: str) -> Route:
    """verl has no setting for the field and always behaves as ``value``; other values are refused."""
    return Route(reason=reason, only_value=value, has_only_value=True)


def _model_path(model: str, plan: VerlPlan) -> tuple[Any, ...]:
    if model == "toy":
        if plan.cpu:  # the CPU demo's warm-started model, as a model folder (built once, cached)
            from justrl.data import toy

            return (str(toy.prepare()),)
        raise VerlConfigError(
            "model: 'toy' is the CPU demo's model; verl takes it only on the CPU (device=cpu); on a "
            "cluster give a Hugging Face model id or a local model folder (model=...)"
        )
    return (model,)


_OPTIMIZERS = {"adamw": "AdamW"}
_LOGGERS = {"console": "console", "jsonl": "file", "tensorboard": "tensorboard", "wandb": "wandb"}


def _optimizer(name: str, _: VerlPlan) -> tuple[Any, ...]:
    if name.lower() not in _OPTIMIZERS:
        raise VerlConfigError(f"optimizer: verl runs {', '.join(_OPTIMIZERS)} only (got {name!r})")
    return (_OPTIMIZERS[name.lower()],)


SEED_FIELDS = ("data_seed", "rollout_seed")
"""Fields whose null (the native engine's seed derived from ``seed``) verl cannot express."""


def _seed(name: str, value: int | None) -> int:
    if value is None:
        raise VerlConfigError(
            f"{name}: null means the native engine's seed derived from `seed`; verl needs a number "
            f"({name}=42 for justrl's former default)"
        )
    return value


VAL_MAX_TOKENS_NOTE = (
    "verl 0.9.1 cannot be told a validation budget: its agent loop builds the validation sampling "
    "parameters from val_kwargs (temperature, top_p, top_k, n, do_sample: a closed dataclass) and "
    "the vLLM server then caps new tokens at data.max_response_length; the release's "
    "+val_kwargs.max_new_tokens=31744 was read by its fork's vLLM rollout only. Evaluate the "
    "checkpoints with `justrl eval` (or `justrl eval --watch`) for the 31,744-token protocol"
)


def _loggers(names: list[str], _: VerlPlan) -> tuple[Any, ...]:
    unknown = [n for n in names if n not in _LOGGERS]
    if unknown:
        raise VerlConfigError(f"loggers: no verl logger for {unknown}; known: {', '.join(_LOGGERS)}")
    return ([_LOGGERS[n] for n in names],)


_ACTOR = "actor_rollout_ref.actor"
_ROLLOUT = "actor_rollout_ref.rollout"
_OPTIM = "actor_rollout_ref.actor.optim"
_OVERLONG = "reward.reward_kwargs.overlong_buffer_cfg"
_REWARD_KWARGS = "reward.custom_reward_function.reward_kwargs"

MAPPING: dict[str, Route] = {
    # --- what is trained, on what ---------------------------------------------------------------
    "name": to("trainer.experiment_name"),
    "model": to("actor_rollout_ref.model.path", convert=_model_path),
    "train_data": to("data.train_files", convert=lambda _, plan: (list(plan.train_files),),
                     note="exported to RUN/data/train.parquet by the launch script"),
    "train_dedup": not_in_verl("in the data: `justrl data export --recipe` drops repeated rows only when "
                               "true (the release trained on the file as published)"),
    "data_seed": to("data.seed", convert=lambda v, _: (_seed("data_seed", v),),
                    note="verl's RandomSampler: torch.randperm with a generator seeded so (release: 1)"),
    "rollout_seed": to(f"{_ROLLOUT}.seed", convert=lambda v, _: (_seed("rollout_seed", v),),
                       note="vLLM's sampling seed (release: 0, its fork's default)"),
    "val_data": to("data.val_files", convert=lambda _, plan: (list(plan.val_files),),
                   note="each exported to RUN/data/val/NAME.parquet by the launch script"),
    "prompt_suffix": not_in_verl("in the data: `justrl data export` appends it to every prompt "
                                 "(the release's fork did it with +data.use_boxed_suffix_prompt)"),
    "prompt_format": not_in_verl("in the data: `justrl data export --recipe` writes the user message in "
                                 "this format (release: the row's own text, DAPO's instructions kept, + suffix)"),
    "answer_from": not_in_verl("in the data: `justrl data export` writes each MATH-style solution's boxed "
                               "answer as reward_model.ground_truth"),
    "use_chat_template": fixed_in_verl(True, "verl always renders the prompt's chat list with the "
                                             "tokenizer's chat template"),
    # --- the RL algorithm ------------------------------------------------------------------------
    "algorithm": to("algorithm.adv_estimator", f"{_ACTOR}.policy_loss.loss_mode",
                    convert=lambda v, _: (v, "vanilla"), note="plain GRPO: group advantages, PPO-clip loss"),
    "total_steps": to("trainer.total_training_steps", "trainer.total_epochs",
                      convert=lambda v, _: (v, v),
                      note="verl stops at total_training_steps; epochs only need to be enough"),
    "prompts_per_step": to("data.train_batch_size"),
    "rollouts_per_prompt": to(f"{_ROLLOUT}.n"),
    "mini_batch_prompts": to(f"{_ACTOR}.ppo_mini_batch_size", note="verl counts it in prompts too"),
    "micro_batch_sequences": not_in_verl("memory only; verl packs micro-batches by tokens instead "
                                         "(use_dynamic_bsz, ppo_max_token_len_per_gpu: engine settings)"),
    "micro_batch_tokens": not_in_verl("memory only, native engine; the verl launch always packs by "
                                      "tokens (use_dynamic_bsz, ppo_max_token_len_per_gpu: engine settings)"),
    "ppo_epochs": to(f"{_ACTOR}.ppo_epochs"),
    "shuffle_mini_batches": to(f"{_ACTOR}.shuffle"),
    "normalize_adv_by_std": to("algorithm.norm_adv_by_std_in_grpo"),
    "adv_epsilon": fixed_in_verl(1e-6, "verl's compute_grpo_outcome_advantage uses epsilon=1e-6; "
                                       "no config key"),
    # --- sampling during training ----------------------------------------------------------------
    "temperature": to(f"{_ROLLOUT}.temperature"),
    "top_p": to(f"{_ROLLOUT}.top_p"),
    "max_prompt_tokens": to("data.max_prompt_length"),
    "max_response_tokens": to("data.max_response_length", "reward.reward_kwargs.max_resp_len",
                              note="the DAPO reward manager needs it for the overlong window"),
    # --- optimisation ----------------------------------------------------------------------------
    "optimizer": to(f"{_OPTIM}.optimizer", convert=_optimizer),
    "lr": to(f"{_OPTIM}.lr"),
    "warmup_steps": to(f"{_OPTIM}.lr_warmup_steps"),
    "lr_schedule": to(f"{_OPTIM}.lr_scheduler_type"),
    "weight_decay": to(f"{_OPTIM}.weight_decay"),
    "adam_betas": to(f"{_OPTIM}.betas", convert=lambda v, _: (list(v),)),
    "grad_clip": to(f"{_OPTIM}.clip_grad", note=f"{_ACTOR}.grad_clip (the release's key) is unused in verl 0.9"),
    # --- the policy loss -------------------------------------------------------------------------
    "clip_low": to(f"{_ACTOR}.clip_ratio_low", f"{_ACTOR}.clip_ratio"),
    "clip_high": to(f"{_ACTOR}.clip_ratio_high"),
    "clip_c": to(f"{_ACTOR}.clip_ratio_c"),
    "loss_agg": to(f"{_ACTOR}.loss_agg_mode"),
    "entropy_coef": to(f"{_ACTOR}.entropy_coeff"),
    "kl_coef": to(f"{_ACTOR}.use_kl_loss", f"{_ACTOR}.kl_loss_coef",
                  "algorithm.use_kl_in_reward", "algorithm.kl_ctrl.kl_coef",
                  convert=lambda v, _: (v > 0, v, False, 0.0),
                  note="GRPO's KL term lives in the loss; the reward never carries one"),
    # --- reward ----------------------------------------------------------------------------------
    "verifier": to(f"{_REWARD_KWARGS}.verifier", note="read by justrl.verl_reward.compute_score"),
    "val_verifier": to(f"{_REWARD_KWARGS}.val_verifier",
                       note="used by compute_score for the data sources the release graded with "
                            "Math-Verify (AIME24, AIME25, AMC23), scored 1/0"),
    "reward_correct": to(f"{_REWARD_KWARGS}.reward_correct"),
    "reward_incorrect": to(f"{_REWARD_KWARGS}.reward_incorrect"),
    "overlong_buffer_tokens": to(f"{_OVERLONG}.enable", f"{_OVERLONG}.len", f"{_OVERLONG}.log",
                                 convert=lambda v, _: (v > 0, v, v > 0)),
    "overlong_penalty_factor": to(f"{_OVERLONG}.penalty_factor"),
    # --- validation, checkpoints, logging --------------------------------------------------------
    "val_every": to("trainer.test_freq"),
    "val_samples": to(f"{_ROLLOUT}.val_kwargs.n"),
    "val_temperature": to(f"{_ROLLOUT}.val_kwargs.temperature", f"{_ROLLOUT}.val_kwargs.do_sample",
                          convert=lambda v, _: (v, v > 0)),
    "val_top_p": to(f"{_ROLLOUT}.val_kwargs.top_p"),
    "val_max_tokens": not_in_verl(VAL_MAX_TOKENS_NOTE),
    "val_before_train": to("trainer.val_before_train"),
    "save_every": to("trainer.save_freq"),
    "loggers": to("trainer.logger", convert=_loggers, note="jsonl -> verl's file logger"),
    "seed": to(f"{_ACTOR}.data_loader_seed", note="mini-batch shuffles (off in the recipe)"),
    # --- hardware (native engine) ----------------------------------------------------------------
    "device": not_in_verl("native engine only: verl runs on the Ray cluster's GPUs"),
    "dtype": not_in_verl("native engine only: verl trains with FSDP mixed precision (bf16 compute, "
                         "fp32 master weights) and samples in bf16 with vLLM"),
    "rollout_backend": not_in_verl("native engine only: verl always samples with its own vLLM engines"),
    "vllm_gpu_memory_utilization": not_in_verl("native engine only (rollout_backend=vllm); the verl launch "
                                               "sets rollout.gpu_memory_utilization as an engine setting"),
    "rollout_batch_tokens": not_in_verl("native engine only (hf / hf-static rollouts); verl's vLLM engines "
                                        "schedule their own batches"),
    "share_prompts": not_in_verl("native engine only; verl removes the padding instead "
                                 "(use_remove_padding), which gives the same log-probs"),
    "gradient_checkpointing": not_in_verl("memory only; the verl launch always recomputes activations "
                                          "(actor_rollout_ref.model.enable_gradient_checkpointing, an "
                                          "engine setting, as in the release)"),
}


def engine_settings(recipe: Recipe, plan: VerlPlan) -> dict[str, Any]:
    """verl settings that are not recipe fields: the release's hardware choices and our wiring."""
    # Token budget per GPU for packed micro-batches and vLLM's batched prefill: the release's
    # 32,768, raised when one sequence would not fit.
    tokens_per_gpu = max(32768, recipe.max_prompt_tokens + recipe.max_response_tokens)
    env = "ray_kwargs.ray_init.runtime_env.env_vars"
    return {
        # rollout: vLLM, one GPU per engine (a 1.5B model), as in the release
        f"{_ROLLOUT}.name": "vllm",
        f"{_ROLLOUT}.tensor_model_parallel_size": 1,
        f"{_ROLLOUT}.gpu_memory_utilization": 0.85,
        f"{_ROLLOUT}.max_num_batched_tokens": tokens_per_gpu,
        # training: FSDP, sequences packed by token count, padding removed, activations recomputed
        f"{_ACTOR}.use_dynamic_bsz": True,
        f"{_ACTOR}.ppo_max_token_len_per_gpu": tokens_per_gpu,
        f"{_ACTOR}.ppo_micro_batch_size_per_gpu": 1,
        f"{_ACTOR}.ulysses_sequence_parallel_size": 1,
        f"{_ACTOR}.fsdp_config.param_offload": False,
        f"{_ACTOR}.fsdp_config.optimizer_offload": False,
        "actor_rollout_ref.model.use_remove_padding": True,
        "actor_rollout_ref.model.enable_gradient_checkpointing": True,
        # data: prompts over max_prompt_length are dropped, never truncated
        "data.filter_overlong_prompts": True,
        "data.truncation": "error",
        # reward: our verifier through verl's DAPO reward manager (as the release)
        "reward.reward_manager.name": "dapo",
        "reward.custom_reward_function.path": REWARD_FN_PATH,
        "reward.custom_reward_function.name": REWARD_FN_NAME,
        # where things land
        "trainer.project_name": PROJECT_NAME,
        "trainer.nnodes": plan.nnodes,
        "trainer.n_gpus_per_node": plan.gpus_per_node,
        "trainer.default_local_dir": str(plan.checkpoint_dir),
        "trainer.validation_data_dir": str(plan.validation_dir),
        f"{env}.TENSORBOARD_DIR": str(plan.tensorboard_dir),
        f"{env}.VERL_FILE_LOGGER_PATH": str(plan.metrics_file),
        **(cpu_settings(recipe, plan) if plan.cpu else {}),
    }


def cpu_settings(recipe: Recipe, plan: VerlPlan) -> dict[str, Any]:
    """What verl 0.9.1 needs to run on the CPU (:mod:`justrl.verl_engine.cpu_platform`), besides its
    environment: each setting replaces a GPU-only default."""
    from justrl.verl_engine.cpu_platform import CPU_ENV

    env = "ray_kwargs.ray_init.runtime_env.env_vars"
    dtype = "float32" if recipe.dtype == "float32" else "bfloat16"
    return {
        "ray_kwargs.ray_init.num_gpus": plan.gpus_per_node,  # verl's pools always ask for GPUs
        # logical CPUs: the trainer, TransferQueue's controller and storage units each hold one
        "ray_kwargs.ray_init.num_cpus": 16,
        f"{_ACTOR}.strategy": "fsdp2",  # FSDP1 needs an accelerator device id
        f"{_ACTOR}.fsdp_config.model_dtype": "fp32",
        f"{_ACTOR}.fsdp_config.dtype": dtype,
        f"{_ACTOR}.use_torch_compile": False,
        "actor_rollout_ref.model.override_config.attn_implementation": "sdpa",  # no flash-attn
        "actor_rollout_ref.model.use_remove_padding": False,  # its kernels are flash-attn's
        "actor_rollout_ref.model.enable_gradient_checkpointing": False,
        f"{_ROLLOUT}.dtype": dtype,
        f"{_ROLLOUT}.free_cache_engine": False,  # vLLM's sleep mode is refused on the CPU ...
        f"{_ROLLOUT}.enable_sleep_mode": False,  # ... and must not be asked for
        f"{_ROLLOUT}.enforce_eager": True,
        f"{_ROLLOUT}.enable_prefix_caching": False,
        f"{_ROLLOUT}.gpu_memory_utilization": 0.5,
        # one process each where a GPU node runs eight (a 2-core machine runs them all at once)
        f"{_ROLLOUT}.agent.num_workers": 1,
        "reward.num_workers": 1,
        "data.dataloader_num_workers": 0,
        **{f"{env}.{name}": value for name, value in CPU_ENV.items()},
        f"{env}.VLLM_CPU_KVCACHE_SPACE": "1",
    }


def unmapped_fields() -> list[str]:
    """Recipe fields that :data:`MAPPING` does not account for (must be empty)."""
    return [f.name for f in fields(Recipe) if f.name not in MAPPING]


def verl_settings(recipe: Recipe, plan: VerlPlan) -> dict[str, Any]:
    """Every verl key this launch sets, with its value: the recipe's fields, then engine settings."""
    gpus = plan.nnodes * plan.gpus_per_node
    per_update = recipe.mini_batch_prompts * recipe.rollouts_per_prompt
    if per_update % gpus:
        # verl splits every mini-batch's sequences evenly over the data-parallel ranks
        raise VerlConfigError(
            f"mini_batch_prompts x rollouts_per_prompt ({per_update} sequences) must divide evenly over "
            f"nnodes x gpus_per_node ({gpus} GPUs)"
        )
    missing = unmapped_fields()
    if missing:
        raise VerlConfigError(f"recipe fields without a verl mapping (add them to MAPPING in justrl/verl_engine/mapping.py): {missing}")
    settings: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for name, route in MAPPING.items():
        value = getattr(recipe, name)
        if plan.cpu and name in SEED_FIELDS and value is None:
            value = recipe.seed  # the CPU demo's seeds are derived from `seed`; verl takes one number
        if route.has_only_value and value != route.only_value:
            raise VerlConfigError(f"{name}: verl only supports {route.only_value!r} ({route.reason}); got {value!r}")
        for key, verl_value in zip(route.keys, route.values(value, plan)):
            if key in owner:  # pragma: no cover - a bug in the table
                raise AssertionError(f"{key} is set by both {owner[key]} and {name}")
            owner[key] = name
            settings[key] = verl_value
    for key, value in engine_settings(recipe, plan).items():
        if key in owner:  # pragma: no cover - a bug in the table
            raise AssertionError(f"{key} is set by both {owner[key]} and the engine settings")
        settings[key] = value
    return settings


def deviations(recipe: Recipe) -> list[str]:
    """Recipe values verl cannot honour exactly (logged as warnings before a launch, not refused)."""
    notes = []
    if recipe.val_max_tokens != recipe.max_response_tokens:
        notes.append(
            f"val_max_tokens={recipe.val_max_tokens}: verl validates with max_response_tokens="
            f"{recipe.max_response_tokens}. {VAL_MAX_TOKENS_NOTE}"
        )
    return notes

