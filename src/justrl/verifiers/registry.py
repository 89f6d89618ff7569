"""The verifiers by name: what recipes (``verifier=``) and the CLI (``--verifier``) refer to.

Besides the built-in ones, a user's verifier can be added with :func:`register` (from Python), or
named as ``module:factory`` (from a recipe or the command line: the module is imported and the
factory registered under that name; the current folder is searched too, as the workers search it).
A factory is called with the verifier's options (at least
``timeout_s``) when it accepts them, and returns either a full verifier (``quick`` and ``full``,
see :class:`~justrl.verifiers.base.Checked`) or a plain callable ``(response, ground_truth) ->
Verdict | bool``, which is then run like ``full``: in a verification worker, bounded in time.

Verification workers are separate processes that receive the verifier by pickling, so it must be
importable there: a class or function defined in a module, not in ``__main__`` or a lambda.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pickle
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from justrl.errors import ConfigError, RecipeError
from justrl.verifiers.base import DEFAULT_TIMEOUT_S, Verdict, Verifier
from justrl.verifiers.lenient import Lenient
from justrl.verifiers.plain_math_verify import MathVerify
from justrl.verifiers.release_math_verify import ReleaseMathVerify
from justrl.verifiers.release_rule import ReleaseRule
from justrl.verifiers.staged import JustrlEval
from justrl.verifiers.strict import DapoStrict

_BUILT_IN: dict[str, Callable[..., Any]] = {
    "dapo-strict": DapoStrict,
    "lenient": Lenient,
    "release-rule": ReleaseRule,
    "justrl-eval": JustrlEval,
    "release-math-verify": ReleaseMathVerify,
    "math-verify": MathVerify,
}
_FACTORIES: dict[str, Callable[..., Any]] = dict(_BUILT_IN)


def known_verifiers() -> list[str]:
    return list(_FACTORIES)


def register(name: str, factory: Callable[..., Any], *, replace: bool = False) -> None:
    """Make ``factory`` the verifier called ``name`` (for ``verifier=``, ``--verifier``, the adapters).

    ``factory(**options)`` builds the verifier (options it does not accept are not passed). A
    built-in name cannot be replaced; another registered name only with ``replace=True``.
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"a verifier's name must be a non-empty string (got {name!r})")
    if not callable(factory):
        raise ConfigError(f"verifier {name!r}: the factory must be callable (got {type(factory).__name__})")
    if name in _BUILT_IN:
        raise ConfigError(f"verifier {name!r} is built in and cannot be replaced; register another name")
    if name in _FACTORIES and not replace and _FACTORIES[name] is not factory:
        raise ConfigError(f"verifier {name!r} is already registered; pass replace=True to replace it")
    _FACTORIES[name] = factory


def unregister(name: str) -> None:
    """Forget a registered verifier (built-in ones stay)."""
    if name in _BUILT_IN:
        raise ConfigError(f"verifier {name!r} is built in and cannot be removed")
    _FACTORIES.pop(name, None)


def is_known(name: str) -> bool:
    """Whether ``name`` is a built-in or registered verifier, or a ``module:factory`` that imports."""
    try:
        check_name(name)
    except ConfigError:
        return False
    return True


def check_name(name: str) -> None:
    """Raise :class:`~justrl.errors.ConfigError` saying why ``name`` names no verifier."""
    _factory(name)


def _factory(name: str) -> Callable[..., Any]:
    if name in _FACTORIES:
        return _FACTORIES[name]
    if isinstance(name, str) and ":" in name:
        module_name, _, attr = name.partition(":")
        if os.getcwd() not in sys.path:  # as the workers (python -c) see it: modules in the current folder
            sys.path.append(os.getcwd())
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(f"verifier {name!r}: cannot import module {module_name!r} ({exc})") from None
        factory = getattr(module, attr, None)
        if factory is None or not callable(factory):
            raise ConfigError(f"verifier {name!r}: module {module_name!r} has no callable {attr!r}")
        register(name, factory)
        return factory
    raise ConfigError(f"unknown verifier {name!r}; known verifiers: {', '.join(known_verifiers())} "
                      "(or module:factory for your own)")


def get(name: str, **options: Any) -> Verifier:
    """The verifier called ``name``, built with ``options`` (e.g. ``timeout_s=2.0``).

    Unknown names raise :class:`~justrl.errors.ConfigError` (a ``ValueError``) listing the known
    ones.
    """
    factory = _factory(name)
    if name in _BUILT_IN:
        return factory(**options)
    built = factory(**_accepted(factory, options))
    if not (hasattr(built, "quick") and hasattr(built, "full")):
        if not callable(built):
            raise ConfigError(f"verifier {name!r}: the factory returned {type(built).__name__}, which is "
                              "neither a verifier (quick/full) nor a callable (response, ground_truth)")
        built = UserVerifier(name, built, float(options.get("timeout_s", DEFAULT_TIMEOUT_S)))
    _check_importable(name, built)
    return built  # type: ignore[no-any-return]


def _accepted(factory: Callable[..., Any], options: dict[str, Any]) -> dict[str, Any]:
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return options
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return options
    names = {p.name for p in parameters}
    return {k: v for k, v in options.items() if k in names}


def _check_importable(name: str, verifier: Any) -> None:
    """Refuse a verifier the worker processes could not rebuild (defined in ``__main__``, a lambda)."""
    inner = verifier.check if isinstance(verifier, UserVerifier) else verifier
    module = getattr(inner, "__module__", None) or type(inner).__module__
    if module == "__main__" or type(inner).__module__ == "__main__":
        raise ConfigError(f"verifier {name!r} is defined in __main__, which the verification worker processes "
                          "cannot import; define it in a module of its own")
    try:
        pickle.dumps(verifier)
    except Exception as exc:
        raise ConfigError(f"verifier {name!r} cannot be sent to the verification worker processes "
                          f"(not picklable: {exc}); use a module-level function or class") from None


@dataclass(frozen=True)
class UserVerifier:
    """A plain callable ``(response, ground_truth) -> Verdict | bool`` run as a verifier's ``full``
    check: in a worker, bounded by ``timeout_s``."""

    name: str
    check: Callable[[str, str], Any]
    timeout_s: float = DEFAULT_TIMEOUT_S

    def quick(self, response: str, ground_truth: str) -> Verdict | None:
        return None

    def full(self, response: str, ground_truth: str) -> Verdict:
        result = self.check(response, ground_truth)
        if isinstance(result, Verdict):
            return result
        if isinstance(result, bool):
            return Verdict(result, None, "user-accepted" if result else "user-rejected")
        raise TypeError(f"verifier {self.name!r} returned {type(result).__name__}, not a Verdict or bool")

    def __call__(self, response: str, ground_truth: str) -> Verdict:
        from justrl.verifiers.pool import run_checked

        return run_checked(self, response, ground_truth)


def check_known(**names: str) -> None:
    """Refuse, in one line, any of ``names`` (a recipe field -> a verifier name) that no verifier has.

    The recipe cannot check its own verifier names (it sits below this wing, and verifiers can be
    registered at run time), so each engine calls this before it touches a run folder.
    """
    problems = []
    for field, name in names.items():
        try:
            check_name(name)
        except ConfigError as exc:
            problems.append(f"{field}: {exc}" if ":" in str(name) else
                            f"{field} must be one of {', '.join(known_verifiers())}, or a "
                            f"module:factory of your own (got {name!r})")
    if problems:
        raise RecipeError("invalid recipe: " + "; ".join(problems))
