"""GET /proxies/{name}/stats: connections, bytes each way and how often each toxic took effect."""

from __future__ import annotations

import socket
import time

import httpx

from tests.support.engine import EchoServer


def _stats(api: httpx.Client, name: str) -> dict[str, object]:
    response = api.get(f"/proxies/{name}/stats")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def _open(api: httpx.Client, echo_server: EchoServer) -> int:
    created = api.post("/proxies", json={"name": "counted", "upstream": echo_server.address})
    assert created.status_code == 201
    return int(created.json()["listen"].rsplit(":", 1)[1])


def _echo(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(payload)
    received = b""
    while len(received) < len(payload):
        chunk = sock.recv(65536)
        assert chunk
        received += chunk
    assert received == payload


def test_a_new_proxy_has_zero_counters(api: httpx.Client, echo_server: EchoServer) -> None:
    _open(api, echo_server)
    assert _stats(api, "counted") == {
        "name": "counted",
        "protocol": "tcp",
        "enabled": True,
        "connections": {"open": 0, "total": 0},
        "message_unit": None,
        "upstream": {"bytes": 0, "messages": None},
        "downstream": {"bytes": 0, "messages": None},
        "toxics": {},
    }


def test_bytes_are_counted_while_open_and_after_close(api: httpx.Client, echo_server: EchoServer) -> None:
    port = _open(api, echo_server)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        _echo(sock, b"x" * 10_000)
        live = _stats(api, "counted")
        assert live["connections"] == {"open": 1, "total": 1}
        assert live["upstream"] == {"bytes": 10_000, "messages": None}
        assert live["downstream"] == {"bytes": 10_000, "messages": None}
    deadline = time.monotonic() + 5
    while _stats(api, "counted")["connections"] != {"open": 0, "total": 1}:  # the engine sees the close
        assert time.monotonic() < deadline, "the closed connection is still counted as open"
    closed = _stats(api, "counted")
    assert closed["upstream"] == {"bytes": 10_000, "messages": None}
    assert closed["downstream"] == {"bytes": 10_000, "messages": None}


def test_a_toxic_counts_each_connection_it_applies_to(api: httpx.Client, echo_server: EchoServer) -> None:
    port = _open(api, echo_server)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as first:
        _echo(first, b"before")
        assert api.post("/proxies/counted/toxics", json={"type": "latency", "name": "slow"}).status_code == 200
        assert api.post("/proxies/counted/toxics", json={"type": "noop", "toxicity": 0}).status_code == 200
        assert _stats(api, "counted")["toxics"] == {"slow": {"fired": 1}, "noop_downstream": {"fired": 0}}
        with socket.create_connection(("127.0.0.1", port), timeout=5) as second:
            _echo(second, b"after")
            assert _stats(api, "counted")["toxics"]["slow"] == {"fired": 2}  # type: ignore[index]
    assert api.delete("/proxies/counted/toxics/slow").status_code == 204
    assert _stats(api, "counted")["toxics"]["slow"] == {"fired": 2}  # type: ignore[index]


def test_stats_of_an_unknown_proxy_is_404(api: httpx.Client) -> None:
    response = api.get("/proxies/nope/stats")
    assert response.status_code == 404
    assert response.json() == {"error": "proxy not found", "status": 404}
