"""A bounded verl launch: the launch script run under a time limit and a stall limit.

verl's trainer can wait forever (a failed weight sync left it waiting with its Ray cluster up).
:func:`run_bounded` runs the launch script in a session of its own, with a marker in its
environment that every process it starts inherits (the Ray head, raylets and workers included);
when the run exceeds ``timeout_s``, or its log has not grown for ``stall_s``, every process
carrying that marker is stopped (SIGTERM, then SIGKILL) and :class:`VerlLaunchError` says why.
Only this launch's own processes are touched: they are found by the marker, never by name.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from justrl.errors import TrainingError

MARKER = "JUSTRL_VERL_LAUNCH"


class VerlLaunchError(TrainingError):
    """The verl launch ran past its limits and was stopped."""


@dataclass(frozen=True)
class Limits:
    timeout_s: float | None = None
    """Wall-clock limit of the whole launch (None: none)."""
    stall_s: float | None = None
    """Limit on the time the log may go without growing (None: none)."""
    poll_s: float = 2.0


def processes_marked(token: str) -> list[int]:
    """Ids of the processes whose environment carries ``MARKER=token`` (this user's, readable ones)."""
    needle = f"{MARKER}={token}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


_RAY_SESSION = re.compile(r"session_\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_\d+_\d+")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def ray_sessions(pids: list[int]) -> set[str]:
    """The Ray sessions (``session_<date>_<time>_<pid>``) these processes run in."""
    return {m for pid in pids for m in _RAY_SESSION.findall(_cmdline(pid))}


def processes_in_sessions(sessions: set[str]) -> list[int]:
    """Processes of those Ray sessions (Ray's agents start with an environment of their own)."""
    if not sessions:
        return []
    return [int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit()
            and int(e.name) != os.getpid() and any(s in _cmdline(int(e.name)) for s in sessions)]


def _launch_processes(token: str, sessions: set[str]) -> list[int]:
    return sorted(set(processes_marked(token)) | set(processes_in_sessions(sessions)))


def stop_marked(token: str, grace_s: float = 10.0) -> int:
    """SIGTERM every process of the launch (its marker, its Ray sessions), SIGKILL what is left
    after ``grace_s``; returns how many there were."""
    pids = processes_marked(token)
    sessions = ray_sessions(pids)
    pids = _launch_processes(token, sessions)
    _signal(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _launch_processes(token, sessions):
        time.sleep(0.5)
    _signal(_launch_processes(token, sessions), signal.SIGKILL)
    return len(pids)


def _signal(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(OSError):  # gone already
            os.kill(pid, sig)


def processes_marked_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _last_line(log_file: Path) -> str:
    try:
        with log_file.open("rb") as handle:
            handle.seek(max(0, log_file.stat().st_size - 4096))
            lines = [ln for ln in handle.read().decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1].strip()[:200] if lines else ""


def run_bounded(argv: list[str], log_file: Path, limits: Limits, env: dict[str, str] | None = None) -> int:
    """Run ``argv``; its exit status, or :class:`VerlLaunchError` once it passes ``limits``."""
    token = uuid.uuid4().hex
    child_env = {**os.environ, **(env or {}), MARKER: token}
    start = time.monotonic()
    process = subprocess.Popen(argv, env=child_env, start_new_session=True)
    size, grew_at = -1, start
    reason = ""
    try:
        while True:
            try:
                return_code = process.wait(timeout=limits.poll_s)
                stop_marked(token, grace_s=5.0)  # what the run left behind (a Ray process or two)
                return return_code
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            current = log_file.stat().st_size if log_file.exists() else 0
            if current != size:
                size, grew_at = current, now
            if limits.timeout_s is not None and now - start > limits.timeout_s:
                reason = f"ran past its time limit ({limits.timeout_s:.0f} s)"
            elif limits.stall_s is not None and now - grew_at > limits.stall_s:
                reason = f"wrote nothing to {log_file.name} for {limits.stall_s:.0f} s (hung)"
            if reason:
                break
    except KeyboardInterrupt:
        reason = "was interrupted"
    finally:
        if process.poll() is None or reason:
            stop_marked(token)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    last = _last_line(log_file)
    raise VerlLaunchError(
        f"verl launch {reason}; stopped it and its Ray processes"
        + (f"; last line of {log_file}: {last}" if last else "")
    )
