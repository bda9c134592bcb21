"""Resume a paused process at a deadline, whatever happens to the run that paused it.

    python -I watchdog.py PID START_TIME DEADLINE

``PID`` is the process to resume; ``START_TIME`` its start time (field 22 of
``/proc/PID/stat``, in clock ticks since boot), so a pid that was reused by another
process is never signalled; ``DEADLINE`` a `time.monotonic` value (the machine-wide
``CLOCK_MONOTONIC``, the same in every process). The watchdog prints ``armed`` once it
watches the process, waits until the deadline (or until the process exits), then sends
it SIGCONT if it is still the same process. Terminating the watchdog stands it down.

The local process driver starts it detached (a session of its own) before it stops a
process, so a paused process resumes by itself even if the runner is killed with
SIGKILL. It uses the standard library only and is run by path, not imported.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time

EXIT_RESUMED = 0
EXIT_GONE = 1  # the process exited or its pid belongs to another process now
EXIT_USAGE = 2


def start_time(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks since boot, None if there is none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()  # after "(comm)", which may hold spaces
    try:
        return int(fields[19])  # field 22 counted from 1, i.e. the 20th after comm
    except (IndexError, ValueError):
        return None


def open_process(pid: int, expected: int) -> int | None:
    """A pidfd for ``pid`` if it is still the process that started at ``expected``.

    Returns -1 where pidfds are not available (the pid and start time are used instead).
    """
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    except (OSError, AttributeError):
        pidfd = -1
    if start_time(pid) != expected:  # checked after opening: the pidfd is that very process
        if pidfd >= 0:
            os.close(pidfd)
        return None
    return pidfd


def wait_for_exit(pid: int, expected: int, pidfd: int, deadline: float) -> bool:
    """Wait until ``deadline``; True if the process exited before it."""
    while (remaining := deadline - time.monotonic()) > 0:
        if pidfd >= 0:
            readable, _, _ = select.select([pidfd], [], [], remaining)
            if readable:
                return True
        else:
            time.sleep(min(remaining, 0.2))
            if start_time(pid) != expected:
                return True
    return False


def resume(pid: int, expected: int, pidfd: int) -> bool:
    """Send SIGCONT to the process; False if it is gone."""
    try:
        if pidfd >= 0:
            signal.pidfd_send_signal(pidfd, signal.SIGCONT)
        elif start_time(pid) == expected:
            os.kill(pid, signal.SIGCONT)
        else:
            return False
    except ProcessLookupError:
        return False
    return True


def main(argv: list[str]) -> int:
    try:
        pid, expected, deadline = int(argv[0]), int(argv[1]), float(argv[2])
    except (IndexError, ValueError):
        print("usage: watchdog.py PID START_TIME DEADLINE", file=sys.stderr)
        return EXIT_USAGE
    pidfd = open_process(pid, expected)
    if pidfd is None:
        print("gone", flush=True)
        return EXIT_GONE
    print("armed", flush=True)
    try:
        if wait_for_exit(pid, expected, pidfd, deadline):
            return EXIT_GONE
        return EXIT_RESUMED if resume(pid, expected, pidfd) else EXIT_GONE
    finally:
        if pidfd >= 0:
            os.close(pidfd)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
