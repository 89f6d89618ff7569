"""The recipe as ``key=value`` overrides of ``python -m verl.trainer.main_ppo``.

:func:`hydra_value` writes a value so that Hydra's override parser reads back exactly that value
(quoting where needed, checked by parsing it back); :func:`overrides` renders every setting of
:func:`~justrl.verl_engine.mapping.verl_settings`, then the raw verl overrides of the command line,
which so win. :func:`show_mapping` prints the table side by side (``justrl recipe show --engine verl``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import fields
from functools import lru_cache
from pathlib import Path
from typing import Any

from justrl.errors import VerlConfigError
from justrl.recipe import Recipe
from justrl.verl_engine.mapping import MAPPING, VERL_VERSION, engine_settings, is_added_key, verl_settings
from justrl.verl_engine.plan import VerlPlan, make_plan, symbolic_plan


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
    return plain(override.value())


_UNPARSABLE = object()


def plain(value: Any) -> Any:
    """``value`` as plain Python (dicts, lists, strings), for comparing what was meant with what verl reads."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
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


def override_key(key: str) -> str:
    """``key`` as an override names it: with Hydra's ``+`` where verl's schema lacks it."""
    return f"+{key}" if is_added_key(key) else key


def render(key: str, value: Any) -> str:
    return f"{override_key(key)}={hydra_value(value)}"


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


def show_mapping(recipe: Recipe, run_dir: str | Path | None = None) -> None:
    """Print every recipe field, its value and the verl key(s)/value(s) it becomes, side by side."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    plan = make_plan(recipe, run_dir) if run_dir is not None else symbolic_plan(recipe)
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
                          override_key(key), Text(hydra_value(verl_value)),
                          Text(route.reason if first else ""))
    engine = Table(title="engine settings (not recipe fields; the release's choices and our wiring)")
    engine.add_column("verl key", no_wrap=True)
    engine.add_column("verl value", overflow="fold")
    for key, verl_value in engine_settings(recipe, plan).items():
        engine.add_row(override_key(key), Text(hydra_value(verl_value)))
    console = Console(width=max(200, Console().width))
    console.print(table)
    console.print(engine)
