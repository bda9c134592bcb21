"""A real engine process for black-box tests, and the TCP servers tests put behind it."""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

START_TIMEOUT = 20.0


class EngineProcess:
    """``chaos-service engine`` in a child process, on a free API port."""

    def __init__(self, *args: str, cwd: Path | None = None) -> None:
        self.args = ["--port", "0", *args]
        self.cwd = cwd
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.ready_line = ""

    def start(self) -> EngineProcess:
        env = {**os.environ, "LOG_LEVEL": os.environ.get("LOG_LEVEL", "warning"), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chaos_service", "engine", *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=self.cwd,
        )
        line = _read_line(self.proc, START_TIMEOUT)
        if "API on " not in line:
            self.stop()
            raise RuntimeError(f"engine did not start: {line!r}")
        self.ready_line = line
        self.url = line.split("API on ")[1].split()[0]
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10.0, **kwargs)  # type: ignore[arg-type]

    def stop(self) -> int | None:
        """Terminate (SIGTERM) and wait; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return self.proc.returncode


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The child's first stdout line, or its stderr if it exits first."""
    assert proc.stdout is not None and proc.stderr is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            return "(no output before the start timeout)"
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=5)
        return proc.stderr.read()
    return line.strip()


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
