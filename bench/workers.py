"""Traffic processes for the benchmarks: ``python -m bench.workers ROLE [options]``.

Each role runs in its own process, so senders, receivers, echo servers and the engine never
share a GIL. Servers print ``PORT <n>`` as their first stdout line once they listen; roles that
measure something print one JSON object as their last stdout line. Every role stops by itself:
sockets have timeouts and each role has a ``--max-seconds`` deadline. All traffic is on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import socket
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass
from typing import Any

HOST = "127.0.0.1"
BUFFER_SIZE = 1 << 20  # 1 MiB send buffers and receive buffer
SOURCE_CHUNK = 64 * 1024
MESSAGE = b"0123456789abcdef"  # the 16-byte message of the connection holder


def raise_open_file_limit() -> None:
    """Raise RLIMIT_NOFILE's soft limit to the hard limit (1,000 connections need 1,000+ fds)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def listen_and_announce() -> socket.socket:
    """A listening socket on a free port of 127.0.0.1, announced as ``PORT <n>`` on stdout."""
    sock = socket.create_server((HOST, 0), backlog=4096)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    return sock


def emit(result: dict[str, Any]) -> None:
    print(json.dumps(result), flush=True)


def run_async(main: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a project dependency
        asyncio.run(main)
    else:
        uvloop.run(main)


def recv_exact(sock: socket.socket, view: memoryview) -> None:
    """Fill `view` from `sock`; EOFError if the peer closes first."""
    got = 0
    while got < len(view):
        n = sock.recv_into(view[got:])
        if n == 0:
            raise EOFError("peer closed during a round trip")
        got += n


def check_deadline(deadline: float) -> None:
    if time.monotonic() > deadline:
        raise TimeoutError("worker deadline passed")


# -- echo: an asyncio (uvloop) echo server for any number of connections ---------------------


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)

    def eof_received(self) -> bool:
        return False  # close our side too


async def echo(max_seconds: float) -> None:
    """Echo every connection's bytes back until `max_seconds` pass (or the process is stopped)."""
    raise_open_file_limit()
    server = await asyncio.get_running_loop().create_server(_Echo, sock=listen_and_announce())
    async with server:
        await asyncio.sleep(max_seconds)


# -- sink / send: the two ends of a bulk transfer ----------------------------------------------


def sink(max_seconds: float) -> None:
    """Accept one connection, read it to EOF into a 1 MiB buffer; report bytes and first/last times."""
    deadline = time.monotonic() + max_seconds
    with listen_and_announce() as server:
        server.settimeout(max_seconds)
        conn, _ = server.accept()
    with conn:
        conn.settimeout(max_seconds)
        buffer = bytearray(BUFFER_SIZE)
        total, first = 0, 0.0
        while n := conn.recv_into(buffer):
            if not total:
                first = time.monotonic()
            total += n
            check_deadline(deadline)
        last = time.monotonic()
    emit({"bytes": total, "first": first, "last": last})


def send(port: int, total: int, max_seconds: float) -> None:
    """Connect to `port`, ``sendall`` `total` bytes in 1 MiB buffers, half-close, wait for EOF."""
    deadline = time.monotonic() + max_seconds
    data = memoryview(bytes(BUFFER_SIZE))
    start = time.monotonic()
    with socket.create_connection((HOST, port), timeout=max_seconds) as sock:
        sent = 0
        while sent < total:
            n = min(BUFFER_SIZE, total - sent)
            sock.sendall(data[:n])
            sent += n
            check_deadline(deadline)
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):
            check_deadline(deadline)
    emit({"bytes": sent, "start": start, "end": time.monotonic()})


# -- pingpong: round trips of a small message ---------------------------------------------------


def pingpong(port: int, count: int, warmup: int, size: int, max_seconds: float, cpu: int | None) -> None:
    """`warmup` untimed then `count` timed round trips of `size` bytes; reports each RTT in µs.
    With `cpu`, the process first pins itself to that CPU."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    deadline = time.monotonic() + max_seconds
    message = (MESSAGE * (size // len(MESSAGE) + 1))[:size]
    view = memoryview(bytearray(size))
    samples: list[float] = []
    with socket.create_connection((HOST, port), timeout=max_seconds) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(warmup + count):
            t0 = time.perf_counter_ns()
            sock.sendall(message)
            recv_exact(sock, view)
            t1 = time.perf_counter_ns()
            if i >= warmup:
                samples.append((t1 - t0) / 1000)
            check_deadline(deadline)
        if bytes(view) != message:
            raise ValueError("echo returned different bytes")
    emit({"rtt_us": [round(s, 2) for s in samples]})


# -- source / rate: a fast sender and a receiver that measures the arrival rate --------------


def source(max_seconds: float) -> None:
    """Accept one connection and send to it as fast as it takes data, until it closes or time's up."""
    deadline = time.monotonic() + max_seconds
    with listen_and_announce() as server:
        server.settimeout(max_seconds)
        conn, _ = server.accept()
    data = bytes(SOURCE_CHUNK)
    sent = 0
    with conn, contextlib.suppress(OSError):
        conn.settimeout(max(1.0, max_seconds))
        while time.monotonic() < deadline:
            conn.sendall(data)
            sent += len(data)
    emit({"sent": sent})


def rate(port: int, window: float, max_seconds: float) -> None:
    """Connect to `port` and count the bytes arriving in the `window` seconds after the first byte.

    Reports the first read's size, the bytes read within the window (first read included) and
    when, after the first byte, the last read of the window returned.
    """
    with socket.create_connection((HOST, port), timeout=max_seconds) as sock:
        buffer = bytearray(BUFFER_SIZE)
        first_bytes = sock.recv_into(buffer)
        first = time.monotonic()
        if not first_bytes:
            raise EOFError("no data before EOF")
        end, total, last = first + window, first_bytes, first
        while (remaining := end - time.monotonic()) > 0:
            sock.settimeout(remaining)
            try:
                n = sock.recv_into(buffer)
            except TimeoutError:
                break
            now = time.monotonic()
            if n == 0 or now > end:
                break
            total, last = total + n, now
    emit({"first_bytes": first_bytes, "window_bytes": total, "last_offset": last - first, "window": window})


# -- hold: many concurrent connections with light traffic ---------------------------------------


@dataclass
class HoldStats:
    opened: int = 0
    failed_to_open: int = 0
    round_trips: int = 0
    errors: int = 0
    mismatches: int = 0
    max_rtt_ms: float = 0.0


async def _open_checked(port: int, gate: asyncio.Semaphore) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection on which one full round trip (through the proxy to the echo server) succeeded."""
    async with gate:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 10)
        writer.write(MESSAGE)
        try:
            if await asyncio.wait_for(reader.readexactly(len(MESSAGE)), 10) != MESSAGE:
                raise ValueError("bad echo")
        except BaseException:
            writer.close()
            raise
        return reader, writer


async def _chatter(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    running: Callable[[], bool],
    stats: HoldStats,
    interval: float,
) -> None:
    """Round trips of 16 bytes at random pauses averaging `interval` seconds, while `running()`."""
    rng = random.Random()
    try:
        while running():
            await asyncio.sleep(rng.uniform(0, 2 * interval))
            t0 = time.monotonic()
            writer.write(MESSAGE)
            data = await asyncio.wait_for(reader.readexactly(len(MESSAGE)), 10)
            stats.max_rtt_ms = max(stats.max_rtt_ms, (time.monotonic() - t0) * 1000)
            stats.round_trips += 1
            stats.mismatches += data != MESSAGE
    except (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError):
        stats.errors += 1
    finally:
        writer.close()


def _stdin_closed() -> asyncio.Event:
    """An event set when stdin reaches EOF (the parent's signal to stop)."""
    closed = asyncio.Event()
    loop, fd = asyncio.get_running_loop(), sys.stdin.fileno()

    def on_readable() -> None:
        if not os.read(fd, 4096):
            loop.remove_reader(fd)
            closed.set()

    loop.add_reader(fd, on_readable)
    return closed


async def hold(port: int, connections: int, interval: float, max_seconds: float) -> None:
    """Open `connections` connections (each verified by a round trip), print ``READY <open> <failed>``,
    then keep light traffic on all of them until stdin closes or `max_seconds` pass."""
    raise_open_file_limit()
    stop = _stdin_closed()
    gate = asyncio.Semaphore(64)
    opened = await asyncio.gather(*(_open_checked(port, gate) for _ in range(connections)), return_exceptions=True)
    streams = [item for item in opened if not isinstance(item, BaseException)]
    stats = HoldStats(opened=len(streams), failed_to_open=connections - len(streams))
    print(f"READY {stats.opened} {stats.failed_to_open}", flush=True)
    tasks = [asyncio.create_task(_chatter(r, w, lambda: not stop.is_set(), stats, interval)) for r, w in streams]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), max_seconds)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 2 * interval + 15)
    emit(asdict(stats))


# -- command line ---------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.workers", description=__doc__)
    roles = parser.add_subparsers(dest="role", required=True)
    for name in ("echo", "sink", "source"):
        roles.add_parser(name).add_argument("--max-seconds", type=float, default=60)
    sender = roles.add_parser("send")
    sender.add_argument("--port", type=int, required=True)
    sender.add_argument("--bytes", type=int, required=True)
    sender.add_argument("--max-seconds", type=float, default=60)
    ping = roles.add_parser("pingpong")
    ping.add_argument("--port", type=int, required=True)
    ping.add_argument("--count", type=int, default=20_000)
    ping.add_argument("--warmup", type=int, default=2_000)
    ping.add_argument("--size", type=int, default=16)
    ping.add_argument("--max-seconds", type=float, default=60)
    ping.add_argument("--cpu", type=int, help="pin this process to one CPU")
    receiver = roles.add_parser("rate")
    receiver.add_argument("--port", type=int, required=True)
    receiver.add_argument("--window", type=float, default=5.0)
    receiver.add_argument("--max-seconds", type=float, default=30)
    holder = roles.add_parser("hold")
    holder.add_argument("--port", type=int, required=True)
    holder.add_argument("--connections", type=int, default=1000)
    holder.add_argument("--interval", type=float, default=0.5)
    holder.add_argument("--max-seconds", type=float, default=60)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    role = args.role
    if role == "echo":
        run_async(echo(args.max_seconds))
    elif role == "sink":
        sink(args.max_seconds)
    elif role == "send":
        send(args.port, args.bytes, args.max_seconds)
    elif role == "pingpong":
        pingpong(args.port, args.count, args.warmup, args.size, args.max_seconds, args.cpu)
    elif role == "source":
        source(args.max_seconds)
    elif role == "rate":
        rate(args.port, args.window, args.max_seconds)
    else:
        run_async(hold(args.port, args.connections, args.interval, args.max_seconds))


if __name__ == "__main__":
    main()
