"""The watchdog over a verl launch: a hung launch is stopped, with every process it started."""

from __future__ import annotations

import time

import pytest

from justrl.verl_engine import watchdog


def test_a_stalled_launch_is_stopped_with_its_children(tmp_path) -> None:
    log = tmp_path / "verl.log"
    pid_file = tmp_path / "child.pid"
    # a launch that writes one line, starts a detached grandchild, then hangs
    script = f"echo started >> {log}; (setsid sleep 300 & echo $! > {pid_file}); sleep 300"
    start = time.monotonic()
    with pytest.raises(watchdog.VerlLaunchError) as info:
        watchdog.run_bounded(["bash", "-c", script], log, watchdog.Limits(stall_s=3, poll_s=0.5))
    assert time.monotonic() - start < 120
    message = str(info.value)
    assert "hung" in message and "last line" in message and "started" in message
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and watchdog.processes_marked_alive(child):
        time.sleep(0.2)
    assert not watchdog.processes_marked_alive(child)


def test_a_launch_within_its_limits_returns_its_status(tmp_path) -> None:
    code = watchdog.run_bounded(["bash", "-c", "exit 3"], tmp_path / "verl.log", watchdog.Limits(timeout_s=60))
    assert code == 3


def test_a_launch_past_its_time_limit_is_stopped(tmp_path) -> None:
    with pytest.raises(watchdog.VerlLaunchError, match="time limit"):
        watchdog.run_bounded(["bash", "-c", "while true; do echo x; sleep 0.2; done >> " + str(tmp_path / "l")],
                             tmp_path / "l", watchdog.Limits(timeout_s=2, poll_s=0.5))
