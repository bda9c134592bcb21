"""Detached watchdogs: helper processes that undo a fault at its deadline if nobody else does.

A fault whose target has no time limit of its own (a paused process, a toxic on a real
Toxiproxy, a paused or stopped container) is bounded by a watchdog. It runs in a session
of its own, so it outlives the runner even when that is killed with SIGKILL; it prints one
line (``armed`` once it is watching) and, at the deadline, restores the target. Removing
the fault stands the watchdog down (SIGTERM). The watchdog's pid and start time go into the
fault's handle, so another process (a restarted control plane) can stand it down too.

Two scripts are run this way, by path and with the standard library only: `watchdog`
(SIGCONT to a process) and `restore_watchdog` (HTTP requests to an API).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chaos_service.experiments.faults.base import FaultError
from chaos_service.experiments.faults.watchdog import start_time

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
PROCESS_WATCHDOG = Path(__file__).with_name("watchdog.py")
RESTORE_WATCHDOG = Path(__file__).with_name("restore_watchdog.py")


class Watchdogs:
    """The watchdogs one driver started, so it can stand them down and reap them."""

    def __init__(self) -> None:
        self._started: dict[int, subprocess.Popen[bytes]] = {}

    async def start(
        self, script: Path, arguments: list[str], what: str, stdin: bytes = b"", refusals: Mapping[str, str] = {}
    ) -> dict[str, Any]:
        """Start ``script`` and wait for its first line; the handle entries that name it.

        ``refusals`` maps a first line other than ``armed`` to what it means, for the message.

        Raises:
            FaultError: it did not start, or its first line was not ``armed`` (the line is
                in the message; the watchdog is stood down).
        """
        command = [sys.executable, "-I", str(script), *arguments]
        try:
            watchdog = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                cwd="/",
            )
        except OSError as exc:
            raise FaultError(f"{what}: cannot start the watchdog that bounds it: {exc}") from None
        self._started[watchdog.pid] = watchdog
        handle: dict[str, Any] = {"watchdog_pid": watchdog.pid, "watchdog_start_time": start_time(watchdog.pid)}
        assert watchdog.stdin is not None and watchdog.stdout is not None
        try:
            line = await asyncio.wait_for(asyncio.to_thread(_hand_over, watchdog, stdin), START_TIMEOUT)
        except BaseException as exc:  # timed out or cancelled: no fault without its watchdog
            watchdog.kill()  # ends the read with end of file
            await self.stand_down(handle)
            if isinstance(exc, TimeoutError):
                raise FaultError(f"{what}: the watchdog that bounds it did not start") from None
            raise
        if line != "armed":
            await self.stand_down(handle)
            if line in refusals:
                raise FaultError(f"{what}: {refusals[line]}")
            raise FaultError(f"{what}: the watchdog that bounds it did not start ({line or 'no answer'})")
        return handle

    async def stand_down(self, handle: dict[str, Any]) -> None:
        """Stop the watchdog named in ``handle``: it must not restore anything later. Gone is fine."""
        pid = handle.get("watchdog_pid")
        if not isinstance(pid, int):
            return
        watchdog = self._started.pop(pid, None)
        if watchdog is not None:  # ours: terminate and reap it
            if watchdog.poll() is None:
                watchdog.terminate()
            try:
                await asyncio.to_thread(watchdog.wait, STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                watchdog.kill()
                await asyncio.to_thread(watchdog.wait)
            return
        expected = handle.get("watchdog_start_time")  # started by another driver or process
        if expected is not None and start_time(pid) == expected:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


def _hand_over(watchdog: subprocess.Popen[bytes], stdin: bytes) -> str:
    """Write ``stdin`` to the watchdog, close it, and read its first line."""
    assert watchdog.stdin is not None and watchdog.stdout is not None
    try:
        with contextlib.suppress(BrokenPipeError):
            watchdog.stdin.write(stdin)
        with contextlib.suppress(BrokenPipeError):
            watchdog.stdin.close()
        return watchdog.stdout.readline().decode("utf-8", "replace").strip()
    finally:
        watchdog.stdout.close()
