"""The local process driver on throwaway child processes: pause, the watchdog, kill, errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos_service.experiments.faults import FaultTargetError, LocalProcessDriver
from chaos_service.experiments.faults.process import ProcessInfo
from tests.experiments.faults.support import await_exit, environment, fault, run

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def victim() -> Iterator[subprocess.Popen[bytes]]:
    """A child process to pause and kill (killed and reaped after the test)."""
    child = subprocess.Popen(["sleep", "60"])
    yield child
    child.kill()
    child.wait()


def _driver(**processes: int) -> LocalProcessDriver:
    return LocalProcessDriver(environment("http://127.0.0.1:9", processes=processes))


def _await_child(pid: int, event: int, timeout: float = 10.0) -> None:
    """Block until child ``pid`` reports ``event`` (os.WSTOPPED, os.WCONTINUED, os.WEXITED | os.WNOWAIT)."""
    reported: list[object] = []
    waiter = threading.Thread(target=lambda: reported.append(os.waitid(os.P_PID, pid, event)), daemon=True)
    waiter.start()
    waiter.join(timeout)
    assert reported, f"child {pid} did not report event {event} within {timeout} s"


def test_pause_stops_the_process_and_remove_resumes_it(victim: subprocess.Popen[bytes]) -> None:
    driver = _driver(worker=victim.pid)
    plan = fault("pause", "worker")
    assert driver.handles(plan)
    run(driver.check(plan))
    applied = run(driver.apply(plan, ttl=30))
    assert applied.handle["signal"] == "SIGSTOP"
    watchdog = applied.handle["watchdog_pid"]
    assert os.getsid(watchdog) == watchdog  # detached: a session of its own
    _await_child(victim.pid, os.WSTOPPED)
    assert run(driver.verify(applied)) == f"pid {victim.pid} stopped (state T)"
    with pytest.raises(FaultTargetError, match="is already stopped"):
        run(driver.check(plan))

    run(driver.remove(applied))
    _await_child(victim.pid, os.WCONTINUED)
    assert run(driver.verify(applied)) is None
    assert ProcessInfo.read(watchdog) is None  # stood down and reaped
    run(driver.remove(applied))  # twice: fine
    assert victim.poll() is None


def test_the_watchdog_resumes_a_paused_process_when_the_runner_was_killed(
    victim: subprocess.Popen[bytes],
) -> None:
    ttl = 1.5
    runner_code = (
        "import asyncio, json, sys\n"
        "from chaos_service.experiments.faults import LocalProcessDriver\n"
        "from tests.experiments.faults.support import environment, fault\n"
        "env = environment('http://127.0.0.1:9', processes={'worker': int(sys.argv[1])})\n"
        "driver = LocalProcessDriver(env)\n"
        "applied = asyncio.run(driver.apply(fault('pause', 'worker'), ttl=float(sys.argv[2])))\n"
        "print(json.dumps(applied.handle), flush=True)\n"
        "sys.stdin.read()\n"
    )
    started = time.monotonic()
    runner = subprocess.Popen(
        [sys.executable, "-c", runner_code, str(victim.pid), str(ttl)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    assert runner.stdout is not None
    handle = json.loads(runner.stdout.readline())
    runner.kill()  # SIGKILL: the runner never removes its fault
    runner.wait()
    runner.stdout.close()
    assert runner.stdin is not None
    runner.stdin.close()

    _await_child(victim.pid, os.WSTOPPED)
    _await_child(victim.pid, os.WCONTINUED)
    assert time.monotonic() - started >= ttl
    info = ProcessInfo.read(victim.pid)
    assert info is not None and not info.stopped
    await_exit(handle["watchdog_pid"])  # its job done, the watchdog exits


def test_a_paused_process_that_exits_ends_its_watchdog_and_removal_is_still_fine(
    victim: subprocess.Popen[bytes],
) -> None:
    driver = _driver(worker=victim.pid)
    applied = run(driver.apply(fault("pause", "worker"), ttl=60))
    _await_child(victim.pid, os.WSTOPPED)
    victim.kill()
    victim.wait()
    await_exit(applied.handle["watchdog_pid"])  # it does not wait out the ttl for a process that is gone
    assert run(driver.verify(applied)) is None
    run(driver.remove(applied))


def test_kill_makes_the_process_disappear_and_cannot_be_removed(victim: subprocess.Popen[bytes]) -> None:
    driver = _driver(worker=victim.pid)
    applied = run(driver.apply(fault("kill", "worker"), ttl=30))
    assert applied.handle["signal"] == "SIGKILL"
    _await_child(victim.pid, os.WEXITED | os.WNOWAIT)
    evidence = run(driver.verify(applied))
    assert evidence is not None and evidence.startswith(f"pid {victim.pid} was killed")
    assert victim.wait(timeout=5) == -signal.SIGKILL
    assert run(driver.verify(applied)) == f"pid {victim.pid} is gone"
    run(driver.remove(applied))  # irreversible: a no-op
    with pytest.raises(FaultTargetError, match=rf"process 'worker' \(pid {victim.pid}\) is not running"):
        run(driver.check(fault("kill", "worker")))


def test_unknown_and_unsafe_processes_are_clear_check_errors(victim: subprocess.Popen[bytes]) -> None:
    driver = _driver(worker=victim.pid, me=os.getpid(), init=1)
    with pytest.raises(
        FaultTargetError, match=r"unknown process 'db' \(the environment's processes: init, me, worker\)"
    ):
        run(driver.check(fault("pause", "db")))
    for name in ("me", "init"):
        with pytest.raises(FaultTargetError, match="refusing to signal"):
            run(driver.check(fault("kill", name)))
    with pytest.raises(FaultTargetError, match="pause takes no attributes"):
        run(driver.check(fault("pause", "worker", attributes={"signal": "HUP"})))


def test_a_pid_that_now_belongs_to_another_process_is_refused(victim: subprocess.Popen[bytes]) -> None:
    driver = _driver(worker=victim.pid)
    run(driver.check(fault("pause", "worker")))
    with subprocess.Popen(["sleep", "60"]) as other:
        driver.environment.processes["worker"] = other.pid  # as if the pid had been reused
        with pytest.raises(FaultTargetError, match=f"pid {other.pid} no longer belongs to process 'worker'"):
            run(driver.apply(fault("pause", "worker"), ttl=30))
        other.kill()
    assert ProcessInfo.read(victim.pid) is not None and victim.poll() is None
