"""The one ``key=value`` coercer: strings from a command line or values from YAML, typed by a
dataclass field's annotation (recipe fields and evaluation settings alike), plus field docs.

A field is documented once, where it is declared: the string literal under it in the class body.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import types
import typing
from typing import Any

import yaml

from justrl.errors import ConfigError, JustrlError

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
_NONE = ("none", "null", "~", "")


def coerce(key: str, value: Any, hint: Any, error: type[JustrlError] = ConfigError) -> Any:
    """``value`` converted to the type ``hint`` declares, or :class:`ConfigError` naming ``key``.

    Strings are what a command line gives: ``"1e-5"`` for a float, ``"1_000"`` or ``"1,000"`` for
    an int, ``true/false`` for a bool, ``none`` for an optional field, ``a,b`` or ``[a, b]`` for a
    list. Values already of the right type (from YAML) pass through.
    """
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and (value is None or (isinstance(value, str) and value.strip().lower() in _NONE)):
            return None
        last: JustrlError | None = None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(key, value, arg, error)
            except error as exc:
                last = exc
        raise last or error(f"{key}: cannot use {value!r}")
    if origin in (list, tuple):
        if isinstance(value, str):
            text = value.strip()
            value = yaml.safe_load(text) if text.startswith("[") else [v.strip() for v in text.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise error(f"{key}: expected a list, got {value!r}")
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(coerce(key, v, args[0], error) for v in value)
            if len(value) != len(args):
                raise error(f"{key}: expected {len(args)} values, got {len(value)}")
            return tuple(coerce(key, v, a, error) for v, a in zip(value, args))
        return [coerce(key, v, args[0], error) for v in value]
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise error(f"{key}: expected true/false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip().replace("_", "").replace(",", ""))
            except ValueError:
                pass
        raise error(f"{key}: expected an integer, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise error(f"{key}: expected a number, got {value!r}")
    if hint is str:
        if isinstance(value, (dict, list)):
            raise error(f"{key}: expected a string, got {value!r}")
        return str(value)
    raise error(f"{key}: unsupported type {hint}")


def parse_overrides(items: typing.Iterable[str], error: type[JustrlError] = ConfigError) -> dict[str, str]:
    """``["lr=1e-5", "val_data=AIME24,AIME25"]`` -> ``{"lr": "1e-5", ...}`` (strings, typed later).

    Dashes in keys are read as underscores (``max-tokens=64`` is ``max_tokens``).
    """
    out: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise error(f"{item!r} is not of the form key=value")
        key, value = item.split("=", 1)
        out[key.strip().replace("-", "_")] = value
    return out


def apply(obj: Any, updates: dict[str, Any], *, source: str = "override",
          allowed: typing.Collection[str] | None = None, what: str = "key",
          error: type[JustrlError] = ConfigError) -> Any:
    """A copy of dataclass ``obj`` with ``updates`` typed and applied; unknown keys are refused."""
    hints = typing.get_type_hints(type(obj))
    known = set(allowed) if allowed is not None else {f.name for f in dataclasses.fields(obj)}
    changes: dict[str, Any] = {}
    for key, value in updates.items():
        if key not in known:
            close = sorted(k for k in known if key.replace("-", "_") == k or key in k)[:3]
            hint = f" (did you mean {', '.join(close)}?)" if close else f"; known: {', '.join(sorted(known))}"
            raise error(f"unknown {what} {key!r} in {source}{hint}")
        changes[key] = coerce(key, value, hints[key], error)
    return dataclasses.replace(obj, **changes)


def field_docs(cls: type) -> dict[str, str]:
    """Each dataclass field's one-line doc: the string literal right under it in the class body."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, nxt in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
            docs[node.target.id] = str(nxt.value.value)  # type: ignore[attr-defined]
    return docs
