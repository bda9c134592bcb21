"""A real engine process for black-box tests, and the TCP servers tests put behind it."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chaos_service.engine.process import EngineProcess as _EngineProcess


class EngineProcess(_EngineProcess):
    """The package's launcher, quiet by default and with an httpx client at hand."""

    def __init__(self, *args: str, cwd: Path | None = None) -> None:
        super().__init__(*args, cwd=cwd, log_level=os.environ.get("LOG_LEVEL", "warning"))

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10.0, **kwargs)  # type: ignore[arg-type]


class EchoServer:
    """A threaded TCP echo server on 127.0.0.1, counting the connections it accepted."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.accepted = 0
        self.peers: list[socket.socket] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.peers.append(conn)
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        with conn:
            try:
                while data := conn.recv(65536):
                    conn.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self._closed.set()
        self.sock.close()
        for peer in self.peers:
            with contextlib.suppress(OSError):
                peer.shutdown(socket.SHUT_RDWR)
            peer.close()


@pytest.fixture(scope="session")
def engine() -> Iterator[EngineProcess]:
    """One engine for the session; `api` leaves it empty after each test."""
    process = EngineProcess("--seed", "1").start()
    yield process
    process.stop()


@pytest.fixture
def api(engine: EngineProcess) -> Iterator[httpx.Client]:
    """An HTTP client for the session engine; every proxy is deleted after the test."""
    with engine.client() as client:
        yield client
        for name in client.get("/proxies").json():
            client.delete(f"/proxies/{name}")


@pytest.fixture
def echo_server() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()
