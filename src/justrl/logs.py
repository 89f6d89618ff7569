"""justrl's messages go through :mod:`logging` under the ``justrl`` logger.

A library user silences or redirects them as with any library (``logging.getLogger("justrl")``).
The CLI calls :func:`setup` once: rich's handler on a terminal, plain lines otherwise, at INFO
(``--quiet``: WARNING; ``--verbose``: DEBUG, and transformers' own warnings and progress bars are
let through). Progress bars draw on :func:`console`, the same console the handler writes to, so a
message printed during a bar appears above it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = "justrl"
_state: dict[str, Any] = {"console": None, "progress": True, "verbose": False}


def get(name: str) -> logging.Logger:
    """The logger of a justrl module (pass ``__name__``)."""
    return logging.getLogger(name if name.startswith(ROOT) else f"{ROOT}.{name}")


def console() -> Any:
    """The rich console (on stderr) that the log handler and the progress bars share."""
    if _state["console"] is None:
        from rich.console import Console

        _state["console"] = Console(stderr=True)
    return _state["console"]


def progress_enabled() -> bool:
    """Whether progress bars should be drawn (off with ``--quiet`` or when stderr is not a terminal)."""
    return bool(_state["progress"]) and console().is_terminal


def setup(verbosity: int = 0) -> None:
    """Configure the ``justrl`` logger for a command-line run: -1 quiet, 0 normal, 1 verbose."""
    logger = logging.getLogger(ROOT)
    for handler in list(logger.handlers):
        if getattr(handler, "_justrl_console", False):
            logger.removeHandler(handler)
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    if console().is_terminal:
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(console=console(), show_time=False, show_path=False,
                                               markup=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
    handler._justrl_console = True  # type: ignore[attr-defined]
    handler.setLevel(level)  # its own level: a log file (to_file) may lower the logger's
    logger.addHandler(handler)
    logger.setLevel(level)
    # The command line owns its output: libraries it imports (verl, Ray) configure the root logger,
    # which would print every message a second time. A library user keeps propagation.
    logger.propagate = False
    _state["progress"] = verbosity >= 0
    _state["verbose"] = verbosity > 0
    quiet_transformers()


def reset() -> None:
    """Undo :func:`setup`: the ``justrl`` logger as a library leaves it (tests call this)."""
    logger = logging.getLogger(ROOT)
    for handler in list(logger.handlers):
        if getattr(handler, "_justrl_console", False):
            logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)
    logger.propagate = True
    _state.update(progress=True, verbose=False)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the message (pytest and others swap it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:  # StreamHandler.__init__ assigns it; ignored
        pass


def quiet_transformers() -> None:
    """Keep transformers' and huggingface_hub's warnings and progress bars out of our output,
    unless the CLI runs with ``--verbose``.

    Cheap to call: the environment variables cover a later import; the libraries are only told
    directly when they are already imported (importing transformers takes seconds).
    """
    if _state["verbose"]:
        return
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:
        import transformers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    if "huggingface_hub" in sys.modules:
        import huggingface_hub

        huggingface_hub.utils.disable_progress_bars()


@contextlib.contextmanager
def to_file(path: str | Path, level: int = logging.INFO) -> Iterator[logging.Handler]:
    """Also write the ``justrl`` logger's messages to ``path`` (appending, timestamped) while open."""
    logger = logging.getLogger(ROOT)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    logger.addHandler(handler)
    before = logger.level
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before)
        handler.close()
