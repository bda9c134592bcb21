"""Helpers for the websocket proxy's black-box tests: a real upstream server, real clients.

This module holds no tests. The upstream is a `websockets` asyncio server on 127.0.0.1 in
a thread of its own; tests drive each of its connections (`UpstreamPeer`) from the test
thread. Clients use `websockets`' sync client. Every wait has a timeout and every loop a
bound; nothing sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import socket
import threading
from collections.abc import Coroutine, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import httpx
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

#: Timeout of every wait (seconds): generous, only there to turn a hang into a failure.
TIMEOUT = 5.0
#: Most messages a helper reads before giving up.
MAX_MESSAGES = 10_000

T = TypeVar("T")
Data = str | bytes


def event(kind: str, seq: int, **extra: Any) -> str:
    """A chat-backend style JSON event."""
    return json.dumps({"type": kind, "seq": seq, **extra})


def kinds(messages: Sequence[Data]) -> list[tuple[str, int]]:
    """``(type, seq)`` of JSON events, for compact assertions."""
    decoded = [json.loads(m) for m in messages]
    return [(d["type"], d["seq"]) for d in decoded]


class TrackedConnection(ServerConnection):
    """A server connection that tells when its sender is blocked (write buffer full)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.writing_blocked = threading.Event()

    def pause_writing(self) -> None:
        super().pause_writing()
        self.writing_blocked.set()


class UpstreamPeer:
    """The upstream server's side of one proxied connection."""

    def __init__(self, server: WsUpstream, ws: TrackedConnection) -> None:
        self.server = server
        self.ws = ws
        assert ws.request is not None
        self.request: Request = ws.request
        self.subprotocol = ws.subprotocol
        self.received: list[Data] = []
        #: Close code the upstream received (1006: none, the TCP connection just ended).
        self.close_code: int | None = None
        self.close_reason = ""
        self._changed = threading.Condition()
        self._closed = threading.Event()

    def send(self, *messages: Data) -> None:
        async def send_all() -> None:
            for message in messages:
                await self.ws.send(message)

        self.server.call(send_all())

    def start_sending(self, messages: Iterable[Data]) -> concurrent.futures.Future[None]:
        """Send ``messages`` without waiting for them to be sent."""

        async def send_all() -> None:
            for message in messages:
                await self.ws.send(message)

        return asyncio.run_coroutine_threadsafe(send_all(), self.server.loop)

    def wait_blocked(self, timeout: float = TIMEOUT) -> None:
        """Wait until a send blocks because nobody reads (the write buffer is full)."""
        assert self.ws.writing_blocked.wait(timeout), "the upstream's sends never blocked"

    def close(self, code: int = 1000, reason: str = "") -> None:
        self.server.call(self.ws.close(code, reason))

    def close_without_code(self) -> None:
        """Send a close frame with no status code (the receiver reports 1005)."""

        def send() -> None:
            self.ws.protocol.send_close()
            self.ws.send_data()

        self.server.loop.call_soon_threadsafe(send)

    def ping(self) -> None:
        """Ping the proxy and wait for its pong: it has then read everything sent before."""

        async def ping() -> None:
            await (await self.ws.ping())

        self.server.call(ping())

    def abort(self) -> None:
        """End the TCP connection without a close frame."""
        self.server.loop.call_soon_threadsafe(self.ws.transport.abort)

    def wait_received(self, count: int, timeout: float = TIMEOUT) -> list[Data]:
        """The first ``count`` messages received (fails if they do not all arrive)."""
        with self._changed:
            arrived = self._changed.wait_for(lambda: len(self.received) >= count, timeout)
            assert arrived, f"upstream received {self.received!r}, expected {count} messages"
            return list(self.received[:count])

    def wait_closed(self, timeout: float = TIMEOUT) -> tuple[int | None, str]:
        """Code and reason of the close the upstream received (1006: none)."""
        assert self._closed.wait(timeout), "the upstream connection did not close"
        return self.close_code, self.close_reason

    async def serve(self) -> None:
        try:
            async for message in self.ws:
                with self._changed:
                    self.received.append(message)
                    self._changed.notify_all()
                if self.server.echo:
                    await self.ws.send(message)
        except ConnectionClosed:
            pass
        finally:
            received = self.ws.protocol.close_rcvd
            self.close_code = 1006 if received is None else received.code
            self.close_reason = "" if received is None else received.reason
            self._closed.set()


class WsUpstream:
    """A WebSocket server on 127.0.0.1 (echo by default) in a thread with its own loop.

    ``refuse`` (status, body, headers) makes it refuse handshakes; ``subprotocols`` are
    the ones it accepts; ``greeting`` is sent to each client as soon as it connects.
    """

    def __init__(
        self, echo: bool = True, subprotocols: Sequence[str] | None = None, greeting: Sequence[Data] = ()
    ) -> None:
        self.echo = echo
        self.greeting = list(greeting)
        self.refuse: tuple[int, str, dict[str, str]] | None = None
        self.peers: list[UpstreamPeer] = []
        self._arrived = threading.Condition()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.server: Server = self.call(self._start(subprotocols))
        self.port = self.server.sockets[0].getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"

    async def _start(self, subprotocols: Sequence[str] | None) -> Server:
        return await serve(
            self._handle,
            "127.0.0.1",
            0,
            subprotocols=[Subprotocol(s) for s in subprotocols] if subprotocols else None,
            process_request=self._process_request,
            compression=None,
            max_size=None,
            create_connection=TrackedConnection,
        )

    def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        if self.refuse is None:
            return None
        status, body, headers = self.refuse
        response = ws.respond(status, body)
        for name, value in headers.items():
            response.headers[name] = value
        return response

    async def _handle(self, ws: ServerConnection) -> None:
        assert isinstance(ws, TrackedConnection)
        for message in self.greeting:
            await ws.send(message)
        peer = UpstreamPeer(self, ws)
        with self._arrived:
            self.peers.append(peer)
            self._arrived.notify_all()
        await peer.serve()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = TIMEOUT) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def peer(self, index: int = 0, timeout: float = TIMEOUT) -> UpstreamPeer:
        """The ``index``-th connection the upstream accepted (waits for it)."""
        with self._arrived:
            arrived = self._arrived.wait_for(lambda: len(self.peers) > index, timeout)
            assert arrived, f"the upstream accepted {len(self.peers)} connections, expected {index + 1}"
            return self.peers[index]

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()
            await self.server.wait_closed()

        with contextlib.suppress(Exception):
            self.call(stop(), timeout=15)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(TIMEOUT)
        self.loop.close()

    def __enter__(self) -> WsUpstream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- API ----------------------------------------------------------------------------------


def create_ws_proxy(api: httpx.Client, upstream: str, name: str = "chat_ws") -> str:
    """Create an enabled websocket proxy on a free 127.0.0.1 port; returns ``host:port``."""
    response = api.post(
        "/proxies", json={"name": name, "upstream": upstream, "listen": "127.0.0.1:0", "protocol": "websocket"}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["listen"])


def add_toxic(
    api: httpx.Client,
    type_name: str,
    attributes: dict[str, Any] | None = None,
    *,
    proxy: str = "chat_ws",
    stream: str = "downstream",
    name: str | None = None,
    toxicity: float | None = None,
    ttl: float | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": type_name, "stream": stream, "attributes": attributes or {}}
    for key, value in (("name", name), ("toxicity", toxicity), ("ttl", ttl)):
        if value is not None:
            body[key] = value
    response = api.post(f"/proxies/{proxy}/toxics", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def stats(api: httpx.Client, proxy: str = "chat_ws") -> dict[str, Any]:
    response = api.get(f"/proxies/{proxy}/stats")
    assert response.status_code == 200, response.text
    return dict(response.json())


def fired(api: httpx.Client, toxic: str, proxy: str = "chat_ws") -> int:
    """How many times a toxic took effect."""
    return int(stats(api, proxy)["toxics"][toxic]["fired"])


def ping(client: ClientConnection) -> None:
    """Ping the proxy and wait for its pong: it has then read everything sent before."""
    assert client.ping().wait(TIMEOUT), "no pong from the proxy"


# -- clients ------------------------------------------------------------------------------


def open_client(listen: str, path: str = "/", **kwargs: Any) -> ClientConnection:
    kwargs.setdefault("open_timeout", TIMEOUT)
    kwargs.setdefault("close_timeout", TIMEOUT)
    kwargs.setdefault("compression", None)
    kwargs.setdefault("max_size", None)
    client: ClientConnection = connect(f"ws://{listen}{path}", **kwargs)
    return client


@contextlib.contextmanager
def proxied(
    api: httpx.Client,
    upstream: WsUpstream,
    path: str = "/",
    *,
    toxics: Sequence[dict[str, Any]] = (),
    **kwargs: Any,
) -> Iterator[tuple[ClientConnection, UpstreamPeer]]:
    """A client connected through the ``chat_ws`` proxy (created here, with ``toxics``: keyword
    arguments of `add_toxic`, added before the client connects) and its upstream peer."""
    listen = create_ws_proxy(api, upstream.address)
    for toxic in toxics:
        add_toxic(api, **toxic)
    before = len(upstream.peers)
    with open_client(listen, path, **kwargs) as client:
        yield client, upstream.peer(before)


def slow_client(listen: str, path: str = "/") -> ClientConnection:
    """A client that buffers little: a 64 KiB receive buffer, one queued message."""
    host, port = listen.rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.settimeout(TIMEOUT)
    sock.connect((host, int(port)))
    return open_client(listen, path, sock=sock, max_queue=1)


def recv_until(client: ClientConnection, last: Data, timeout: float = TIMEOUT) -> list[Data]:
    """Every message up to and including ``last``."""
    messages: list[Data] = []
    for _ in range(MAX_MESSAGES):
        message = client.recv(timeout=timeout)
        messages.append(message)
        if message == last:
            return messages
    raise AssertionError(f"{last!r} did not arrive in {MAX_MESSAGES} messages")


def recv_n(client: ClientConnection, count: int, timeout: float = TIMEOUT) -> list[Data]:
    return [client.recv(timeout=timeout) for _ in range(count)]


def recv_to_close(client: ClientConnection, timeout: float = TIMEOUT) -> tuple[list[Data], ConnectionClosed]:
    """Every message until the connection closes, and how it closed."""
    messages: list[Data] = []
    for _ in range(MAX_MESSAGES):
        try:
            messages.append(client.recv(timeout=timeout))
        except ConnectionClosed as exc:
            return messages, exc
    raise AssertionError(f"the connection did not close within {MAX_MESSAGES} messages")


def received_code(closed: ConnectionClosed) -> int:
    """The close code a client received (1006: no close frame)."""
    return 1006 if closed.rcvd is None else closed.rcvd.code


def header_values(headers: Headers, name: str) -> list[str]:
    return headers.get_all(name)
