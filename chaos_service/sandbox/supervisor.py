"""A running sandbox seen from outside: the directory lock, its processes, and shutting it down.

The process running a sandbox (the supervisor) holds an exclusive lock on ``sandbox.lock`` in the
sandbox directory for as long as the sandbox runs, and writes its pid into it; the lock goes away
with the process, however it ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import shutil
import signal
import time
from pathlib import Path

from chaos_service.errors import InvalidInput

LOCK_FILE = "sandbox.lock"


class AlreadyRunning(InvalidInput):
    """Another sandbox runs in the same directory."""


class DirectoryLock:
    """The exclusive lock on a sandbox directory, held by the process running the sandbox."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock and record our pid in it; `AlreadyRunning` if another process holds it."""
        fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise AlreadyRunning(
                f"a sandbox is already running in {self.directory} (pid {holder or 'unknown'}): stop it with "
                f"`chaos-service sandbox down --dir {self.directory}` or use another --dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def running_pid(directory: Path) -> int | None:
    """The pid of the process running a sandbox in `directory` (0 if unknown), or None if none runs."""
    try:
        fd = os.open(directory / LOCK_FILE, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_pid(fd)
    else:
        return None
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int:
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else 0


def process_alive(pid: int) -> bool:
    """Whether process `pid` exists and has not exited (a zombie counts as exited; a paused one is alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust kill()
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def wait_for_exit(pid: int, timeout: float) -> bool:
    """Wait until process `pid` (not necessarily our child) has exited; False after `timeout` seconds."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except OSError:  # no pidfd support: poll
        deadline = time.monotonic() + timeout
        while process_alive(pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True
    try:
        readable, _, _ = select.select([fd], [], [], timeout)
        return bool(readable) or not process_alive(pid)
    finally:
        os.close(fd)


#: What the command line of each sandbox process contains (to tell it from a process that reused its pid).
_COMMAND_MARKERS = {"postgres": b"postgres", "redis": b"redis-server"}


def is_sandbox_process(name: str, pid: int) -> bool:
    """Whether live process `pid` looks like the sandbox's `name` process (by its command line)."""
    if not process_alive(pid):
        return False
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return _COMMAND_MARKERS.get(name, b"chaos_service") in command


def kill_leftovers(processes: dict[str, int]) -> list[str]:
    """SIGKILL the recorded sandbox processes that are still running, and remove the private servers'
    data; returns the names of the processes killed."""
    killed = []
    for name, pid in processes.items():
        if not is_sandbox_process(name, pid):
            continue
        data_dir = _private_dir(name, pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        killed.append(f"{name} (pid {pid})")
        if data_dir is not None:
            for member in [pid, *_processes_inside(data_dir)]:  # e.g. Postgres backends
                with contextlib.suppress(ProcessLookupError):
                    os.kill(member, signal.SIGKILL)
                wait_for_exit(member, 5.0)
            shutil.rmtree(data_dir, ignore_errors=True)
    return killed


def _private_dir(name: str, pid: int) -> Path | None:
    """The temporary directory of a private Postgres or Redis server (it runs in it, or in data/ below it)."""
    if name not in _COMMAND_MARKERS:
        return None
    try:
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None
    return next((d for d in (cwd, cwd.parent) if d.name.startswith(f"chaos-{name}-")), None)


def _processes_inside(directory: Path) -> list[int]:
    found = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            with contextlib.suppress(OSError):
                if entry.name.isdigit() and Path(os.readlink(f"/proc/{entry.name}/cwd")).is_relative_to(directory):
                    found.append(int(entry.name))
    return found


def shut_down(directory: Path, processes: dict[str, int], timeout: float) -> list[str]:
    """Stop the sandbox in `directory`: SIGTERM its supervisor and wait up to `timeout` s for it (then
    SIGKILL it), and SIGKILL whatever of `processes` outlived it. Returns what happened, for the user."""
    notes = []
    pid = running_pid(directory)
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not wait_for_exit(pid, timeout):
            notes.append(f"the supervisor (pid {pid}) did not stop within {timeout:g} s; killed it")
            with contextlib.suppress(OSError):
                if os.getpgid(pid) == pid:  # started by `up` in a session of its own, with its children
                    os.killpg(pid, signal.SIGKILL)
                else:
                    os.kill(pid, signal.SIGKILL)
            wait_for_exit(pid, timeout)
    if leftovers := kill_leftovers({name: p for name, p in processes.items() if name != "supervisor"}):
        notes.append(f"killed processes left running: {', '.join(leftovers)}")
    return notes
