"""The one error family of justrl.

Every error a user can cause (a bad setting, a missing file, a folder in use, a model that does not
load) is a :class:`JustrlError`; the CLI prints its message as one line on stderr and exits with 2.
Anything else is a bug and keeps its traceback. Each subclass also derives from the built-in
exception a Python caller would expect (``ValueError`` for bad input, ``RuntimeError`` for a run
that cannot go on, ``ImportError`` for a missing optional dependency), so ``except ValueError``
keeps working.
"""

from __future__ import annotations


class JustrlError(Exception):
    """A user-facing error: the message says what is wrong and what to do; no traceback needed."""


class ConfigError(JustrlError, ValueError):
    """A setting that cannot be used: unknown key, wrong type, out of range, impossible combination."""


class RecipeError(ConfigError):
    """A recipe that cannot be built (unknown key, wrong type, impossible combination)."""


class VerlConfigError(RecipeError):
    """Overrides that verl's own config would refuse or silently ignore."""


class DataError(JustrlError, ValueError):
    """A data file that cannot be read as problems: missing, empty, corrupt, or without answers."""


class ProblemDataError(DataError):
    """A problem file or row that cannot be used (the message names the file, row and field)."""


class BenchmarkDataError(DataError):
    """A benchmark file that is missing, unreadable, or does not match its checksum."""


class ModelLoadError(JustrlError, ValueError):
    """A model or tokenizer that cannot be loaded from the given path or hub id."""


class TrainingError(JustrlError, RuntimeError):
    """A training run that cannot start or cannot go on."""


class EvalError(JustrlError, RuntimeError):
    """An evaluation that cannot start or cannot go on."""


class WorkerPoolError(JustrlError, RuntimeError):
    """Ray workers that cannot be started or died beyond the retries allowed."""


class FolderInUseError(JustrlError, RuntimeError):
    """A run or evaluation folder another live process is writing to."""


class BackendUnavailable(JustrlError, ImportError):
    """An optional dependency (vLLM, Ray, verl, ...) that is not installed or not usable here."""


class ContextLengthError(ConfigError):
    """A prompt plus its token budget that does not fit the model's context window."""


class StopSignal(KeyboardInterrupt):
    """A second SIGINT, SIGTERM or SIGHUP during training: abort at once (no checkpoint is written;
    the last complete one stays). The CLI exits with ``128 + signum``, the signal's conventional code."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
