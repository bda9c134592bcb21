"""Third-party Toxiproxy clients (toxiproxy-python, chaostoolkit-toxiproxy) driving a real engine.

Both clients call ``requests`` without a timeout; `bounded_requests` gives every call one, so a hung engine
fails a test instead of hanging it.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest
import requests

REQUEST_TIMEOUT = 10.0
SOCKET_TIMEOUT = 5.0


def bounded_requests(monkeypatch: pytest.MonkeyPatch, timeout: float = REQUEST_TIMEOUT) -> None:
    """Make every ``requests`` call made during the test use `timeout` unless it sets its own."""
    original = requests.Session.request

    def request(self: requests.Session, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = timeout
        return original(self, method, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", request)


def split_listen(listen: str) -> tuple[str, int]:
    """``"127.0.0.1:1234"`` → ``("127.0.0.1", 1234)``; fails on anything that is not exactly host:port."""
    host, port = listen.split(":")
    return host, int(port)


def accepts(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a TCP connect to host:port succeeds (False on ECONNREFUSED)."""
    try:
        with socket.create_connection((host, port), timeout=SOCKET_TIMEOUT):
            return True
    except ConnectionRefusedError:
        return False


def echo_round_trip(port: int, payload: bytes = b"ping through the proxy") -> tuple[bytes, float]:
    """Send `payload` through the proxy on `port` to an echo server; the bytes read back and the seconds."""
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT) as sock:
        started = time.perf_counter()
        sock.sendall(payload)
        received = b""
        while len(received) < len(payload):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received, time.perf_counter() - started


def connection_fails(port: int, host: str = "127.0.0.1") -> bool:
    """True when a connect is refused, or is accepted but closed before an echo comes back."""
    try:
        with socket.create_connection((host, port), timeout=SOCKET_TIMEOUT) as sock:
            sock.sendall(b"x")
            return sock.recv(1) == b""
    except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError):
        return True
