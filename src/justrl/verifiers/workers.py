"""Verification worker processes: how one starts, serves checks, and dies with its parent.

A worker runs ``verifier.full`` on the items its parent sends, one verdict at a time, so the
parent can kill it the moment one item overruns its bound (:mod:`justrl.verifiers.pool`) -- which
works from any thread, unlike ``signal.alarm``. Where the platform can fork, workers are forked
from a *zygote*: a warmed-up interpreter whose children start in milliseconds with Math-Verify's
parser caches already built. Elsewhere each worker is its own fresh interpreter. Both are started
with ``python -c``, never as a fork of the caller (which may be threaded, or a script whose
``__main__`` must not be re-imported).
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing.connection
import os
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable

from justrl.verifiers.base import Checked, Verdict

DEFAULT_MEMORY_LIMIT_MB = 2048  # address-space cap of a verification worker
START_TIMEOUT_S = 60.0
_IN_WORKER = False  # set in verification workers: run checks inline, the parent bounds them


def in_worker() -> bool:
    """Whether this process is a verification worker (whose parent enforces the time bound)."""
    return _IN_WORKER


def full_safely(verifier: Checked, response: str, ground_truth: str) -> Verdict:
    """``verifier.full``, with the failures of one item turned into a wrong verdict."""
    try:
        return verifier.full(response, ground_truth)
    except MemoryError:
        return Verdict(False, None, "memory-limit")
    except RecursionError:
        return Verdict(False, None, "too-deeply-nested")
    except Exception as exc:  # a verifier bug must not take the batch down
        return Verdict(False, None, f"error: {type(exc).__name__}")


def _limit_memory(megabytes: int) -> None:
    if megabytes <= 0:
        return
    try:
        import resource

        limit = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass


def _worker_setup(memory_limit_mb: int) -> None:
    import signal

    global _IN_WORKER
    _IN_WORKER = True
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    _limit_memory(memory_limit_mb)


def _serve(conn: multiprocessing.connection.Connection) -> None:
    """A verification worker's loop: answers ``(verifier, [(index, response, truth), ...])``
    item by item, until the parent closes the connection."""
    _exit_with_parent()
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        verifier, items = message
        for index, response, truth in items:
            conn.send((index, full_safely(verifier, response, truth)))


def worker_main(fd: int, memory_limit_mb: int) -> None:
    """Entry point of a worker started as its own interpreter (where there is no fork)."""
    _worker_setup(memory_limit_mb)
    _warm_up()
    _serve(multiprocessing.connection.Connection(fd))


def zygote_main(fd: int, memory_limit_mb: int) -> None:
    """Entry point of the zygote: a warmed-up interpreter that forks workers on request.

    Each byte received asks for a worker; the reply is the worker's pid with one end of a
    socket pair to it (``SCM_RIGHTS``). The zygote has one thread, so forking it is safe, and
    its children inherit the imported modules and warm parser caches: a worker starts in
    milliseconds. It exits when the parent closes the control socket (or dies).
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # workers are reaped by the kernel
    control = socket.socket(fileno=fd)
    _warm_up()
    control.sendall(b"R")
    while control.recv(1):
        mine, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            control.close()
            mine.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            _worker_setup(memory_limit_mb)
            try:
                _serve(multiprocessing.connection.Connection(theirs.detach()))
            finally:
                os._exit(0)
        theirs.close()
        socket.send_fds(control, [str(pid).encode()], [mine.fileno()])
        mine.close()
    os._exit(0)


def _exit_with_parent() -> None:
    """Leave as soon as the parent is gone, even in the middle of a long check."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="justrl-parent-watch", daemon=True).start()


_WARM_UPS: list[Callable[[], None]] = []


def register_warm_up(warm_up: Callable[[], None]) -> None:
    """Have every worker run ``warm_up`` once at start, outside any item's time budget.

    Math-Verify's LaTeX parser (ANTLR) builds its prediction tables lazily: a worker's first
    parses of each kind of answer take several times longer than later ones. Each verifier module
    registers its own warm-up when it is imported, so this module imports none of them; a worker
    imports :mod:`justrl.verifiers` (every built-in verifier) before it serves.
    """
    if warm_up not in _WARM_UPS:
        _WARM_UPS.append(warm_up)


def _warm_up() -> None:
    for warm_up in _WARM_UPS:
        with contextlib.suppress(Exception):
            warm_up()


class WorkerDied(RuntimeError):
    """A worker (or the zygote) that exited or never started: the pool replaces it."""


_ENTRY_CODE = ("import sys; import justrl.verifiers; from justrl.verifiers import workers; "
               "workers.{}(int(sys.argv[1]), int(sys.argv[2]))")


def _start_interpreter(entry: str, memory_limit_mb: int) -> tuple[subprocess.Popen[bytes], socket.socket]:
    """``python -c "workers.<entry>(fd, memory_limit_mb)"`` with a socket to it.

    A fresh interpreter, not a fork of the caller: safe from threaded parents, and the caller's
    ``__main__`` is never re-imported.
    """
    parent_sock, child_sock = socket.socketpair()
    env = dict(os.environ)
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    child_fd = child_sock.fileno()
    process = subprocess.Popen(
        [sys.executable, "-c", _ENTRY_CODE.format(entry), str(child_fd), str(memory_limit_mb)],
        pass_fds=(child_fd,),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        env=env,
        close_fds=True,
    )
    child_sock.close()
    return process, parent_sock


class Zygote:
    """The parent's handle on the zygote process (see :func:`zygote_main`)."""

    def __init__(self, memory_limit_mb: int) -> None:
        self.process, self.control = _start_interpreter("zygote_main", memory_limit_mb)
        self.ready = False
        self.lock = threading.Lock()

    def fork_worker(self) -> tuple[int, socket.socket]:
        with self.lock:
            if not self.ready:
                self.control.settimeout(START_TIMEOUT_S)
                if self.control.recv(1) != b"R":
                    raise WorkerDied(f"the verification zygote exited (code {self.process.poll()})")
                self.ready = True
            self.control.settimeout(START_TIMEOUT_S)
            self.control.sendall(b"F")
            message, fds, _, _ = socket.recv_fds(self.control, 32, 1)
            if not message or not fds:
                raise WorkerDied(f"the verification zygote exited (code {self.process.poll()})")
            return int(message), socket.socket(fileno=fds[0])

    def close(self) -> None:
        self.control.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        if self.process.poll() is None:
            self.process.kill()


CAN_FORK = hasattr(os, "fork") and hasattr(socket, "send_fds")


class Worker:
    """One verification worker process and the connection to it.

    Forked by the zygote where the platform can fork, else started as its own interpreter.
    """

    def __init__(self, memory_limit_mb: int, zygote: Zygote | None) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        if zygote is not None:
            self.pid, sock = zygote.fork_worker()
        else:
            self.process, sock = _start_interpreter("worker_main", memory_limit_mb)
            self.pid = self.process.pid
        self.conn = multiprocessing.connection.Connection(sock.detach())
        self.pending: deque[tuple[int, str, str]] = deque()
        self.ready = False  # set when the worker has said "ready"
        self.deadline = time.monotonic() + START_TIMEOUT_S

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def poll_ready(self) -> bool:
        """Whether the worker is ready, reading its "ready" message if it has come (no waiting)."""
        if not self.ready and self.conn.poll(0):
            try:
                self.conn.recv()
            except (EOFError, OSError):
                return False
            self.ready, self.deadline = True, math.inf
        return self.ready

    def send(self, verifier: Checked, items: list[tuple[int, str, str]], timeout_s: float) -> None:
        self.pending.extend(items)
        self.deadline = time.monotonic() + timeout_s
        self.conn.send((verifier, items))

    def kill(self) -> None:
        import signal

        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
        self.conn.close()

