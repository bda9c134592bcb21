"""The sandbox stack: private Postgres and Redis, the LLM stub, the engine and the chat back-end.

`Sandbox.start()` starts them in that order, wires the chat back-end to its dependencies
through the engine's proxies, and writes ``environment.json`` and ``proxies.json`` into the
sandbox directory; `Sandbox.stop()` stops everything in reverse order. See docs/sandbox.md.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import subprocess
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Literal, Self
from urllib.parse import urlsplit, urlunsplit

import httpx

from chaos_service.cli.sandbox_chat import SECRET_VARIABLE
from chaos_service.engine.listen import format_address
from chaos_service.engine.process import EngineProcess
from chaos_service.errors import ChaosServiceError, InvalidInput
from chaos_service.sandbox._process import free_port
from chaos_service.sandbox.chat.config import DEFECTS, unknown_defects
from chaos_service.sandbox.chat.process import ChatProcess
from chaos_service.sandbox.datastores import ExternalServer, PostgresServer, RedisServer
from chaos_service.sandbox.environment import (
    ENVIRONMENT_FILE,
    PROXIES_FILE,
    Auth,
    Environment,
    Proxy,
    write_proxies,
)
from chaos_service.sandbox.llm_stub.process import LlmStubProcess
from chaos_service.sandbox.reaper import Reaper
from chaos_service.sandbox.supervisor import DirectoryLock
from chaos_service.service_process import ServiceProcess, ServiceStartFailed

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
SERVICE_LOG_LEVEL = "warning"
HEALTH_TIMEOUT = 15.0
#: How often free ports are chosen afresh when one was taken before the engine bound it.
PORT_ATTEMPTS = 3

PortMode = Literal["fixed", "auto"]
Datastore = PostgresServer | RedisServer | ExternalServer

#: The well-known ports of ``--ports fixed`` and what listens on each.
FIXED_PORTS: dict[str, tuple[int, str]] = {
    "engine": (8474, "engine API"),
    "postgres": (25432, "postgres proxy"),
    "redis": (26379, "redis proxy"),
    "llm": (28080, "llm proxy"),
    "chat_ws": (28081, "chat_ws proxy"),
    "chat": (8080, "chat back-end"),
    "llm_stub": (8081, "LLM stub"),
}


class SandboxError(ChaosServiceError):
    """The sandbox could not be started; what was started has been stopped again."""


class UnknownDefect(InvalidInput):
    """A ``--defect`` that is not one of the seeded defects."""


class PortTaken(InvalidInput):
    """A fixed port is in use; nothing was started."""


@dataclass(frozen=True)
class Ports:
    """Where the engine, the proxies, the chat back-end and the LLM stub listen (0: any free port)."""

    engine: int
    postgres: int
    redis: int
    llm: int
    chat_ws: int
    chat: int
    llm_stub: int

    @classmethod
    def plan(cls, mode: PortMode) -> Ports:
        """The fixed ports (checked to be free), or free ports for what must be known in advance."""
        if mode == "fixed":
            taken = [f"{port} ({what})" for port, what in FIXED_PORTS.values() if not port_is_free(port)]
            if len(taken) == 1:
                raise PortTaken(
                    f"port {taken[0]} is in use on {HOST}: stop what uses it (`chaos-service sandbox down` "
                    "if it is another sandbox), or use `--ports auto`"
                )
            if taken:
                raise PortTaken(
                    f"ports {', '.join(taken)} are in use on {HOST}: stop what uses them (`chaos-service "
                    "sandbox down` if it is another sandbox), or use `--ports auto`"
                )
            return cls(**{name: port for name, (port, _) in FIXED_PORTS.items()})
        chosen: set[int] = set()
        while len(chosen) < 5:
            chosen.add(free_port(HOST))
        postgres, redis, llm, chat_ws, chat = sorted(chosen)
        return cls(engine=0, postgres=postgres, redis=redis, llm=llm, chat_ws=chat_ws, chat=chat, llm_stub=0)


def port_is_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:`port` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


class _Service:
    """A chaos-service server in a child process, its output copied to the sandbox's log."""

    def __init__(self, name: str, process: ServiceProcess, log_to: IO[str]) -> None:
        self.name = name
        self.process = process
        self._log_to = log_to
        self._drains: list[threading.Thread] = []

    def start(self) -> Self:
        self.process.start()
        proc = self.process.proc
        assert proc is not None and proc.stdout is not None and proc.stderr is not None
        for stream in (proc.stdout, proc.stderr):
            thread = threading.Thread(target=self._drain, args=(stream,), name=f"log-{self.name}", daemon=True)
            thread.start()
            self._drains.append(thread)
        return self

    def _drain(self, stream: IO[str]) -> None:
        with contextlib.suppress(ValueError, OSError):
            for line in stream:
                self._log_to.write(f"[{self.name}] {line}")
                self._log_to.flush()

    def stop(self, timeout: float = 10.0) -> None:
        proc = self.process.proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for thread in self._drains:
            thread.join(timeout)
        if not any(thread.is_alive() for thread in self._drains):
            self.process.stop()  # reaps the process and closes its pipes


class Sandbox:
    """The sandbox stack in child processes of this one; a context manager."""

    def __init__(
        self,
        directory: Path,
        *,
        ports: PortMode = "fixed",
        defects: Iterable[str] = (),
        postgres_url: str | None = None,
        redis_url: str | None = None,
        seed: int | None = None,
        log_to: IO[str] | None = None,
    ) -> None:
        """`log_to` receives the servers' output (default: stderr); `seed` makes the engine's draws
        reproducible. `postgres_url` / `redis_url` name servers to use instead of private ones."""
        self.directory = Path(directory).resolve()
        self.port_mode: PortMode = ports
        self.defects = list(dict.fromkeys(defects))
        self.postgres_url = postgres_url
        self.redis_url = redis_url
        self.seed = seed
        self._log_to = log_to
        self._lock = DirectoryLock(self.directory)
        self._datastores: list[PostgresServer | RedisServer] = []
        self._services: list[_Service] = []
        self._environment: Environment | None = None
        self._reaper: Reaper | None = None

    @property
    def environment_path(self) -> Path:
        return self.directory / ENVIRONMENT_FILE

    @property
    def proxies_path(self) -> Path:
        return self.directory / PROXIES_FILE

    @property
    def environment(self) -> Environment:
        """Where everything runs; available once `start()` returned."""
        if self._environment is None:
            raise SandboxError("the sandbox is not running; call start() first")
        return self._environment

    def start(self) -> Self:
        """Start everything, wait until the chat back-end answers, write the environment files.

        Raises:
            UnknownDefect, InvalidInput: bad options (nothing was started).
            AlreadyRunning: a sandbox runs in the directory already.
            PortTaken: a fixed port is in use (nothing was started).
            DatastoreUnavailable: the Postgres or Redis server binaries are missing.
            ChaosServiceError: a part did not start; the rest was stopped again.
        """
        if self._environment is not None:
            return self
        self.check()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock.acquire()
        except OSError as exc:
            raise InvalidInput(f"cannot use {self.directory} as the sandbox directory: {exc.strerror or exc}") from None
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def check(self) -> None:
        """Raise `InvalidInput` (e.g. `UnknownDefect`) for options that cannot work; starts nothing."""
        if unknown := unknown_defects(self.defects):
            raise UnknownDefect(f"unknown defect {', '.join(unknown)}; known defects: {', '.join(DEFECTS)}")
        if self.port_mode not in ("fixed", "auto"):
            raise InvalidInput(f"ports must be 'fixed' or 'auto', not {self.port_mode!r}")
        for flag, url, schemes in (
            ("--postgres-url", self.postgres_url, ("postgresql://", "postgres://")),
            ("--redis-url", self.redis_url, ("redis://",)),
        ):
            if url is not None and not (url.startswith(schemes) and urlsplit(url).hostname):
                raise InvalidInput(f"{flag} must be a {' or '.join(schemes)} URL with a host: {url!r}")

    def _start(self) -> None:
        # Fixed ports are checked before anything starts; free ones are picked once the servers that
        # pick their own (the datastores, the stub) are listening, so that none of them takes one.
        ports = Ports.plan("fixed") if self.port_mode == "fixed" else None
        # Both constructors fail (DatastoreUnavailable) before anything starts when a binary is missing.
        postgres = ExternalServer.from_url(self.postgres_url, 5432) if self.postgres_url else PostgresServer()
        redis = ExternalServer.from_url(self.redis_url, 6379) if self.redis_url else RedisServer()
        with contextlib.suppress(FileNotFoundError):
            self.environment_path.unlink()
        log_to = self._log_to or sys.stderr
        # Whatever ends this process, what it started here does not outlive it.
        self._reaper = Reaper()
        for server in (postgres, redis):
            if not isinstance(server, ExternalServer):
                self._datastores.append(server)
                server.start()
                self._reaper.watch({server.kind: server.pid})
        stub_port = ports.llm_stub if ports else 0
        stub = self._service("llm_stub", LlmStubProcess(port=stub_port, log_level=SERVICE_LOG_LEVEL), log_to)
        secret = secrets.token_urlsafe(32)
        for attempt in range(1, PORT_ATTEMPTS + 1):
            planned = ports or Ports.plan("auto")
            started = len(self._services)
            try:
                engine, proxies, endpoints, direct = self._start_proxied(planned, postgres, redis, stub, secret)
                break
            except ServiceStartFailed as exc:
                # Free ports are only free when chosen: another process may bind one before the engine
                # or the chat back-end does. Planning afresh is the cure; fixed ports have no other.
                if ports is not None or attempt == PORT_ATTEMPTS or "address already in use" not in str(exc).lower():
                    raise
                log.info("a chosen port was taken meanwhile (%s); choosing again", exc)
                while len(self._services) > started:
                    self._services.pop().stop()
        _wait_healthy(endpoints["health"])

        processes = {"supervisor": os.getpid()}
        for server in self._datastores:
            processes[server.kind] = server.pid
        processes.update({service.name: service.process.pid for service in self._services})
        self._environment = Environment(
            engine=engine.url,
            proxies=proxies,
            endpoints=endpoints,
            direct=direct,
            auth=Auth(secret=secret),
            processes=processes,
            defects=list(self.defects),
        )
        self._environment.write(self.environment_path)

    def _start_proxied(
        self, ports: Ports, postgres: Datastore, redis: Datastore, stub: _Service, secret: str
    ) -> tuple[EngineProcess, dict[str, Proxy], dict[str, str], dict[str, str]]:
        """Start the engine with its proxies on `ports`, then the chat back-end behind them."""
        proxies, endpoints, direct = _wiring(ports, postgres, redis, _address(stub.process.url))
        write_proxies(self.proxies_path, proxies)
        engine_args = ["--config", str(self.proxies_path)]
        if self.seed is not None:
            engine_args += ["--seed", str(self.seed)]
        engine = EngineProcess(*engine_args, port=ports.engine, log_level=SERVICE_LOG_LEVEL)
        log_to = self._log_to or sys.stderr
        self._service("engine", engine, log_to)
        chat_args = ["--postgres-url", endpoints["postgres"], "--redis-url", endpoints["redis"]]
        chat_args += ["--llm-url", endpoints["llm"]]
        for defect in self.defects:
            chat_args += ["--defect", defect]
        chat = ChatProcess(*chat_args, port=ports.chat, log_level=SERVICE_LOG_LEVEL, env={SECRET_VARIABLE: secret})
        self._service("chat", chat, log_to)
        return engine, proxies, endpoints, direct

    def _service(self, name: str, process: ServiceProcess, log_to: IO[str]) -> _Service:
        service = _Service(name, process, log_to)
        self._services.append(service)
        service.start()
        if self._reaper is not None:
            self._reaper.watch({name: process.pid})
        return service

    def stop(self) -> None:
        """Stop everything in reverse order and remove the private servers' data; never raises."""
        for service in reversed(self._services):
            try:
                service.stop()
            except Exception:
                log.exception("could not stop the %s", service.name)
        self._services.clear()
        for server in reversed(self._datastores):
            try:
                server.stop()
            except Exception:
                log.exception("could not stop %s", server.kind)
        self._datastores.clear()
        if self._reaper is not None:
            self._reaper.stopped()
            self._reaper = None
        self._environment = None
        if self._lock.held:
            with contextlib.suppress(OSError):
                self.environment_path.unlink()
            self._lock.release()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _wiring(
    ports: Ports, postgres: Datastore, redis: Datastore, stub_address: str
) -> tuple[dict[str, Proxy], dict[str, str], dict[str, str]]:
    """The four proxies, the endpoints through them, and the direct addresses they bypass."""
    chat = format_address(HOST, ports.chat)
    proxies = {
        "postgres": Proxy("tcp", format_address(HOST, ports.postgres), format_address(postgres.host, postgres.port)),
        "redis": Proxy("tcp", format_address(HOST, ports.redis), format_address(redis.host, redis.port)),
        "llm": Proxy("http", format_address(HOST, ports.llm), stub_address),
        "chat_ws": Proxy("websocket", format_address(HOST, ports.chat_ws), chat),
    }
    endpoints = {
        "chat_ws": f"ws://{proxies['chat_ws'].listen}/ws",
        "health": f"http://{chat}/health",
        "postgres": _through(postgres.url, HOST, ports.postgres),
        "redis": _through(redis.url, HOST, ports.redis),
        "llm": f"http://{proxies['llm'].listen}/v1",
    }
    direct = {
        "chat_ws": f"ws://{chat}/ws",
        "postgres": postgres.url,
        "redis": redis.url,
        "llm": f"http://{stub_address}/v1",
    }
    return proxies, endpoints, direct


def _address(url: str) -> str:
    """``HOST:PORT`` of an ``http://HOST:PORT`` URL."""
    return urlsplit(url).netloc


def _through(url: str, host: str, port: int) -> str:
    """`url` with its host and port replaced by `host`:`port` (the user, database and query kept)."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = format_address(host, port)
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{netloc}" if userinfo else netloc))


def _wait_healthy(url: str) -> None:
    """GET the chat back-end's /health once; it must answer 200 (``ok`` or ``degraded``)."""
    try:
        response = httpx.get(url, timeout=HEALTH_TIMEOUT)
    except httpx.HTTPError as exc:
        raise SandboxError(f"the chat back-end does not answer {url}: {exc}") from None
    if response.status_code != 200:
        raise SandboxError(f"the chat back-end is not healthy ({url}: {response.status_code} {response.text})")
