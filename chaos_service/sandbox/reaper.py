"""Stops a sandbox's processes when the process that started it dies without stopping them.

The sandbox starts ``python -m chaos_service.sandbox.reaper`` in a session of its own, tells it
which processes it started (one JSON line: name → pid) and keeps the write end of its stdin.
However the owner ends — even by SIGKILL — the kernel closes that pipe. If the owner said
``stopped`` first, the reaper just exits; otherwise it kills what is left and removes the
private servers' data (`kill_leftovers`).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from typing import IO

STOPPED = "stopped"


class Reaper:
    """The owner's side: start it, tell it the processes, tell it when they were stopped."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "chaos_service.sandbox.reaper"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # a Ctrl-C to the owner's process group must not reach it
        )

    def watch(self, processes: dict[str, int]) -> None:
        self._say(json.dumps(processes))

    def stopped(self) -> None:
        """The processes are stopped: the reaper exits without touching anything."""
        self._say(STOPPED)
        assert self._proc.stdin is not None
        with contextlib.suppress(OSError):
            self._proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=5)

    def _say(self, line: str) -> None:
        assert self._proc.stdin is not None
        with contextlib.suppress(OSError):
            self._proc.stdin.write(line + "\n")
            self._proc.stdin.flush()


def reap(lines: IO[str]) -> list[str]:
    """Read the owner's messages until the pipe closes; kill the processes unless told ``stopped``."""
    from chaos_service.sandbox.supervisor import kill_leftovers

    processes: dict[str, int] = {}
    for line in lines:
        if line.strip() == STOPPED:
            return []
        with contextlib.suppress(ValueError):
            processes.update({str(name): int(pid) for name, pid in json.loads(line).items()})
    return kill_leftovers(processes)


if __name__ == "__main__":
    reap(sys.stdin)
