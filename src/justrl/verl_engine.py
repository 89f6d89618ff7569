"""The JustRL recipe on verl's Ray trainer (``justrl train --engine verl``).

The paper's runs used verl (``python -m verl.trainer.main_ppo`` with some seventy overrides). This
module renders a :class:`~justrl.recipe.Recipe` as those overrides, checks them against the
*installed* verl's own Hydra configuration before anything is launched, writes them into a launch
script in the run directory, and runs it.

- :data:`MAPPING` is the translation table, recipe field -> verl key(s): every field of the recipe
  has an entry, either the verl keys it sets or the reason it has none (a native-engine-only knob,
  something carried by the exported data). :data:`ENGINE_SETTINGS` holds the verl settings that are
  not part of the recipe (vLLM rollout, token budgets, the reward adapter), taken from the release's
  launch script.
- :func:`overrides` renders ``key=value`` strings; :func:`validate_overrides` composes them with
  verl's ``ppo_trainer.yaml`` through Hydra's compose API (CPU only) and refuses unknown keys, wrong
  types and anything verl's own ``validate_config`` rejects, naming the key.
- :func:`launch` writes ``launch_verl.sh`` and ``recipe.yaml`` into the run directory, prints the
  exact command, and runs the script unless ``dry_run``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import re
import shlex
import subprocess
import sys
import types
import typing
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from justrl import recipe as recipe_mod
from justrl.errors import VerlConfigError
from justrl.recipe import Recipe

VERL_VERSION = "0.9.1"
"""The verl release the overrides are written for and tested against (the ``verl`` extra pins it)."""
ENTRYPOINT = "verl.trainer.main_ppo"
PROJECT_NAME = "justrl"
REWARD_FN_PATH = "pkg://justrl.verl_reward"
REWARD_FN_NAME = "compute_score"
SCRIPT_NAME = "launch_verl.sh"

# Keys verl reads but its schema does not declare; they must be added with Hydra's ``+`` prefix.
# Anything else outside the schema is refused: verl would silently ignore it.
ADDED_KEY_PREFIXES = (
    "reward.reward_kwargs.",  # read by verl's DAPO reward manager (overlong buffer, max_resp_len)
    "reward.custom_reward_function.reward_kwargs.",  # passed by verl to our compute_score
    "ray_kwargs.ray_init.runtime_env.env_vars.",  # environment of every Ray worker
)


# --------------------------------------------------------------------------------------------
# Where a run's files go
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerlPlan:
    """Everything besides the recipe that a verl launch needs: cluster shape and file locations."""

    run_dir: Path
    nnodes: int = 1
    gpus_per_node: int = 8
    train_files: tuple[str, ...] = ()
    """verl-format parquet files to train on; default: ``RUN/data/train.parquet`` (exported)."""
    val_files: tuple[str, ...] = ()
    """verl-format validation files; default: ``RUN/data/val/<NAME>.parquet`` per ``val_data``."""
    data_dir: str | None = None
    """Folder of the paper's benchmarks (``NAME/test.parquet``) for exporting ``val_data`` by name."""
    extra: tuple[str, ...] = ()
    """Raw verl overrides from the command line (``actor_rollout_ref.rollout.gpu_memory_utilization=0.7``)."""

    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    @property
    def tensorboard_dir(self) -> Path:
        return self.run_dir / "tensorboard"

    @property
    def metrics_file(self) -> Path:
        return self.run_dir / "verl_metrics.jsonl"

    @property
    def validation_dir(self) -> Path:
        return self.run_dir / "validation"

    @property
    def log_file(self) -> Path:
        return self.run_dir / "verl.log"


def default_train_file(run_dir: Path) -> Path:
    return run_dir / "data" / "train.parquet"


def default_val_file(run_dir: Path, source: str) -> Path:
    path = Path(source)
    stem = path.parent.name if path.stem in ("test", "train") and path.suffix else path.stem or path.name
    return run_dir / "data" / "val" / (re.sub(r"[^A-Za-z0-9._-]+", "_", stem) + ".parquet")


def _absolute(path: str) -> str:
    """Local paths made absolute; remote ones (``hdfs://...``, which verl copies in) kept as they are."""
    return path if "://" in path else str(Path(path).expanduser().resolve())


def make_plan(recipe: Recipe, run_dir: str | Path, *, nnodes: int = 1, gpus_per_node: int = 8,
              train_files: Sequence[str] | None = None, val_files: Sequence[str] | None = None,
              data_dir: str | None = None, extra: Sequence[str] = ()) -> VerlPlan:
    """A plan with absolute paths (Ray workers do not share the launcher's working directory)."""
    run = Path(run_dir).expanduser().resolve()
    if nnodes < 1 or gpus_per_node < 1:
        raise VerlConfigError(f"--nnodes and --gpus-per-node must be >= 1 (got {nnodes}, {gpus_per_node})")
    train = tuple(_absolute(f) for f in train_files or ()) or (str(default_train_file(run)),)
    val = tuple(_absolute(f) for f in val_files or ()) or tuple(
        str(default_val_file(run, name)) for name in recipe.val_data
    )
    if len(set(val)) != len(val):
        raise VerlConfigError(f"val_data names two sources that export to the same file: {list(val)}")
    return VerlPlan(run, nnodes, gpus_per_node, train, val, data_dir, tuple(extra))


# --------------------------------------------------------------------------------------------
# The translation table: recipe field -> verl key(s)
# --------------------------------------------------------------------------------------------

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


def _model_path(model: str, _: VerlPlan) -> tuple[Any, ...]:
    if model == "toy":
        raise VerlConfigError(
            "model: 'toy' is built in memory by the native engine; verl needs a Hugging Face model id "
            "or a local model folder (model=...)"
        )
    return (model,)


_OPTIMIZERS = {"adamw": "AdamW"}
_LOGGERS = {"console": "console", "jsonl": "file", "tensorboard": "tensorboard", "wandb": "wandb"}


def _optimizer(name: str, _: VerlPlan) -> tuple[Any, ...]:
    if name.lower() not in _OPTIMIZERS:
        raise VerlConfigError(f"optimizer: verl runs {', '.join(_OPTIMIZERS)} only (got {name!r})")
    return (_OPTIMIZERS[name.lower()],)


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
    "val_data": to("data.val_files", convert=lambda _, plan: (list(plan.val_files),),
                   note="each exported to RUN/data/val/NAME.parquet by the launch script"),
    "prompt_suffix": not_in_verl("in the data: `justrl data export` appends it to every prompt "
                                 "(the release's fork did it with +data.use_boxed_suffix_prompt)"),
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
    "val_max_tokens": not_in_verl("verl 0.9.1 validates with the training budget (data.max_response_length); "
                                  "the release's +val_kwargs.max_new_tokens was a patch of its fork. "
                                  "Evaluate checkpoints with `justrl eval` for the 31,744-token protocol"),
    "val_before_train": to("trainer.val_before_train"),
    "save_every": to("trainer.save_freq"),
    "loggers": to("trainer.logger", convert=_loggers, note="jsonl -> verl's file logger"),
    "seed": to("data.seed", f"{_ACTOR}.data_loader_seed", f"{_ROLLOUT}.seed"),
    # --- hardware (native engine) ----------------------------------------------------------------
    "device": not_in_verl("native engine only: verl runs on the Ray cluster's GPUs"),
    "dtype": not_in_verl("native engine only: verl trains with FSDP mixed precision (bf16 compute, "
                         "fp32 master weights) and samples in bf16 with vLLM"),
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
        raise VerlConfigError(f"recipe fields without a verl mapping (add them to verl_engine.MAPPING): {missing}")
    settings: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for name, route in MAPPING.items():
        value = getattr(recipe, name)
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
    """Recipe values verl cannot honour exactly (printed before a launch, not refused)."""
    notes = []
    if recipe.val_max_tokens != recipe.max_response_tokens:
        notes.append(
            f"val_max_tokens={recipe.val_max_tokens}: verl validates with max_response_tokens="
            f"{recipe.max_response_tokens}; use `justrl eval` on the checkpoints for the paper's protocol"
        )
    return notes


# --------------------------------------------------------------------------------------------
# Rendering key=value overrides
# --------------------------------------------------------------------------------------------


def is_added_key(key: str) -> bool:
    return key.startswith(ADDED_KEY_PREFIXES)


@lru_cache(maxsize=1)
def _override_parser() -> Any:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


def _parsed_value(text: str) -> Any:
    """What Hydra makes of ``key=<text>`` (as plain Python)."""
    from hydra.errors import HydraException

    try:
        override = _override_parser().parse_override(f"k={text}")
    except HydraException:
        return _UNPARSABLE
    return _plain(override.value())


_UNPARSABLE = object()


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _quote(text: str) -> str:
    escaped = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", text)
    escaped = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, escaped)
    return "'" + escaped.replace("${", "\\${") + "'"


def hydra_value(value: Any) -> str:
    """``value`` written so that Hydra's override parser reads back exactly ``value``."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise VerlConfigError(f"cannot pass the non-finite number {value} to verl")
        return repr(value)
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, str):
        plain = value if re.fullmatch(r"[A-Za-z0-9_/\-+.@%*?|]+", value) else None
        for text in (plain, _quote(value)):
            if text is not None and _parsed_value(text) == value:
                return text
        raise VerlConfigError(f"cannot write {value!r} as a Hydra override value")
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    raise VerlConfigError(f"cannot write {type(value).__name__} {value!r} as a Hydra override value")


def render(key: str, value: Any) -> str:
    return f"{'+' if is_added_key(key) else ''}{key}={hydra_value(value)}"


def overrides(recipe: Recipe, run_dir: str | Path | VerlPlan, nnodes: int = 1, gpus_per_node: int = 8,
              train_files: Sequence[str] | None = None, val_files: Sequence[str] | None = None,
              extra: Sequence[str] = ()) -> list[str]:
    """The ``key=value`` arguments of ``python -m verl.trainer.main_ppo`` for ``recipe``.

    ``run_dir`` may be a ready :class:`VerlPlan` (then the other arguments are ignored). Raw verl
    overrides in ``extra`` come last, so they win over the recipe's.
    """
    plan = run_dir if isinstance(run_dir, VerlPlan) else make_plan(
        recipe, run_dir, nnodes=nnodes, gpus_per_node=gpus_per_node,
        train_files=train_files, val_files=val_files, extra=extra)
    return [render(k, v) for k, v in verl_settings(recipe, plan).items()] + list(plan.extra)


# --------------------------------------------------------------------------------------------
# Validation against the installed verl's Hydra config
# --------------------------------------------------------------------------------------------


def verl_config_dir() -> Path:
    try:
        import verl
    except ImportError as exc:
        raise VerlConfigError("verl is not installed: pip install 'justrl[verl]'") from exc
    return Path(verl.__file__).parent / "trainer" / "config"


def installed_verl_version() -> str:
    from importlib.metadata import version

    return version("verl")


def compose(override_list: Sequence[str] = ()) -> Any:
    """verl's ``ppo_trainer`` config composed with ``override_list``, as ``main_ppo`` would see it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(verl_config_dir()), version_base=None):
        return hydra_compose(config_name="ppo_trainer", overrides=list(override_list))


@lru_cache(maxsize=1)
def _defaults() -> tuple[Any, frozenset[str]]:
    """verl's default config and the dotted names of all its keys."""
    from omegaconf import OmegaConf

    config = compose()
    names: set[str] = set()

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                names.add(prefix + str(k))
                walk(v, f"{prefix}{k}.")

    walk(OmegaConf.to_container(config, resolve=False), "")
    return config, frozenset(names)


def _split(override: str) -> tuple[str, str, str]:
    """``+a.b=1`` -> (``+``, ``a.b``, ``1``)."""
    match = re.fullmatch(r"(\+\+|\+|~)?([^=]+)=(.*)", override, flags=re.S)
    if not match:
        raise VerlConfigError(f"override {override!r} is not of the form key=value")
    return match.group(1) or "", match.group(2).strip(), match.group(3)


_KIND_OF = {bool: "bool", int: "int", float: "float", str: "str", list: "list", tuple: "list", dict: "dict"}
# Keys whose default's type is narrower than what verl accepts (RLHFDataset takes a path or a list).
_FLEXIBLE_KINDS = {"data.train_files": {"str", "list"}, "data.val_files": {"str", "list"}}


def _kinds_of_hint(hint: Any) -> set[str] | None:
    """The value kinds a dataclass annotation admits (None: anything)."""
    import dataclasses

    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        kinds: set[str] = set()
        for arg in typing.get_args(hint):
            if arg is type(None):
                continue
            sub = _kinds_of_hint(arg)
            if sub is None:
                return None
            kinds |= sub
        return kinds
    base = origin or hint
    if base is float:
        return {"float", "int"}
    if base in _KIND_OF:
        return {_KIND_OF[base]}
    if isinstance(base, type) and dataclasses.is_dataclass(base):
        return {"dict"}
    return None


def _kind(value: Any) -> str | None:
    from omegaconf import DictConfig, ListConfig

    if isinstance(value, DictConfig):
        return "dict"
    if isinstance(value, ListConfig):
        return "list"
    return _KIND_OF.get(type(value))


def _expected_kinds(defaults: Any, key: str) -> set[str] | None:
    """Value kinds verl accepts at ``key``: from the dataclass behind its section, else its default."""
    from omegaconf import DictConfig, OmegaConf

    if key in _FLEXIBLE_KINDS:
        return _FLEXIBLE_KINDS[key]
    parent_key, _, leaf = key.rpartition(".")
    parent = OmegaConf.select(defaults, parent_key) if parent_key else defaults
    if isinstance(parent, DictConfig) and isinstance(parent.get("_target_"), str):
        hints = _dataclass_hints(parent["_target_"])
        if leaf in hints:
            return _kinds_of_hint(hints[leaf])
    default = OmegaConf.select(defaults, key, throw_on_missing=False, throw_on_resolution_failure=False)
    kind = _kind(default)
    if kind is None:
        return None
    return {"float", "int"} if kind == "float" else {kind}


@lru_cache(maxsize=64)
def _dataclass_hints(target: str) -> dict[str, Any]:
    try:
        from hydra.utils import get_class

        return typing.get_type_hints(get_class(target))
    except Exception:  # a target we cannot import or annotate: fall back to the default's type
        return {}


def validate_overrides(override_list: Sequence[str], expected: Mapping[str, Any] | None = None,
                       *, verl_checks: bool = True) -> Any:
    """Compose ``override_list`` with the installed verl's config; refuse what verl would not take.

    Refused, with the offending key named:
    - a key that verl's ``ppo_trainer.yaml`` does not have (a renamed or misspelled key), unless it
      is added with ``+`` under one of :data:`ADDED_KEY_PREFIXES`;
    - a value of the wrong type for its key (checked against the dataclass verl builds from the
      section, else against the default's type);
    - with ``expected`` (key -> value), a value Hydra reads back differently from what was meant;
    - anything ``verl.utils.config.validate_config`` (what ``main_ppo`` runs first) rejects.

    Returns the composed config.
    """
    from omegaconf import OmegaConf

    defaults, known = _defaults()
    problems: list[str] = []
    keys: list[tuple[str, str]] = []
    for item in override_list:
        prefix, key, _ = _split(item)
        keys.append((prefix, key))
        if prefix == "~":
            problems.append(f"{key}: deleting verl keys (~) is not allowed")
        elif prefix and not is_added_key(key):
            problems.append(f"{key}: not a verl {installed_verl_version()} key; adding it with '+' would be "
                            "ignored by verl (allowed only under " + ", ".join(ADDED_KEY_PREFIXES) + ")")
        elif not prefix and key not in known:
            import difflib

            close = difflib.get_close_matches(key, sorted(known), n=3, cutoff=0.75)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            problems.append(f"{key}: unknown verl key (not in verl {installed_verl_version()}'s "
                            f"ppo_trainer config){hint}")
    if problems:
        raise VerlConfigError("verl would not accept these overrides:\n  " + "\n  ".join(problems))

    try:
        config = compose(override_list)
    except Exception as exc:  # hydra raises several types; its message names the override
        raise VerlConfigError(f"verl's Hydra config refused the overrides: {exc}") from exc

    for prefix, key in keys:
        value = OmegaConf.select(config, key, throw_on_missing=False)
        if not prefix:
            kinds = _expected_kinds(defaults, key)
            if kinds is not None and value is not None and _kind(value) not in kinds:
                problems.append(f"{key}: expected {' or '.join(sorted(kinds))}, got {value!r} ({_kind(value)})")
        if expected is not None and key in expected:
            got = _plain(OmegaConf.to_container(value) if OmegaConf.is_config(value) else value)
            if got != _plain(expected[key]):
                problems.append(f"{key}: verl reads {got!r}, meant {_plain(expected[key])!r}")
    if problems:
        raise VerlConfigError("wrong values for verl:\n  " + "\n  ".join(problems))
    if verl_checks:
        _run_verl_checks(config)
    return config


def _run_verl_checks(config: Any) -> None:
    """verl's own pre-launch checks (``main_ppo`` runs validate_config before starting Ray)."""
    from omegaconf import OmegaConf
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import omega_conf_to_dataclass, validate_config

    manager = OmegaConf.select(config, "reward.reward_manager.name")
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            validate_config(config, use_reference_policy=need_reference_policy(config),
                            use_critic=need_critic(config))
            for section in ("algorithm", _ROLLOUT):
                omega_conf_to_dataclass(OmegaConf.select(config, section))
            from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER
    except Exception as exc:
        raise VerlConfigError(f"verl's own config checks failed: {type(exc).__name__}: {exc}") from exc
    if manager not in REWARD_MANAGER:
        raise VerlConfigError(f"reward.reward_manager.name: {manager!r} is not a verl reward manager "
                              f"({', '.join(sorted(REWARD_MANAGER))})")


# --------------------------------------------------------------------------------------------
# Launch script, command, launch
# --------------------------------------------------------------------------------------------


def command(override_list: Sequence[str], python: str = sys.executable) -> list[str]:
    return [python, "-m", ENTRYPOINT, *override_list]


def shell_quote(arg: str) -> str:
    """``shlex.quote``, but Hydra's single-quoted values go inside double quotes (easier to read)."""
    if "'" in arg and not re.search(r'["$`\\!]', arg):
        return f'"{arg}"'
    return shlex.quote(arg)


def format_command(argv: Sequence[str]) -> str:
    """The command as shell text, one override per line."""
    head = " ".join(shell_quote(a) for a in argv[:3])
    return " \\\n    ".join([head, *(shell_quote(a) for a in argv[3:])])


def _export_lines(recipe: Recipe, plan: VerlPlan, python: str) -> list[str]:
    """Shell lines that export the recipe's data in verl's schema, skipping files already there."""
    base = [python, "-m", "justrl.cli", "data", "export", "--format", "verl",
            "--recipe", str(plan.run_dir / "recipe.yaml")]
    if plan.data_dir:
        base += ["--data-dir", str(Path(plan.data_dir).expanduser().resolve())]
    jobs: list[tuple[str, str, str]] = []
    if plan.train_files == (str(default_train_file(plan.run_dir)),):
        jobs.append((recipe.train_data, plan.train_files[0], "train"))
    defaults = tuple(str(default_val_file(plan.run_dir, n)) for n in recipe.val_data)
    if plan.val_files == defaults:
        jobs += [(src, out, "test") for src, out in zip(recipe.val_data, plan.val_files)]
    lines = []
    for source, out, split in jobs:
        argv = [*base, "--split", split, "--out", out, source]
        lines.append(f"[ -s {shlex.quote(out)} ] || {' '.join(shlex.quote(a) for a in argv)}")
    return lines


def launch_script(recipe: Recipe, plan: VerlPlan, override_list: Sequence[str],
                  python: str = sys.executable) -> str:
    """The text of ``launch_verl.sh``: export the data if missing, then run verl, logging to verl.log."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    exports = _export_lines(recipe, plan, python) or ["# (data files given on the command line)"]
    return "\n".join([
        "#!/usr/bin/env bash",
        f"# Written by `justrl train --engine verl` on {stamp} for verl {VERL_VERSION}.",
        f"# Recipe: {recipe.name} (resolved in recipe.yaml beside this script).",
        f"# Cluster: {plan.nnodes} node(s) x {plan.gpus_per_node} GPU(s). On several nodes, start Ray first",
        "# (`ray start --head` here, `ray start --address=HEAD:6379` on the others) and run this on the head node;",
        "# the run directory must be on a file system every node sees.",
        "set -euo pipefail",
        f"cd {shlex.quote(str(plan.run_dir))}",
        "export PYTHONUNBUFFERED=1 HYDRA_FULL_ERROR=1",
        f"export TENSORBOARD_DIR={shlex.quote(str(plan.tensorboard_dir))}",
        f"export VERL_FILE_LOGGER_PATH={shlex.quote(str(plan.metrics_file))}",
        "",
        "# 1. the problems in verl's dataset schema (skipped when the file is already there)",
        *exports,
        "",
        "# 2. training",
        format_command(command(override_list, python)) + f" \\\n    2>&1 | tee -a {shlex.quote(str(plan.log_file))}",
        "",
    ])


def write_launch_script(recipe: Recipe, plan: VerlPlan, override_list: Sequence[str],
                        python: str = sys.executable) -> Path:
    """Write ``recipe.yaml`` and ``launch_verl.sh`` into the run directory; returns the script."""
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    recipe.save(plan.run_dir / "recipe.yaml")
    script = plan.run_dir / SCRIPT_NAME
    script.write_text(launch_script(recipe, plan, override_list, python))
    script.chmod(0o755)
    return script


def split_overrides(items: Iterable[str]) -> tuple[list[str], list[str]]:
    """Command-line ``key=value`` items -> (recipe overrides, raw verl overrides).

    Recipe fields have no dots; anything dotted or ``+``-prefixed is a verl key.
    """
    recipe_items, verl_items = [], []
    for item in items:
        key = item.split("=", 1)[0]
        (verl_items if "." in key or key.startswith(("+", "~")) else recipe_items).append(item)
    return recipe_items, verl_items


def add_verl_arguments(parser: argparse.ArgumentParser) -> None:
    """The verl engine's flags, for the ``train`` subcommand (which owns --recipe/--run-dir/key=value)."""
    group = parser.add_argument_group("verl engine (--engine verl)")
    group.add_argument("--nnodes", type=int, default=1, help="nodes in the Ray cluster (default 1)")
    group.add_argument("--gpus-per-node", type=int, default=8, help="GPUs per node (default 8)")
    group.add_argument("--dry-run", action="store_true",
                       help="check the overrides against verl's config, write the launch script, print "
                            "the command, and do not run it")
    group.add_argument("--train-file", action="append", default=None, metavar="PARQUET",
                       help="verl-format training data (default: export recipe.train_data into RUN/data)")
    group.add_argument("--val-file", action="append", default=None, metavar="PARQUET",
                       help="verl-format validation data, repeatable (default: export recipe.val_data)")
    group.add_argument("--data-dir", default=None,
                       help="folder with the paper's benchmarks as NAME/test.parquet, for val_data by name")


def default_run_dir(recipe: Recipe) -> Path:
    """``runs/<name>-verl-<date>-<time>``, like the native trainer's default."""
    return Path("runs") / f"{recipe.name}-verl-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def launch(recipe: Recipe | None, args: argparse.Namespace) -> int:
    """``justrl train --engine verl``: check, write the launch script, print the command, run it.

    With ``recipe`` None it is loaded from ``args.recipe`` and the undotted ``args.overrides``;
    dotted overrides are passed to verl as they are (after the recipe's, so they win).
    """
    recipe_items, verl_items = split_overrides(getattr(args, "overrides", None) or [])
    if recipe is None:
        recipe = recipe_mod.load(getattr(args, "recipe", None) or "justrl-deepseek-1.5b", recipe_items)
    run_dir = getattr(args, "run_dir", None) or default_run_dir(recipe)
    plan = make_plan(recipe, run_dir, nnodes=getattr(args, "nnodes", 1), gpus_per_node=getattr(args, "gpus_per_node", 8),
                     train_files=getattr(args, "train_file", None), val_files=getattr(args, "val_file", None),
                     data_dir=getattr(args, "data_dir", None), extra=verl_items)
    override_list = overrides(recipe, plan)
    settings = verl_settings(recipe, plan)
    validate_overrides(override_list, expected=settings)
    script = write_launch_script(recipe, plan, override_list)
    print(f"# verl {installed_verl_version()}: {len(override_list)} overrides compose with its ppo_trainer config")
    for note in deviations(recipe):
        print(f"# note: {note}")
    print(format_command(command(override_list)))
    print(f"# launch script: {script}")
    if getattr(args, "dry_run", False):
        print(f"# dry run: nothing started. Run it with: bash {shlex.quote(str(script))}")
        return 0
    return subprocess.call(["bash", str(script)])


# --------------------------------------------------------------------------------------------
# recipe show NAME --engine verl
# --------------------------------------------------------------------------------------------


def show_mapping(recipe: Recipe, run_dir: str | Path | None = None) -> None:
    """Print every recipe field, its value and the verl key(s)/value(s) it becomes, side by side."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    if run_dir is not None:
        plan = make_plan(recipe, run_dir)
    else:  # paths shown relative to a symbolic run directory
        run = Path("RUN")
        plan = VerlPlan(run, train_files=(str(default_train_file(run)),),
                        val_files=tuple(str(default_val_file(run, name)) for name in recipe.val_data))
    table = Table(title=f"recipe {recipe.name} on verl {VERL_VERSION}", show_lines=False)
    table.add_column("field", no_wrap=True)
    table.add_column("value", overflow="fold", max_width=36)
    table.add_column("verl key", no_wrap=True)
    table.add_column("verl value", overflow="fold", max_width=40)
    table.add_column("note", overflow="fold", style="dim")
    for spec in fields(Recipe):
        route = MAPPING[spec.name]
        value = getattr(recipe, spec.name)
        if not route.keys:
            table.add_row(spec.name, Text(repr(value)), "—", "", Text(route.reason))
            continue
        try:
            verl_values = route.values(value, plan)
        except VerlConfigError as exc:
            table.add_row(spec.name, Text(repr(value)), "—", "", Text(str(exc), style="red"))
            continue
        for i, (key, verl_value) in enumerate(zip(route.keys, verl_values)):
            first = i == 0
            table.add_row(spec.name if first else "", Text(repr(value) if first else ""),
                          ("+" if is_added_key(key) else "") + key, Text(hydra_value(verl_value)),
                          Text(route.reason if first else ""))
    engine = Table(title="engine settings (not recipe fields; the release's choices and our wiring)")
    engine.add_column("verl key", no_wrap=True)
    engine.add_column("verl value", overflow="fold")
    for key, verl_value in engine_settings(recipe, plan).items():
        engine.add_row(("+" if is_added_key(key) else "") + key, Text(hydra_value(verl_value)))
    console = Console(width=max(200, Console().width))
    console.print(table)
    console.print(engine)
