"""Helpers shared by the engine's black-box data-plane tests (``test_tcp_*.py``).

This module holds no tests: it is named ``test_tcp_*`` only to live beside the tests that
import it. Everything here talks to a real engine over real 127.0.0.1 sockets; every
blocking call has a timeout and every loop is bounded.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal

import httpx

#: Timeout of every blocking socket call (seconds): generous, only there to avoid hangs.
IO_TIMEOUT = 5.0
#: Every API call made while connections are broken must answer within this (seconds).
API_BOUND = 2.0

Address = tuple[str, int]
Outcome = Literal["eof", "reset", "open"]

_LINGER_ZERO = struct.pack("ii", 1, 0)


# -- API ----------------------------------------------------------------------------------


def create_proxy(api: httpx.Client, upstream: str, name: str = "tcp") -> Address:
    """Create an enabled proxy on a free 127.0.0.1 port; returns its real address."""
    response = api.post("/proxies", json={"name": name, "upstream": upstream, "listen": "127.0.0.1:0"})
    assert response.status_code == 201, response.text
    host, port = response.json()["listen"].rsplit(":", 1)
    return host, int(port)


def add_toxic(
    api: httpx.Client,
    proxy: str,
    type_name: str,
    *,
    stream: str = "downstream",
    attributes: dict[str, int] | None = None,
    name: str | None = None,
    toxicity: float | None = None,
    ttl: float | None = None,
) -> str:
    """Add a toxic; returns its name."""
    body: dict[str, Any] = {"type": type_name, "stream": stream, "attributes": attributes or {}}
    if name is not None:
        body["name"] = name
    if toxicity is not None:
        body["toxicity"] = toxicity
    if ttl is not None:
        body["ttl"] = ttl
    response = api.post(f"/proxies/{proxy}/toxics", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["name"])


def update_toxic(api: httpx.Client, proxy: str, toxic: str, **body: Any) -> None:
    response = api.patch(f"/proxies/{proxy}/toxics/{toxic}", json=body)
    assert response.status_code == 200, response.text


def remove_toxic(api: httpx.Client, proxy: str, toxic: str) -> None:
    response = api.delete(f"/proxies/{proxy}/toxics/{toxic}")
    assert response.status_code == 204, response.text


def set_enabled(api: httpx.Client, proxy: str, enabled: bool) -> dict[str, Any]:
    response = api.post(f"/proxies/{proxy}", json={"enabled": enabled})
    assert response.status_code == 200, response.text
    return dict(response.json())


def toxic_names(api: httpx.Client, proxy: str = "tcp") -> list[str]:
    """The names of a proxy's toxics, in the order the API lists them."""
    response = api.get(f"/proxies/{proxy}/toxics")
    assert response.status_code == 200
    return [toxic["name"] for toxic in response.json()]


def timed_call(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    """Make an API call; returns the response and how long it took (seconds)."""
    start = time.monotonic()
    response = call()
    return response, time.monotonic() - start


# -- sockets ------------------------------------------------------------------------------


def connect(address: Address, timeout: float = IO_TIMEOUT) -> socket.socket:
    sock = socket.create_connection(address, timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exact(sock: socket.socket, size: int) -> bytes:
    """Read exactly ``size`` bytes (fails on an early end of stream)."""
    parts: list[bytes] = []
    got = 0
    while got < size:
        part = sock.recv(min(size - got, 1 << 20))
        assert part, f"end of stream after {got} of {size} bytes"
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def read_to_close(sock: socket.socket, limit: int = 64 << 20) -> tuple[bytes, Outcome]:
    """Read until the stream ends; returns what was read and how it ended.

    ``open`` means the peer neither sent more nor closed within the socket's timeout.
    """
    parts: list[bytes] = []
    got = 0
    while got <= limit:
        try:
            part = sock.recv(1 << 20)
        except ConnectionResetError:
            return b"".join(parts), "reset"
        except TimeoutError:
            return b"".join(parts), "open"
        if not part:
            return b"".join(parts), "eof"
        parts.append(part)
        got += len(part)
    raise AssertionError(f"more than {limit} bytes before the end of the stream")


def close_outcome(sock: socket.socket, timeout: float = IO_TIMEOUT) -> tuple[Outcome, float]:
    """Wait for the stream to end with nothing more arriving; returns how and when (s)."""
    sock.settimeout(timeout)
    start = time.monotonic()
    data, outcome = read_to_close(sock)
    assert data == b"", f"unexpected data before the close: {data[:64]!r}"
    return outcome, time.monotonic() - start


def assert_silent(sock: socket.socket, window: float) -> None:
    """Nothing arrives and the stream does not end during ``window`` seconds."""
    sock.settimeout(window)
    try:
        data = sock.recv(65536)
    except TimeoutError:
        return
    finally:
        sock.settimeout(IO_TIMEOUT)
    raise AssertionError(f"expected silence, got {data[:64]!r}" if data else "expected silence, got EOF")


def round_trip(sock: socket.socket, payload: bytes = b"ping") -> float:
    """Send ``payload`` through an echo upstream and read it back; returns the seconds it took."""
    start = time.monotonic()
    sock.sendall(payload)
    assert recv_exact(sock, len(payload)) == payload
    return time.monotonic() - start


def exchange(client: socket.socket, server: socket.socket, payload: bytes) -> None:
    """Send ``payload`` client → server, then server → client, checking both arrive intact."""
    client.sendall(payload)
    assert recv_exact(server, len(payload)) == payload
    server.sendall(payload)
    assert recv_exact(client, len(payload)) == payload


def read_all_at_once(
    socks: list[socket.socket], size: int, start: float, timeout: float = IO_TIMEOUT
) -> list[tuple[bytes, float]]:
    """Read ``size`` bytes from every socket concurrently.

    Returns, per socket in order, what it read and when it had all of it (seconds since
    ``start``, a `time.monotonic` value).
    """
    buffers = {sock: bytearray() for sock in socks}
    finished: dict[socket.socket, float] = {}
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        for sock in socks:
            selector.register(sock, selectors.EVENT_READ)
        while len(finished) < len(socks):
            remaining = deadline - time.monotonic()
            assert remaining > 0, (
                f"only {len(finished)} of {len(socks)} sockets got {size} bytes in time"
            )
            for key, _ in selector.select(remaining):
                ready = key.fileobj
                assert isinstance(ready, socket.socket)
                sock = ready
                part = sock.recv(1 << 20)
                assert part, f"end of stream after {len(buffers[sock])} of {size} bytes"
                buffers[sock] += part
                if len(buffers[sock]) >= size:
                    finished[sock] = time.monotonic() - start
                    selector.unregister(sock)
    return [(bytes(buffers[sock]), finished[sock]) for sock in socks]


def assert_delay(elapsed: float, expected: float, slack: float = 0.15) -> None:
    """``elapsed`` is at least ``expected`` (less timer rounding) and at most ``slack`` more."""
    assert expected - 0.005 <= elapsed < expected + slack, (
        f"took {elapsed:.3f}s, expected ~{expected:.3f}s"
    )


def abort(sock: socket.socket) -> None:
    """Close with a TCP RST (SO_LINGER 0)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
    sock.close()


def unused_port() -> int:
    """A 127.0.0.1 port that nothing listens on (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Upstream:
    """A listening socket that the test accepts from itself: full control of the server side."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(IO_TIMEOUT)
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"

    def accept(self) -> socket.socket:
        conn, _ = self.listener.accept()
        conn.settimeout(IO_TIMEOUT)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def close(self) -> None:
        self.listener.close()

    def __enter__(self) -> Upstream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def proxied_pair(
    api: httpx.Client, upstream: Upstream, name: str = "tcp"
) -> Iterator[tuple[socket.socket, socket.socket]]:
    """A client connected through a new proxy, and the upstream side of that connection."""
    address = create_proxy(api, upstream.address, name)
    with connect(address) as client, upstream.accept() as server:
        wait_until_open(api, name, 1)
        yield client, server


def wait_until_open(api: httpx.Client, name: str, count: int) -> None:
    """Wait until proxy ``name`` holds ``count`` open connections.

    The upstream accepts as soon as the engine dials it; the engine registers the connection
    (and from then on splices toxics into it) a moment later, in its own time.
    """
    deadline = time.monotonic() + IO_TIMEOUT
    while (opened := api.get(f"/proxies/{name}/stats").json()["connections"]["open"]) != count:
        assert time.monotonic() < deadline, f"proxy {name} holds {opened} open connections, not {count}"
        time.sleep(0.01)


def counter_bytes(start: int, count: int) -> bytes:
    """``count`` consecutive 4-byte big-endian integers from ``start``."""
    return struct.pack(f">{count}I", *range(start, start + count))


class Worker(threading.Thread):
    """A daemon thread that keeps the exception its target raised, for the test to re-raise."""

    def __init__(self, target: Callable[[], None]) -> None:
        super().__init__(daemon=True)
        self._target_fn = target
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._target_fn()
        except BaseException as exc:
            self.error = exc

    def finish(self, timeout: float) -> None:
        """Join within ``timeout`` seconds and re-raise what the target raised."""
        self.join(timeout)
        assert not self.is_alive(), f"worker still running after {timeout}s"
        if self.error is not None:
            raise self.error


def start_worker(target: Callable[[], None]) -> Worker:
    worker = Worker(target)
    worker.start()
    return worker
