"""Private, throwaway PostgreSQL and Redis servers for tests, benchmarks and `sandbox up`.

Each server listens on 127.0.0.1 on a free port (never the shared 5432/6379), keeps everything in its own
temporary directory, and may be killed, paused (SIGSTOP on `pid`) and restarted by chaos experiments.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import signal
import subprocess
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Self, TypeVar
from urllib.parse import urlsplit

from chaos_service.errors import ChaosServiceError
from chaos_service.sandbox._process import (
    ServerProcess,
    child_env,
    free_port,
    locate_postgres,
    locate_redis,
    postgres_account,
)

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
PORT_ATTEMPTS = 3
_T = TypeVar("_T")


class DatastoreError(ChaosServiceError):
    """A sandbox datastore could not be started, stopped or used."""


class DatastoreUnavailable(DatastoreError):
    """The server software is not installed (or not usable) on this machine."""


class DatastoreStartFailed(DatastoreError):
    """The server did not become ready; the message ends with the tail of its log."""


class _PortTaken(DatastoreStartFailed):
    pass


@dataclass(frozen=True)
class ExternalServer:
    """A datastore run by someone else, known only by URL; it cannot be killed or restarted."""

    url: str
    host: str
    port: int

    @classmethod
    def from_url(cls, url: str, default_port: int) -> ExternalServer:
        """Parse `url` (e.g. ``redis://host:6380/0``); `default_port` applies when it names none."""
        parts = urlsplit(url)
        return cls(url=url, host=parts.hostname or HOST, port=parts.port or default_port)


class _LocalServer(ABC):
    """Lifecycle shared by the local servers: temp dir, port choice, start/kill/restart/stop."""

    kind: ClassVar[str]
    ready_marker: ClassVar[str]
    stop_signal: ClassVar[signal.Signals]
    host: str = HOST

    def __init__(self, *, port: int | None, startup_timeout: float, shutdown_timeout: float) -> None:
        self._requested_port = port
        self._port = port
        self._port_fixed = port is not None
        self._startup_timeout = startup_timeout
        self._shutdown_timeout = shutdown_timeout
        self._tmp: Path | None = None
        self._process: ServerProcess | None = None
        self._run_as: tuple[int, int] | None = None  # (uid, gid) to run the server as; None: as ourselves

    @property
    def port(self) -> int:
        """The TCP port on 127.0.0.1; chosen at the first start() and kept across kill/restart."""
        if self._port is None:
            raise DatastoreError(f"{self.kind} has no port yet; call start() first")
        return self._port

    @property
    @abstractmethod
    def url(self) -> str:
        """A client URL (DSN) for the server."""

    @property
    def tmp_dir(self) -> Path | None:
        """The private directory holding data, sockets and logs; None before start() and after stop()."""
        return self._tmp

    @property
    def running(self) -> bool:
        """Whether the main server process exists (it may be paused)."""
        return self._process is not None and self._process.alive

    @property
    def pid(self) -> int:
        """The server's main process id, e.g. for SIGSTOP/SIGCONT/SIGKILL by experiments."""
        if self._process is None or not self._process.alive:
            raise DatastoreError(f"{self.kind} is not running")
        return self._process.pid

    def start(self) -> Self:
        """Start the server (again, after kill(), on the same port and data) and wait until it is ready."""
        if self._process is not None:
            if self._process.alive:
                return self
            self._process.kill(self._shutdown_timeout)  # died under us: make sure no child lingers
            self._process = None
        first = self._tmp is None
        try:
            if self._tmp is None:
                self._tmp = Path(tempfile.mkdtemp(prefix=f"chaos-{self.kind}-"))
                _live.add(self)
                self._prepare(self._tmp)
            self._launch_with_retries(self._tmp)
        except BaseException:
            if first:
                self.stop()
            raise
        self._port_fixed = True
        log.info("%s ready at %s (pid %d, dir %s)", self.kind, self.url, self.pid, self._tmp)
        return self

    def kill(self) -> None:
        """SIGKILL the server and all its processes, with no shutdown; port and data dir are kept."""
        if self._process is not None:
            log.info("killing %s (pid %d)", self.kind, self._process.pid)
            self._process.kill(self._shutdown_timeout)
            self._process = None

    def restart(self) -> Self:
        """Shut the server down cleanly (if running) and start it again on the same port and data."""
        self._shutdown()
        return self.start()

    def stop(self) -> None:
        """Shut the server down and remove its temp dir; calling it again does nothing."""
        self._shutdown()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self._port = self._requested_port
        self._port_fixed = self._requested_port is not None
        _live.discard(self)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _shutdown(self) -> None:
        if self._process is not None:
            log.info("stopping %s (pid %d)", self.kind, self._process.pid)
            self._process.stop(self.stop_signal, self._shutdown_timeout)
            self._process = None

    def _launch_with_retries(self, tmp: Path) -> None:
        attempts = 1 if self._port_fixed else PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            if not self._port_fixed:
                self._port = free_port(HOST)
            try:
                self._process = self._launch(tmp, self.port)
                return
            except _PortTaken:
                if attempt == attempts:
                    raise
                log.info("%s port %d was taken meanwhile; trying another", self.kind, self.port)

    def _launch(self, tmp: Path, port: int) -> ServerProcess:
        process = ServerProcess(
            self._argv(tmp, port),
            cwd=tmp,
            log_path=tmp / f"{self.kind}.log",
            ready_marker=self.ready_marker,
            env=child_env(),
            account=self._run_as,
        )
        outcome = process.watcher.wait_ready(self._startup_timeout)
        if outcome == "ready":
            return process
        process.kill(self._shutdown_timeout)
        tail = process.watcher.tail()
        what = "exited" if outcome == "exited" else f"was not ready within {self._startup_timeout:.0f}s"
        message = f"{self.kind} on port {port} {what}; last log lines:\n{tail}"
        if outcome == "exited" and "Address already in use" in tail:
            raise _PortTaken(message)
        raise DatastoreStartFailed(message)

    def _prepare(self, tmp: Path) -> None:  # noqa: B027 - optional hook
        """One-time set-up of a fresh temp dir before the first launch."""

    @abstractmethod
    def _argv(self, tmp: Path, port: int) -> list[str]: ...


class PostgresServer(_LocalServer):
    """A private PostgreSQL cluster, tuned for speed over durability (fsync, full_page_writes and
    synchronous_commit are off: after kill(), commits of the last fraction of a second may be lost unless
    the session set ``synchronous_commit = on``)."""

    kind = "postgres"
    ready_marker = "ready to accept connections"
    stop_signal = signal.SIGINT  # "fast" shutdown: roll back open transactions, then exit cleanly

    def __init__(
        self,
        *,
        bin_dir: str | Path | None = None,
        port: int | None = None,
        settings: Mapping[str, str] | None = None,
        startup_timeout: float = 30.0,
        shutdown_timeout: float = 10.0,
    ) -> None:
        """`bin_dir` holds initdb and postgres (default: $CHAOS_POSTGRES_BIN_DIR, the newest
        /usr/lib/postgresql/*/bin, then PATH); `settings` adds or overrides server settings.
        Raises DatastoreUnavailable when the binaries are missing."""
        super().__init__(port=port, startup_timeout=startup_timeout, shutdown_timeout=shutdown_timeout)
        self._initdb, self._postgres = _required(lambda: locate_postgres(bin_dir))
        self._run_as = _required(postgres_account)
        self._settings = {
            "listen_addresses": HOST,
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "300",
            "lc_messages": "C",  # readiness is detected from the English log line
            **(settings or {}),
        }

    @property
    def url(self) -> str:
        """``postgresql://postgres@127.0.0.1:PORT/postgres`` (trust authentication, no password)."""
        return f"postgresql://postgres@{HOST}:{self.port}/postgres"

    def _prepare(self, tmp: Path) -> None:
        if self._run_as is not None:
            os.chown(tmp, *self._run_as)
        log_path = tmp / "initdb.log"
        argv = [str(self._initdb), "-D", str(tmp / "data"), "-A", "trust", "-U", "postgres"]
        argv += ["--no-sync", "-E", "UTF8", "--locale=C"]
        uid, gid = self._run_as or (None, None)
        with log_path.open("wb") as out:
            try:
                returncode = subprocess.run(
                    argv, cwd=tmp, env=child_env(), stdin=subprocess.DEVNULL, stdout=out,
                    stderr=subprocess.STDOUT, timeout=self._startup_timeout,
                    user=uid, group=gid, extra_groups=None if uid is None else [], check=False,
                ).returncode  # fmt: skip
            except subprocess.TimeoutExpired:
                returncode = None
        if returncode != 0:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
            what = f"exited with code {returncode}" if returncode else f"took over {self._startup_timeout}s"
            raise DatastoreStartFailed(f"initdb {what}; last log lines:\n{tail}")

    def _argv(self, tmp: Path, port: int) -> list[str]:
        settings = {**self._settings, "port": str(port), "unix_socket_directories": str(tmp)}
        argv = [str(self._postgres), "-D", str(tmp / "data")]
        for name, value in settings.items():
            argv += ["-c", f"{name}={value}"]
        return argv


class RedisServer(_LocalServer):
    """A private Redis server with persistence off; it comes back empty after kill() or restart()."""

    kind = "redis"
    ready_marker = "Ready to accept connections"
    stop_signal = signal.SIGTERM

    def __init__(
        self,
        *,
        binary: str | Path | None = None,
        port: int | None = None,
        startup_timeout: float = 30.0,
        shutdown_timeout: float = 10.0,
    ) -> None:
        """`binary` is the redis-server executable (default: $CHAOS_REDIS_SERVER, then PATH).
        Raises DatastoreUnavailable when it is missing."""
        super().__init__(port=port, startup_timeout=startup_timeout, shutdown_timeout=shutdown_timeout)
        self._binary = _required(lambda: locate_redis(binary))

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://{HOST}:{self.port}/0"

    def _argv(self, tmp: Path, port: int) -> list[str]:
        return [
            str(self._binary), "--port", str(port), "--bind", HOST, "--save", "",
            "--appendonly", "no", "--dir", str(tmp), "--logfile", "",
        ]  # fmt: skip


def _required(find: Callable[[], _T]) -> _T:
    try:
        return find()
    except LookupError as exc:
        raise DatastoreUnavailable(str(exc)) from None


_live: set[_LocalServer] = set()


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_live):
        try:
            server.stop()
        except Exception:
            log.exception("could not stop %s at exit", server.kind)
