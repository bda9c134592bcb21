"""A proxied TCP connection: two sockets, two links, one chain of toxics per link.

    client socket ──► Link(upstream)   ──► upstream socket
    client socket ◄── Link(downstream) ◄── upstream socket

With no toxics a link writes what it reads straight to the other socket (the fast
path: a byte count, one branch and one ``write`` per read). With toxics, reads go
through the link's `Chain`. Flow control is end to end:
a link stops reading its source while its destination's write buffer is full or its
chain holds more than its high-water mark.
End-of-stream is passed on as a half-close; the connection closes when both directions
have ended, when a toxic closes it, or when either socket fails (a reset is passed on as
a reset).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from chaos_service.engine.chain import Chain
from chaos_service.engine.model import Direction
from chaos_service.engine.timing import LoopScheduler
from chaos_service.toxics.base import Toxic

if TYPE_CHECKING:
    from chaos_service.engine.model import ToxicEntry

log = logging.getLogger(__name__)

_DEST_PAUSED = 1  # the destination's write buffer is above its high-water mark
_CHAIN_FULL = 2  # the chain holds more than its high-water mark
_NOT_READY = 4  # the destination socket is not attached yet

_LINGER_ZERO = struct.pack("ii", 1, 0)


class Link:
    """One direction of a connection; it is also the `Sink` at the end of its chain."""

    __slots__ = (
        "chain",
        "connection",
        "dest",
        "direct",
        "direction",
        "ended",
        "paused",
        "pending",
        "read_bytes",
        "source",
    )

    def __init__(self, connection: Connection, direction: Direction, loop: asyncio.AbstractEventLoop) -> None:
        self.connection = connection
        self.direction = direction
        self.source: asyncio.Transport | None = None
        self.dest: asyncio.Transport | None = None
        self.chain = Chain(
            LoopScheduler(loop), self, connection.rng, self._on_chain_pressure, on_applied=connection.on_applied
        )
        self.direct = False  # fast path: destination attached and no toxics
        self.paused = _NOT_READY
        self.pending: list[bytes | None] = []  # read before the destination was attached
        self.ended = False
        self.read_bytes = 0

    # -- source side --------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        if self.direct:
            self.dest.write(data)  # type: ignore[union-attr]
        elif self.dest is None:
            self.pending.append(data)
        else:
            self.chain.push(data)

    def feed_eof(self) -> None:
        if self.direct:
            self.end(False)
        elif self.dest is None:
            self.pending.append(None)
        else:
            self.chain.push_eof()

    def attach(self, source: asyncio.Transport, dest: asyncio.Transport) -> None:
        self.source, self.dest = source, dest
        self._update_direct()
        pending, self.pending = self.pending, []
        for item in pending:
            if item is None:
                self.feed_eof()
            else:
                self.feed(item)
        self._set_paused(_NOT_READY, False)

    def _update_direct(self) -> None:
        self.direct = self.dest is not None and self.chain.empty

    # -- toxics -------------------------------------------------------------------------

    def add_toxic(self, entry: ToxicEntry) -> None:
        self.chain.append(entry.name, _stream_toxic(entry), entry.toxicity)
        self._update_direct()

    def update_toxic(self, entry: ToxicEntry) -> None:
        self.chain.replace(entry.name, _stream_toxic(entry), entry.toxicity)

    def remove_toxic(self, name: str) -> None:
        self.chain.remove(name)
        self._update_direct()

    # -- flow control -------------------------------------------------------------------

    def dest_paused(self, paused: bool) -> None:
        self._set_paused(_DEST_PAUSED, paused)

    def _on_chain_pressure(self, full: bool) -> None:
        self._set_paused(_CHAIN_FULL, full)

    def _set_paused(self, reason: int, on: bool) -> None:
        before = self.paused
        self.paused = before | reason if on else before & ~reason
        source = self.source
        if source is None or source.is_closing() or bool(before) == bool(self.paused):
            return
        if self.paused:
            source.pause_reading()
        else:
            source.resume_reading()

    # -- Sink ---------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        self.dest.write(data)  # type: ignore[union-attr]

    def end(self, close_connection: bool) -> None:
        if close_connection:
            self.connection.close()
            return
        self.ended = True
        dest = self.dest
        if dest is not None and not dest.is_closing() and dest.can_write_eof():
            dest.write_eof()
        self.connection.direction_ended()

    def reset(self) -> None:
        self.connection.reset()


def _stream_toxic(entry: ToxicEntry) -> Toxic:
    assert isinstance(entry.toxic, Toxic), f"{entry.type_name} is not a tcp toxic"
    return entry.toxic


class _Side(asyncio.Protocol):
    """The protocol of one socket: what it reads feeds one link, what it writes drains another."""

    def __init__(self, connection: Connection, reads: Link, writes: Link) -> None:
        self.connection = connection
        self.reads = reads
        self.writes = writes
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        link = self.reads
        link.read_bytes += len(data)
        if link.direct:
            link.dest.write(data)  # type: ignore[union-attr]
        else:
            link.feed(data)

    def eof_received(self) -> bool:
        self.reads.feed_eof()
        return True  # keep the socket open for writing: end-of-stream is a half-close

    def pause_writing(self) -> None:
        self.writes.dest_paused(True)

    def resume_writing(self) -> None:
        self.writes.dest_paused(False)

    def connection_lost(self, exc: Exception | None) -> None:
        self.connection.lost(exc)


class Connection:
    """A client connection accepted by a proxy and its connection to the upstream."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        rng: random.Random,
        toxics: list[ToxicEntry],
        on_closed: Callable[[Connection], None],
        on_applied: Callable[[str], None] | None = None,
    ) -> None:
        self.rng = rng
        self._on_closed = on_closed
        self.on_applied = on_applied
        self.upstream = Link(self, Direction.UPSTREAM, loop)
        self.downstream = Link(self, Direction.DOWNSTREAM, loop)
        self.client_side = _Side(self, reads=self.upstream, writes=self.downstream)
        self.upstream_side = _Side(self, reads=self.downstream, writes=self.upstream)
        self.closed = False
        for entry in toxics:
            self.link(entry.direction).add_toxic(entry)

    def link(self, direction: Direction) -> Link:
        return self.upstream if direction is Direction.UPSTREAM else self.downstream

    async def attach(
        self, loop: asyncio.AbstractEventLoop, client: socket.socket, upstream: socket.socket
    ) -> None:
        """Wrap both connected sockets in transports and start forwarding."""
        up_transport, _ = await loop.create_connection(lambda: self.upstream_side, sock=upstream)
        client_transport, _ = await loop.connect_accepted_socket(lambda: self.client_side, client)
        if self.closed:  # closed (e.g. by a proxy stop) while the transports were being made
            up_transport.abort()
            client_transport.abort()
            return
        self.upstream.attach(client_transport, up_transport)
        self.downstream.attach(up_transport, client_transport)

    def direction_ended(self) -> None:
        if self.upstream.ended and self.downstream.ended:
            self.close()

    def lost(self, exc: Exception | None) -> None:
        if isinstance(exc, ConnectionResetError):
            self.reset()
        else:
            self.close()

    def bytes_read(self) -> dict[Direction, int]:
        """Bytes read from the client (upstream) and from the server (downstream) so far."""
        return {Direction.UPSTREAM: self.upstream.read_bytes, Direction.DOWNSTREAM: self.downstream.read_bytes}

    def _transports(self) -> list[asyncio.Transport]:
        return [t for t in (self.client_side.transport, self.upstream_side.transport) if t is not None]

    def close(self) -> None:
        """Close both sockets once what is already written to them has been sent."""
        if self._finish():
            for transport in self._transports():
                transport.close()

    def reset(self) -> None:
        """Abort both sockets with a TCP RST (SO_LINGER 0)."""
        if self._finish():
            for transport in self._transports():
                abort_with_reset(transport)

    def _finish(self) -> bool:
        if self.closed:
            return False
        self.closed = True
        self.upstream.chain.dispose()
        self.downstream.chain.dispose()
        self._on_closed(self)
        return True


def abort_with_reset(transport: asyncio.Transport) -> None:
    """Abort ``transport`` so that the peer sees a TCP RST (SO_LINGER 0), not a FIN."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
    transport.abort()
