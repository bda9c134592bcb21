"""Shared helpers for the black-box API tests: error-body checks, ports and sockets."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

PROXY_KEYS = ["name", "listen", "upstream", "enabled", "protocol", "toxics"]
TOXIC_KEYS = ["attributes", "name", "type", "stream", "toxicity"]
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 5.0


def compact(value: Any) -> str:
    """Compact JSON as Go's encoder writes it (``<``, ``>``, ``&`` escaped)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def error_message(response: httpx.Response, status: int) -> str:
    """Check the Go ``http.Error`` format of an API error and return its message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.text.endswith("\n"), response.text
    body = json.loads(response.text)
    assert list(body) == ["error", "status"], body
    assert body["status"] == status
    assert isinstance(body["error"], str) and body["error"]
    assert response.text == compact(body) + "\n"
    return str(body["error"])


def assert_error(response: httpx.Response, status: int, message: str) -> None:
    """An API error with exactly this status and message."""
    assert error_message(response, status) == message
    assert response.text == compact({"error": message, "status": status}) + "\n"


def assert_json(response: httpx.Response, status: int) -> Any:
    """A success body: ``application/json``, compact, no trailing newline."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert not response.text.endswith("\n")
    body = response.json()
    assert response.text == compact(body)
    return body


def assert_empty(response: httpx.Response, status: int = 204) -> None:
    assert response.status_code == status, response.text
    assert response.content == b""


def free_port() -> int:
    """A port that was free a moment ago (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def held_port() -> Iterator[int]:
    """A port on 127.0.0.1 that another (listening) socket occupies."""
    server = socket.create_server(("127.0.0.1", 0))
    try:
        yield int(server.getsockname()[1])
    finally:
        server.close()


@contextmanager
def occupied(port: int) -> Iterator[None]:
    """Listen on this port of 127.0.0.1 (so nobody else can bind it) during the block."""
    server = socket.create_server(("127.0.0.1", port))
    try:
        yield
    finally:
        server.close()


def port_of(listen: str) -> int:
    host, _, port = listen.rpartition(":")
    assert host == "127.0.0.1", listen
    return int(port)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=CONNECT_TIMEOUT)
    sock.settimeout(READ_TIMEOUT)
    return sock


def assert_up(port: int) -> None:
    """The port accepts TCP connections."""
    connect(port).close()


def assert_down(port: int) -> None:
    """The port refuses TCP connections."""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=CONNECT_TIMEOUT).close()


def echo(sock: socket.socket, payload: bytes = b"ping") -> None:
    """Send ``payload`` and read it back (through a proxy to an echo server)."""
    sock.sendall(payload)
    received = b""
    while len(received) < len(payload):
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {received!r}"
        received += chunk
    assert received == payload


def assert_closed(sock: socket.socket) -> None:
    """The peer closed the connection: a blocking read sees EOF or a reset, not a timeout."""
    sock.settimeout(READ_TIMEOUT)
    try:
        data = sock.recv(65536)
    except ConnectionResetError:
        return
    assert data == b"", data


def create_proxy(api: httpx.Client, name: str, upstream: str, **fields: Any) -> dict[str, Any]:
    body = {"name": name, "upstream": upstream, "listen": "127.0.0.1:0", **fields}
    response = api.post("/proxies", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def add_toxic(api: httpx.Client, proxy: str, **fields: Any) -> dict[str, Any]:
    response = api.post(f"/proxies/{proxy}/toxics", json=fields)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def all_proxies(api: httpx.Client) -> dict[str, Any]:
    response = api.get("/proxies")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def toxics_of(api: httpx.Client, proxy: str) -> list[dict[str, Any]]:
    response = api.get(f"/proxies/{proxy}/toxics")
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result
