"""Writes that a crash cannot leave half-done, and one writer per folder.

- :func:`atomic_write_text` / :func:`atomic_write_json`: a temporary file in the same folder,
  flushed to disk, then renamed over the target; a reader sees the old file or the new one.
- :func:`sweep_staging`: what a killed writer left aside (named with its pid) deleted at the next
  start, once that pid is gone.
- :func:`publish_folder`: a folder written aside is put in place of the target in one step; where
  the target exists the two are exchanged atomically (Linux ``renameat2(RENAME_EXCHANGE)``), so
  there is no moment at which neither exists.
- :func:`write_failure`: a library's write error that is an operating-system error in disguise
  (torch's ``inline_container.cc``, safetensors' ``IoError``) as the :class:`OSError` it stands for.
- :class:`FolderLock`: an advisory exclusive lock on a run or evaluation folder, held for the life
  of the process and released by the operating system when the process dies (even by SIGKILL).
- :func:`refuse_run_folder` / :func:`refuse_eval_folder`: which command a folder belongs to. Both
  write ``summary.json`` (and more) at the top of their folder, so ``train --run-dir`` on an
  evaluation folder, or ``eval --out`` on a run folder, would overwrite the other's files; each kind
  is recognised by the file its command writes first, and each command refuses the other's folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import math
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from justrl import logs
from justrl.errors import ConfigError, FolderInUseError

log = logs.get(__name__)

LOCK_FILE = ".lock"


def fsync_path(path: str | Path) -> None:
    """Flush a file's or a folder's entry to disk (a no-op where the platform cannot)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def staging_file(path: str | Path) -> Path:
    """The sibling a file is written into before it is renamed over ``path``: ``.NAME.PID.tmp``
    (the writer's pid, so :func:`sweep_staging` can tell a dead writer's leftover from a live one's)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` so that a crash leaves either the old file or the new one."""
    path = Path(path)
    tmp = staging_file(path)
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:  # a full disk, a size limit, a signal: no staging file stays behind
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_path(path.parent)
    return path


DISGUISED_WRITE_ERRORS = ("PytorchStreamWriter", "inline_container", "IoError", "os error")
"""Words by which a library's own exception reveals a failed write underneath (torch's zip writer
never says which: no space, a size limit or an I/O error)."""


def write_failure(path: str | Path, exc: BaseException) -> OSError | None:
    """The :class:`OSError` behind ``exc``, a write to ``path`` that failed (None where ``exc`` is not
    a write failure): the errno where the library kept it, else the cause found by looking (free
    space on the file system, the process's file-size limit)."""
    import errno
    import resource

    if isinstance(exc, OSError):
        return exc
    text = str(exc)
    if not any(word in text for word in DISGUISED_WRITE_ERRORS):
        return None
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free if probe.exists() else None
    size_limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if free is not None and free < 1 << 20:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    if size_limit != resource.RLIM_INFINITY:
        return OSError(errno.EFBIG, f"{os.strerror(errno.EFBIG)} (the file-size limit is {size_limit} bytes)",
                       str(path))
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return OSError(errno.EIO, f"write failed: {first}", str(path))


def os_error_line(exc: OSError) -> str:
    """An :class:`OSError` as one line: the path(s) and the cause (``No space left on device``)."""
    cause = exc.strerror or str(exc) or type(exc).__name__
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    if not paths:
        return f"{cause} ({type(exc).__name__})" if exc.strerror else cause
    return f"{' -> '.join(paths)}: {cause}"


def finite_json(data: Any) -> Any:
    """``data`` with every NaN or infinity replaced by None (JSON has no NaN); a dict that held one
    gains ``"non_finite": [its keys]``, the reason the value is null."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, (list, tuple)):
        return [finite_json(v) for v in data]
    if isinstance(data, dict):
        out = {k: finite_json(v) for k, v in data.items()}
        bad = [k for k, v in data.items() if isinstance(v, float) and not math.isfinite(v)]
        if bad:
            out["non_finite"] = sorted({*out.get("non_finite", []), *map(str, bad)})
        return out
    return data


def json_text(data: Any, indent: int | None = 1) -> str:
    """``data`` as strict JSON (:func:`finite_json`: no ``NaN`` a JSON reader would refuse)."""
    return json.dumps(finite_json(data), indent=indent, allow_nan=False)


def atomic_write_json(path: str | Path, data: Any, indent: int | None = 1) -> Path:
    return atomic_write_text(path, json_text(data, indent) + "\n")


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2`` with ``RENAME_EXCHANGE``); False if unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return result == 0


def publish_folder(staged: str | Path, target: str | Path) -> Path:
    """Put the folder ``staged`` (complete, on the same file system) in place of ``target``.

    Where ``target`` exists, the two are exchanged in one step and the old content is then deleted,
    so a reader (or a crash) always finds a complete ``target``. Where the platform cannot exchange,
    the old folder is moved aside first and deleted after the new one is in (a short window).
    """
    staged, target = Path(staged), Path(target)
    fsync_path(staged)
    if not target.exists():
        os.rename(staged, target)
    elif _exchange(staged, target):
        shutil.rmtree(staged)  # now holds the old content
    else:
        aside = target.with_name(f".{target.name}.old.{os.getpid()}")
        os.rename(target, aside)
        os.rename(staged, target)
        shutil.rmtree(aside, ignore_errors=True)
    fsync_path(target.parent)
    return target


STAGING_NAMES = (re.compile(r"^\.(.+)\.(\d+)\.tmp$"), re.compile(r"^\.tmp-(.+)-(\d+)$"),
                 re.compile(r"^\.(.+)\.old\.(\d+)$"))
"""Names of what :func:`staging_file`, :func:`staging_path` and :func:`publish_folder` write aside,
each ending in the writer's pid."""


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (this one included; one we may not signal counts as alive)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return pid > 0
    return True


def sweep_staging(folder: str | Path, depth: int = 2, only: str | None = None) -> list[Path]:
    """Delete what killed writers left aside in ``folder`` and its subfolders (``depth`` levels):
    staging files and folders whose writer's pid is no longer alive (``only``: those of that target
    name alone, for a folder justrl does not own). A SIGKILL (or a machine that went down) between
    writing aside and renaming leaves them; the target itself was never touched. Each deletion is
    logged; returns what was deleted; entries it cannot delete are left."""
    folder = Path(folder)
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = next((m for m in (n.match(entry.name) for n in STAGING_NAMES) if m), None)
        if match and (only is None or match.group(1) == only) and not pid_alive(int(match.group(2))):
            try:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
            except OSError:
                continue
            log.info("deleted %s, left by a writer that was killed", entry)
            removed.append(entry)
        elif depth > 0 and entry.is_dir() and not entry.is_symlink():
            removed += sweep_staging(entry, depth - 1, only)
    return removed


def staging_path(target: str | Path) -> Path:
    """A fresh, empty sibling of ``target`` to write a folder into before :func:`publish_folder`."""
    target = Path(target)
    staged = target.with_name(f".tmp-{target.name}-{os.getpid()}")
    shutil.rmtree(staged, ignore_errors=True)
    return staged


class FolderLock:
    """An exclusive, advisory lock on ``folder`` (the file ``folder/.lock`` holds the owner's pid).

    ``acquire`` refuses with :class:`FolderInUseError` naming the holder's pid when another live
    process holds it. The operating system drops the lock when the holder exits or is killed, so a
    crash never leaves a folder locked. On platforms without ``fcntl`` the lock is a no-op.
    """

    def __init__(self, folder: str | Path, what: str = "folder") -> None:
        self.folder = Path(folder)
        self.what = what
        self._handle: Any = None

    def acquire(self) -> FolderLock:
        try:
            import fcntl
        except ImportError:  # not POSIX
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        handle = open(self.folder / LOCK_FILE, "a+", encoding="utf-8")  # noqa: SIM115 (held open)
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise FolderInUseError(
                f"{self.folder} is in use by another process (pid {holder}): one {self.what} writes "
                "to a folder at a time; wait for it to end, or choose another folder") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle
        return self

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the descriptor drops the flock
            self._handle = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


# Which command a folder belongs to
EVAL_MARKERS = ("eval_config.json",)
"""Files only an evaluation folder has."""
RUN_MARKERS = ("recipe.yaml", "train_state.json", "checkpoints", "metrics.jsonl")
"""Files or folders only a training run's folder has."""


def _found(folder: Path, markers: tuple[str, ...]) -> str | None:
    return next((m for m in markers if (folder / m).exists()), None)


def refuse_run_folder(folder: str | Path) -> None:
    """Refuse ``folder`` as an evaluation's output when it holds a training run."""
    marker = _found(Path(folder), RUN_MARKERS)
    if marker:
        raise ConfigError(f"{folder} is a training run's folder (it has {marker}); "
                               "evaluate into another --out (e.g. the default runs/eval/<run name>-final)")


def refuse_eval_folder(folder: str | Path) -> None:
    """Refuse ``folder`` as a training run's folder when it holds an evaluation."""
    marker = _found(Path(folder), EVAL_MARKERS)
    if marker:
        raise ConfigError(f"{folder} is an evaluation's folder (it has {marker}); "
                               "give train another --run-dir")
