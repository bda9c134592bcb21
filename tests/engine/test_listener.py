"""The listener every protocol runtime shares: accepting, retrying, stopping, handing back."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from chaos_service.engine import listener as listener_module
from chaos_service.engine.listener import Listener


def listening() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.setblocking(False)
    return sock


def run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(scenario(), 10))


async def connect(sock: socket.socket) -> socket.socket:
    client = socket.socket()
    client.setblocking(False)
    await asyncio.get_running_loop().sock_connect(client, sock.getsockname())
    return client


def test_each_client_is_handed_to_the_callback() -> None:
    async def scenario() -> None:
        sock = listening()
        accepted: asyncio.Queue[socket.socket] = asyncio.Queue()

        async def on_client(client: socket.socket) -> None:
            await accepted.put(client)

        listener = Listener("p")
        listener.start(sock, on_client)
        clients = [await connect(sock) for _ in range(3)]
        served = [await accepted.get() for _ in clients]
        assert {s.getpeername() for s in served} == {c.getsockname() for c in clients}
        assert listener.stop() is None
        for each in clients + served:
            each.close()

    run(scenario)


def test_stop_closes_the_socket_unless_it_is_kept() -> None:
    async def scenario() -> None:
        closed, kept = listening(), listening()
        first, second = Listener("p"), Listener("p")
        first.start(closed)
        second.start(kept)
        assert first.stop() is None
        assert closed.fileno() == -1
        assert second.stop(keep_listener=True) is kept
        assert kept.fileno() != -1 and second.sock is None
        assert second.stop() is None  # nothing left to close
        kept.close()

    run(scenario)


def test_a_kept_socket_stops_being_accepted_on() -> None:
    async def scenario() -> None:
        sock = listening()
        calls: list[socket.socket] = []

        async def on_client(client: socket.socket) -> None:
            calls.append(client)

        listener = Listener("p")
        listener.start(sock, on_client)
        await asyncio.sleep(0)  # the loop is waiting in accept
        assert listener.stop(keep_listener=True) is sock
        client = await connect(sock)  # queued in the backlog, for whoever serves next
        await asyncio.sleep(0.05)
        assert calls == []
        client.close()
        sock.close()

    run(scenario)


def test_a_failed_accept_is_logged_and_retried(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(listener_module, "ACCEPT_RETRY_DELAY", 0.01)

    async def scenario() -> None:
        sock = listening()
        loop = asyncio.get_running_loop()
        real_accept = loop.sock_accept
        failures = [OSError(24, "Too many open files")]

        async def flaky_accept(listening_sock: socket.socket) -> tuple[socket.socket, Any]:
            if failures:
                raise failures.pop()
            return await real_accept(listening_sock)

        monkeypatch.setattr(loop, "sock_accept", flaky_accept)
        accepted: asyncio.Queue[socket.socket] = asyncio.Queue()

        async def on_client(client: socket.socket) -> None:
            await accepted.put(client)

        listener = Listener("flaky")
        listener.start(sock, on_client)
        client = await connect(sock)
        (await accepted.get()).close()
        listener.stop()
        client.close()

    run(scenario)
    assert "proxy flaky: accept failed: [Errno 24] Too many open files" in caplog.text
