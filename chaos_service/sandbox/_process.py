"""Plumbing for the sandbox datastores: finding binaries, free ports, output watching, shutdown."""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Literal

log = logging.getLogger(__name__)

#: The machine's shared PostgreSQL and Redis ports; sandbox servers never use them.
SHARED_PORTS = frozenset({5432, 6379})

Outcome = Literal["ready", "exited", "timeout"]


def child_env() -> dict[str, str]:
    """The environment for server processes."""
    # LC_ALL=C keeps server messages (which readiness detection reads) in English.
    return {**os.environ, "LC_ALL": "C"}


POSTGRES_BIN_DIR_ENV = "CHAOS_POSTGRES_BIN_DIR"
REDIS_SERVER_ENV = "CHAOS_REDIS_SERVER"


def locate_postgres(bin_dir: str | Path | None) -> tuple[Path, Path]:
    """(initdb, postgres) from `bin_dir`, else $CHAOS_POSTGRES_BIN_DIR, else the newest
    /usr/lib/postgresql/*/bin, else PATH; LookupError with advice when absent."""
    bin_dir = bin_dir if bin_dir is not None else os.environ.get(POSTGRES_BIN_DIR_ENV)
    if bin_dir is not None:
        dirs = [Path(bin_dir)]
    else:
        dirs = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
        dirs += [Path(p) for p in os.get_exec_path()]
    for directory in dirs:
        initdb, postgres = directory / "initdb", directory / "postgres"
        if _is_executable(initdb) and _is_executable(postgres):
            return initdb, postgres
    where = bin_dir if bin_dir is not None else "/usr/lib/postgresql/*/bin or PATH"
    raise LookupError(
        f"PostgreSQL server binaries (initdb, postgres) not found in {where}; install them "
        f"(Debian/Ubuntu: apt-get install postgresql) or set {POSTGRES_BIN_DIR_ENV} to the directory "
        "holding them (tests can use an existing server instead via CHAOS_TEST_POSTGRES_URL)"
    )


def locate_redis(binary: str | Path | None) -> Path:
    """redis-server from `binary`, else $CHAOS_REDIS_SERVER, else PATH; LookupError with advice if absent."""
    binary = binary if binary is not None else os.environ.get(REDIS_SERVER_ENV)
    found = shutil.which("redis-server") if binary is None else binary
    if found is None or not _is_executable(Path(found)):
        raise LookupError(
            f"redis-server not found ({binary or 'not on PATH'}); install it (Debian/Ubuntu: apt-get "
            f"install redis-server) or set {REDIS_SERVER_ENV} to its path (tests can use an existing "
            "server instead via CHAOS_TEST_REDIS_URL)"
        )
    return Path(found)


def postgres_account() -> tuple[int, int] | None:
    """(uid, gid) of the `postgres` user when we are root (initdb and postgres refuse root), else None."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        raise LookupError(
            "running as root, but PostgreSQL refuses root and there is no 'postgres' user to run it as; "
            "create one (useradd --system postgres) or run as an ordinary user"
        ) from None
    return entry.pw_uid, entry.pw_gid


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _version_key(bin_dir: Path) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", bin_dir.parent.name)]


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free on `host` right now (another process may still take it before we bind it)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port: int = sock.getsockname()[1]
        if port not in SHARED_PORTS:
            return port


class OutputWatcher:
    """Copies a server's output to a log file on a thread; tells when a marker line appears or output ends."""

    def __init__(self, stream: IO[bytes], log_path: Path, marker: str, tail_lines: int = 40) -> None:
        self._stream = stream
        self._log_path = log_path
        self._marker = marker.encode()
        self._tail: deque[str] = deque(maxlen=tail_lines)
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._closed = threading.Event()
        self._changed = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch-{log_path.parent.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with self._stream, self._log_path.open("ab") as log_file:
            for line in self._stream:
                log_file.write(line)
                log_file.flush()
                with self._lock:
                    self._tail.append(line.decode(errors="replace").rstrip())
                if self._marker in line and not self._ready.is_set():
                    self._ready.set()
                    self._changed.set()
        self._closed.set()
        self._changed.set()

    def wait_ready(self, timeout: float) -> Outcome:
        """Block until the marker line is seen, the output ends, or `timeout` seconds pass."""
        self._changed.wait(timeout)
        if self._ready.is_set():
            return "ready"
        return "exited" if self._closed.is_set() else "timeout"

    def wait_closed(self, timeout: float) -> bool:
        """Block until the output ends (every process holding it has exited); False on timeout."""
        if not self._closed.wait(timeout):
            return False
        self._thread.join(timeout)
        return True

    def tail(self) -> str:
        """The last lines of output, for error messages."""
        with self._lock:
            return "\n".join(self._tail)


class ServerProcess:
    """A server process whose output (shared by its children) is watched. It gets its own session so that
    a terminal's Ctrl-C reaches only us, and the server is shut down in order by stop() or atexit."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        log_path: Path,
        ready_marker: str,
        env: Mapping[str, str],
        account: tuple[int, int] | None = None,
    ) -> None:
        self._proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=account[0] if account else None,
            group=account[1] if account else None,
            extra_groups=[] if account else None,
        )
        assert self._proc.stdout is not None
        self._pipe = f"pipe:[{os.fstat(self._proc.stdout.fileno()).st_ino}]"
        self.watcher = OutputWatcher(self._proc.stdout, log_path, ready_marker)

    @property
    def pid(self) -> int:
        """The main process id."""
        return self._proc.pid

    @property
    def alive(self) -> bool:
        """Whether the main process has not exited (a SIGSTOPped process is alive)."""
        return self._proc.poll() is None

    def members(self) -> set[int]:
        """The server's live processes: the main one plus all that hold its output pipe (its children,
        including ones orphaned by a kill of the main process). Postgres children call setsid(), so
        neither the process group nor the session finds them."""
        pids = {self._proc.pid} if self.alive else set()
        with contextlib.suppress(OSError):
            for entry in os.scandir("/proc"):
                if entry.name.isdigit() and self._holds_pipe(entry.name):
                    pids.add(int(entry.name))
        return pids

    def _holds_pipe(self, pid: str) -> bool:
        for fd in (1, 2):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == self._pipe:
                    return True
        return False

    def signal_all(self, sig: signal.Signals) -> None:
        """Send `sig` to every process of the server."""
        for pid in self.members():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def kill(self, timeout: float) -> None:
        """SIGKILL every process of the server and wait until all are gone."""
        self.signal_all(signal.SIGKILL)
        self._proc.wait()
        self._wait_all_gone(timeout)

    def stop(self, sig: signal.Signals, timeout: float) -> None:
        """Ask the main process to shut down with `sig`; SIGKILL everything if it takes over `timeout`."""
        self._proc.send_signal(sig)
        # A SIGSTOPped server would not act on the shutdown signal until the deadline.
        self.signal_all(signal.SIGCONT)
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("pid %d ignored %s for %.1fs; sending SIGKILL", self._proc.pid, sig.name, timeout)
            self.kill(timeout)
            return
        self._wait_all_gone(timeout)

    def _wait_all_gone(self, timeout: float) -> None:
        # The output pipe closes only once every process holding it has exited (e.g. Postgres backends
        # that outlive a killed postmaster and would block a restart).
        if not self.watcher.wait_closed(timeout):
            self.signal_all(signal.SIGKILL)
            if not self.watcher.wait_closed(timeout):
                log.error("processes of pid %d still hold its output after SIGKILL", self._proc.pid)
