"""The overrides checked against the *installed* verl's own Hydra configuration, before any launch.

:func:`compose` builds verl's ``ppo_trainer`` config with a list of overrides through Hydra's compose
API, as ``main_ppo`` would see it (CPU only, nothing started). :func:`validate_overrides` refuses
unknown keys, wrong types, values Hydra reads back differently from what was meant, and anything
verl's own ``validate_config`` rejects, naming the key.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import io
import re
import types
import typing
import warnings
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from justrl.errors import VerlConfigError
from justrl.verl_engine.mapping import ADDED_KEY_PREFIXES, is_added_key
from justrl.verl_engine.rendering import plain


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
            got = plain(OmegaConf.to_container(value) if OmegaConf.is_config(value) else value)
            if got != plain(expected[key]):
                problems.append(f"{key}: verl reads {got!r}, meant {plain(expected[key])!r}")
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
            for section in ("algorithm", "actor_rollout_ref.rollout"):
                omega_conf_to_dataclass(OmegaConf.select(config, section))
            from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER
    except Exception as exc:
        raise VerlConfigError(f"verl's own config checks failed: {type(exc).__name__}: {exc}") from exc
    if manager not in REWARD_MANAGER:
        raise VerlConfigError(f"reward.reward_manager.name: {manager!r} is not a verl reward manager "
                              f"({', '.join(sorted(REWARD_MANAGER))})")

