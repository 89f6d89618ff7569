"""The verifiers by name: what recipes (``verifier=``) and the CLI (``--verifier``) refer to."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from justrl.errors import ConfigError, RecipeError
from justrl.verifiers.base import Verifier
from justrl.verifiers.lenient import Lenient
from justrl.verifiers.release_math_verify import ReleaseMathVerify
from justrl.verifiers.release_rule import ReleaseRule
from justrl.verifiers.staged import JustrlEval
from justrl.verifiers.strict import DapoStrict

_FACTORIES: dict[str, Callable[..., Any]] = {
    "dapo-strict": DapoStrict,
    "lenient": Lenient,
    "release-rule": ReleaseRule,
    "justrl-eval": JustrlEval,
    "release-math-verify": ReleaseMathVerify,
}


def known_verifiers() -> list[str]:
    return list(_FACTORIES)


def get(name: str, **options: Any) -> Verifier:
    """The verifier called ``name``, built with ``options`` (e.g. ``timeout_s=2.0``).

    Unknown names raise :class:`~justrl.errors.ConfigError` (a ``ValueError``) listing the known
    ones.
    """
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ConfigError(
            f"unknown verifier {name!r}; known verifiers: {', '.join(known_verifiers())}"
        ) from None
    return factory(**options)


def check_known(**names: str) -> None:
    """Refuse, in one line, any of ``names`` (a recipe field -> a verifier name) that no verifier has.

    The recipe cannot check its own verifier names (it sits below this wing, and verifiers can be
    added at run time), so each engine calls this before it touches a run folder.
    """
    problems = [f"{field} must be one of {', '.join(known_verifiers())} (got {name!r})"
                for field, name in names.items() if name not in _FACTORIES]
    if problems:
        raise RecipeError("invalid recipe: " + "; ".join(problems))
