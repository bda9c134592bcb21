"""Streaming traffic processes: ``python -m bench.stream_workers ROLE [options]``.

SSE clients of the LLM stub (one stream, many streams), a timing tap that relays SSE
streams and timestamps their events, and a WebSocket echo server and client. The
conventions are those of `bench.workers`: servers print ``PORT <n>`` first, measuring
roles print one JSON object as their last stdout line, every role has a ``--max-seconds``
deadline, all traffic is on 127.0.0.1. Timestamps are ``time.monotonic_ns()``:
CLOCK_MONOTONIC, one clock for every process of the machine, so times taken in
different processes can be subtracted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import selectors
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from bench.workers import HOST, emit, listen_and_announce, raise_open_file_limit, run_async

RECV_SIZE = 1 << 20
CONNECT_GATE = 64  # connections opened at once by the many-streams and WebSocket clients
END = ""  # the last message of a streaming WebSocket run
PIPELINE = 100  # messages in flight on a streaming WebSocket connection


# -- SSE: the request and an incremental event counter -------------------------------------------


def sse_request(port: int, tokens: int, pace_ms: float) -> bytes:
    """A streaming chat completion request for `tokens` tokens paced `pace_ms` apart (stub script)."""
    body = json.dumps(
        {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "x"}],
            "stream": True,
            "stub": {"tokens": tokens, "pace_ms": pace_ms},
        }
    ).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: text/event-stream\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


class EventCounter:
    """Counts the Server-Sent Events of one HTTP/1.1 response as its bytes arrive.

    Parses the head, undoes chunked transfer coding (whose chunk boundaries a proxy may
    place anywhere, even inside an event) and counts the blank lines (``\\n\\n``) that end
    events: an event has arrived when its last byte has. ``done`` once the body ended.
    """

    def __init__(self) -> None:
        self.status = 0
        self.events = 0
        self.done = False
        self._head = b""
        self._in_body = False
        self._chunked = False
        self._remaining = 0  # bytes left in the current chunk
        self._skip = 0  # bytes of the CRLF after a chunk still to skip
        self._line = b""  # an incomplete chunk-size line
        self._tail = b""  # the body's last byte so far (a blank line may straddle two reads)

    def feed(self, data: bytes) -> int:
        """Take received bytes; return how many events they complete."""
        before = self.events
        if not self._in_body:
            data = self._feed_head(data)
        if self._chunked:
            self._feed_chunked(data)
        elif data:
            self._body(data)
        return self.events - before

    def _feed_head(self, data: bytes) -> bytes:
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            return b""
        head, rest = self._head[:end].decode("latin-1"), self._head[end + 4 :]
        lines = head.split("\r\n")
        self.status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip().lower() for k, _, v in (line.partition(":") for line in lines[1:])}
        self._chunked = headers.get("transfer-encoding") == "chunked"
        self._in_body = True
        return rest

    def _feed_chunked(self, data: bytes) -> None:
        pos, end = 0, len(data)
        while pos < end and not self.done:
            if self._remaining:
                take = min(self._remaining, end - pos)
                self._body(data[pos : pos + take])
                self._remaining -= take
                pos += take
                self._skip = 0 if self._remaining else 2
            elif self._skip:
                take = min(self._skip, end - pos)
                self._skip -= take
                pos += take
            else:
                newline = data.find(b"\n", pos)
                if newline < 0:
                    self._line += data[pos:]
                    return
                line, self._line, pos = self._line + data[pos:newline], b"", newline + 1
                self._remaining = int(line.split(b";")[0].strip(), 16)
                self.done = self._remaining == 0  # the last chunk (any trailers are ignored)

    def _body(self, piece: bytes) -> None:
        self.events += (self._tail + piece).count(b"\n\n")
        self._tail = piece[-1:]


# -- sse_read: one stream, timed at the client ----------------------------------------------------


def sse_read(port: int, tokens: int, pace_ms: float, times: bool, max_seconds: float) -> None:
    """Read one stream from `port`; report its event count, when the first and last events arrived
    (and how many came with the first read) and, with `times`, every event's arrival time."""
    counter, buffer = EventCounter(), bytearray(RECV_SIZE)
    arrivals: list[int] = []
    first_ns = last_ns = first_events = 0
    with socket.create_connection((HOST, port), timeout=max_seconds) as sock:
        sock.sendall(sse_request(port, tokens, pace_ms))
        deadline = time.monotonic() + max_seconds
        while not counter.done and (n := sock.recv_into(buffer)):
            now = time.monotonic_ns()
            got = counter.feed(bytes(buffer[:n]))
            if got:
                if not first_ns:
                    first_ns, first_events = now, got
                last_ns = now
                if times:
                    arrivals += [now] * got
            if time.monotonic() > deadline:
                raise TimeoutError("worker deadline passed")
    if counter.status != 200:
        raise ValueError(f"HTTP {counter.status}")
    emit({"events": counter.events, "first_ns": first_ns, "first_events": first_events, "last_ns": last_ns,
          "complete": counter.done, "arrivals": arrivals})  # fmt: skip


# -- sse_tap: a relay that timestamps the events leaving the upstream -----------------------------


@dataclass
class TapPair:
    """A client connection and its upstream connection, with the upstream response's events."""

    client: socket.socket
    upstream: socket.socket
    counter: EventCounter = field(default_factory=EventCounter)
    arrivals: list[int] = field(default_factory=list)
    reported: bool = False

    def close(self, selector: selectors.BaseSelector) -> None:
        for sock in (self.client, self.upstream):
            with contextlib.suppress(KeyError, ValueError):
                selector.unregister(sock)
            sock.close()


def sse_tap(upstream: int, max_seconds: float) -> None:
    """Relay every connection to `upstream` (the stub), both ways; timestamp each event of the
    upstream's response as the tap receives it, before passing it on, and print one JSON line per
    response when it ends. Stops when stdin closes or `max_seconds` pass."""
    deadline = time.monotonic() + max_seconds
    selector = selectors.DefaultSelector()
    server = listen_and_announce()
    selector.register(server, selectors.EVENT_READ, None)
    selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "stdin")
    buffer = bytearray(RECV_SIZE)
    while (remaining := deadline - time.monotonic()) > 0:
        for key, _ in selector.select(remaining):
            if key.data == "stdin":
                return
            if key.data is None:
                _tap_accept(server, upstream, selector, max_seconds)
            else:
                pair, from_upstream = key.data
                _tap_relay(pair, from_upstream, buffer, selector)


def _tap_accept(server: socket.socket, upstream: int, selector: selectors.BaseSelector, timeout: float) -> None:
    client, _ = server.accept()
    pair = TapPair(client, socket.create_connection((HOST, upstream), timeout=timeout))
    for sock in (client, pair.upstream):
        sock.settimeout(timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    selector.register(client, selectors.EVENT_READ, (pair, False))
    selector.register(pair.upstream, selectors.EVENT_READ, (pair, True))


def _tap_relay(pair: TapPair, from_upstream: bool, buffer: bytearray, selector: selectors.BaseSelector) -> None:
    source, target = (pair.upstream, pair.client) if from_upstream else (pair.client, pair.upstream)
    try:
        n = source.recv_into(buffer)
        now = time.monotonic_ns()
        if n:
            data = bytes(buffer[:n])
            if from_upstream:
                pair.arrivals += [now] * pair.counter.feed(data)
            target.sendall(data)
    except OSError:
        n = 0
    if from_upstream and (pair.counter.done or not n) and not pair.reported:
        pair.reported = True
        print(json.dumps({"events": pair.counter.events, "arrivals": pair.arrivals}), flush=True)
    if not n:
        pair.close(selector)


# -- sse_many: concurrent streams -----------------------------------------------------------------


@dataclass
class Arrivals:
    """Every read's time and how many events it completed, over all streams."""

    reads: list[tuple[int, int]] = field(default_factory=list)
    firsts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)


class _Stream(asyncio.Protocol):
    def __init__(self, arrivals: Arrivals, finished: asyncio.Future[None]) -> None:
        self.counter = EventCounter()
        self.arrivals = arrivals
        self.finished = finished
        self.started = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()
        got = self.counter.feed(data)
        if got:
            self.arrivals.reads.append((now, got))
            if not self.started:
                self.started = True
                self.arrivals.firsts.append(now)
        if self.counter.done and not self.finished.done():
            self.arrivals.ends.append(now)
            self.finished.set_result(None)
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.finished.done():
            self.finished.set_exception(EOFError(f"stream ended early after {self.counter.events} events"))


async def _open_stream(port: int, arrivals: Arrivals, gate: asyncio.Semaphore) -> tuple[_Stream, asyncio.Future[None]]:
    loop = asyncio.get_running_loop()
    finished: asyncio.Future[None] = loop.create_future()
    async with gate:
        _, stream = await loop.create_connection(lambda: _Stream(arrivals, finished), HOST, port)
    return stream, finished


async def sse_many(port: int, streams: int, tokens: int, pace_ms: float, max_seconds: float) -> None:
    """Open `streams` connections, then send every request at once and read all streams to the end.

    Reports the events received in all, from the first event of any stream to the end of the last
    one (``all_s``); those received while every stream was open together, from the last stream's
    first event to the first stream's end (``window_events`` in ``window_s``, negative when some
    streams ended before others began); and how many streams ended before the last one began."""
    raise_open_file_limit()
    arrivals, gate = Arrivals(), asyncio.Semaphore(CONNECT_GATE)
    opened = await asyncio.gather(*(_open_stream(port, arrivals, gate) for _ in range(streams)))
    sent = time.monotonic_ns()
    for stream, _ in opened:
        stream.transport.write(sse_request(port, tokens, pace_ms))
    await asyncio.wait_for(asyncio.gather(*(finished for _, finished in opened)), max_seconds)
    start, end = max(arrivals.firsts), min(arrivals.ends)
    total = sum(s.counter.events for s, _ in opened)
    window = sum(n for t, n in arrivals.reads if start < t <= end)
    early = sum(1 for t in arrivals.ends if t < start)
    emit({"streams": streams, "events": total, "window_events": window, "window_s": (end - start) / 1e9,
          "all_s": (max(arrivals.ends) - min(arrivals.firsts)) / 1e9, "ended_before_last_began": early,
          "first_event_ms": sorted(round((t - sent) / 1e6, 3) for t in arrivals.firsts)})  # fmt: skip


# -- WebSocket echo -------------------------------------------------------------------------------


async def ws_echo(max_seconds: float) -> None:
    """A `websockets` echo server (compression off, as on the engine's hops): every message back."""
    from websockets.asyncio.server import ServerConnection, serve

    async def handler(ws: ServerConnection) -> None:
        with contextlib.suppress(Exception):
            async for message in ws:
                await ws.send(message)

    raise_open_file_limit()
    async with serve(handler, sock=listen_and_announce(), compression=None, ping_interval=None, max_queue=64):
        await asyncio.sleep(max_seconds)


@dataclass
class Window:
    """The common measurement window of every connection of a WebSocket client run."""

    start: float
    end: float

    def counts(self, at: float) -> bool:
        return self.start <= at <= self.end


async def _ws_request_response(ws: Any, message: str, window: Window) -> int:
    """Send a message and wait for its echo, again and again, until the window ends; counts the
    round trips that started and ended within it."""
    done = 0
    while (sent_at := time.monotonic()) < window.end:
        await ws.send(message)
        if await ws.recv() != message:
            raise ValueError("echo returned a different message")
        done += window.start <= sent_at and time.monotonic() <= window.end
    return done


async def _ws_streaming(ws: Any, message: str, window: Window) -> int:
    """Keep PIPELINE messages in flight (a second task sends whenever an echo frees a slot) and count
    the echoes that arrive within the window; then send an empty message and drain the echoes up to
    its own. (Without a limit the sender, whose writes seldom wait, would queue up the whole run
    in socket buffers before the first echo is read.)"""
    slots = asyncio.Semaphore(PIPELINE)

    async def sender() -> None:
        while time.monotonic() < window.end:
            await slots.acquire()
            await ws.send(message)
        await ws.send(END)

    task = asyncio.create_task(sender())
    counted = 0
    try:
        while (echo := await ws.recv()) != END:
            slots.release()
            counted += window.counts(time.monotonic())
            if echo != message:
                raise ValueError("echo returned a different message")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return counted


async def ws_client(
    port: int, mode: str, connections: int, seconds: float, warmup: float, size: int, max_seconds: float
) -> None:
    """`connections` WebSocket connections (compression off) echoing `size`-byte text messages, either
    one at a time (``rr``: request/response) or pipelined (``stream``), for `warmup` s untimed and
    then `seconds` s timed; reports the messages echoed within the timed window."""
    raise_open_file_limit()
    gate = asyncio.Semaphore(CONNECT_GATE)
    message = ("0123456789abcdef" * (size // 16 + 1))[:size]
    run = _ws_request_response if mode == "rr" else _ws_streaming
    sockets = await asyncio.gather(*(_ws_connect(port, gate, max_seconds) for _ in range(connections)))
    try:
        start = time.monotonic() + warmup
        window = Window(start, start + seconds)
        counts = await asyncio.wait_for(asyncio.gather(*(run(ws, message, window) for ws in sockets)), max_seconds)
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    emit({"mode": mode, "connections": connections, "messages": sum(counts), "seconds": seconds,
          "per_connection_min": min(counts), "per_connection_max": max(counts)})  # fmt: skip


async def _ws_connect(port: int, gate: asyncio.Semaphore, timeout: float) -> Any:
    from websockets.asyncio.client import connect

    async with gate:
        return await connect(f"ws://{HOST}:{port}/echo", compression=None, proxy=None, ping_interval=None,
                             max_queue=64, open_timeout=timeout)  # fmt: skip


# -- command line ---------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.stream_workers", description=__doc__)
    roles = parser.add_subparsers(dest="role", required=True)
    reader = roles.add_parser("sse_read")
    reader.add_argument("--port", type=int, required=True)
    reader.add_argument("--tokens", type=int, required=True)
    reader.add_argument("--pace-ms", type=float, default=0.0)
    reader.add_argument("--times", action="store_true", help="report every event's arrival time")
    reader.add_argument("--max-seconds", type=float, default=60)
    tap = roles.add_parser("sse_tap")
    tap.add_argument("--upstream", type=int, required=True)
    tap.add_argument("--max-seconds", type=float, default=60)
    many = roles.add_parser("sse_many")
    many.add_argument("--port", type=int, required=True)
    many.add_argument("--streams", type=int, default=200)
    many.add_argument("--tokens", type=int, required=True)
    many.add_argument("--pace-ms", type=float, default=0.0)
    many.add_argument("--max-seconds", type=float, default=60)
    roles.add_parser("ws_echo").add_argument("--max-seconds", type=float, default=60)
    client = roles.add_parser("ws_client")
    client.add_argument("--port", type=int, required=True)
    client.add_argument("--mode", choices=("rr", "stream"), default="rr")
    client.add_argument("--connections", type=int, default=1)
    client.add_argument("--seconds", type=float, default=2.0)
    client.add_argument("--warmup", type=float, default=0.3)
    client.add_argument("--size", type=int, default=32)
    client.add_argument("--max-seconds", type=float, default=60)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.role == "sse_read":
        sse_read(args.port, args.tokens, args.pace_ms, args.times, args.max_seconds)
    elif args.role == "sse_tap":
        sse_tap(args.upstream, args.max_seconds)
    elif args.role == "sse_many":
        run_async(sse_many(args.port, args.streams, args.tokens, args.pace_ms, args.max_seconds))
    elif args.role == "ws_echo":
        run_async(ws_echo(args.max_seconds))
    else:
        run_async(ws_client(args.port, args.mode, args.connections, args.seconds, args.warmup, args.size,
                            args.max_seconds))  # fmt: skip


if __name__ == "__main__":
    main()
