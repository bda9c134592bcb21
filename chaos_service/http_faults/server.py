"""The client side of an http proxy: one asyncio protocol per connection, HTTP/1.1 by h11.

A connection reads requests one after the other (keep-alive and pipelining as h11
allows), buffers each body (up to `MAX_BODY`, else 413) and hands the request to its
`Host`, which writes the response through `send_head`, `write` and `send_end`.

A client that closes (or half-closes) its side while its response is in flight has gone
away: the request is cancelled, which cancels the upstream request too. Writing stops
while the socket's buffer is full (`write` waits), so a slow client slows the upstream
down instead of making the proxy buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Protocol

import h11

from chaos_service.engine.connection import abort_with_reset
from chaos_service.engine.stats import ProxyStats
from chaos_service.http_faults.replies import Reply, error_reply

log = logging.getLogger(__name__)

#: Largest request body accepted (larger: 413).
MAX_BODY = 16 * 1024 * 1024
#: Largest request head accepted (larger: 431, by h11's error hint).
MAX_HEAD = 64 * 1024
#: Above this many unread bytes (pipelined requests) the client is not read from.
MAX_UNREAD = 256 * 1024


class ClientGone(Exception):
    """The client connection closed; nothing more can be sent to it."""


class Host(Protocol):
    """What a connection needs from the runtime that accepted it."""

    stats: ProxyStats

    async def handle(self, connection: ClientConnection, request: h11.Request, body: bytes) -> None: ...

    async def closed(self, connection: ClientConnection) -> None:
        """The connection is closed: release what the host holds for it."""


class ClientConnection(asyncio.Protocol):
    """One accepted client connection and the task that serves its requests."""

    def __init__(self, host: Host, rng: random.Random) -> None:
        self.host = host
        self.rng = rng
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None
        self.closed = False
        self.write_paused = False
        self._chunked = False  # the response in progress uses chunked framing
        #: A request is being answered (from its head to the end of its response).
        self.busy = False
        self._finishing = False  # the task is closing down: cancelling it would cut that short
        self._head = False  # the request being answered is a HEAD
        self._read_paused = False
        self._read_waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.task = asyncio.get_running_loop().create_task(self._serve())

    def data_received(self, data: bytes) -> None:
        self.host.stats.upstream.bytes += len(data)
        try:
            self.h11.receive_data(data)
        except RuntimeError:  # data after the end of the connection: ignore it
            return
        if len(self.h11.trailing_data[0]) > MAX_UNREAD and self.transport is not None:
            self._read_paused = True
            self.transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        with contextlib.suppress(RuntimeError):
            self.h11.receive_data(b"")
        if self.busy:
            self._cancel()  # the client gave up on its response
        self._wake_reader()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._cancel()
        self._wake_reader()
        self._wake_writer()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake_writer()

    # -- responses (used by the host) ------------------------------------------------------

    def send_head(self, status: int, headers: list[tuple[bytes, bytes]], reason: bytes = b"") -> None:
        head = self.h11.send(h11.Response(status_code=status, headers=headers, reason=reason))
        assert head is not None
        # Upstream framing headers are never forwarded, so this is h11's choice of framing.
        self._chunked = b"\r\ntransfer-encoding: chunked\r\n" in head.lower()
        self._write(head)

    def send_data(self, data: bytes) -> None:
        """Queue body bytes; call `drain` when `write_paused`."""
        if self.closed:
            raise ClientGone()
        if self._chunked:
            # The fast path's one per-chunk cost that h11 adds (about 2 µs) for nothing:
            # h11 keeps no state for chunked data, and still ends the body itself.
            if data:
                self.transport.writelines((b"%x\r\n" % len(data), data, b"\r\n"))  # type: ignore[union-attr]
            return
        pieces = self.h11.send_with_data_passthrough(h11.Data(data=data))
        if pieces:
            self.transport.writelines(pieces)  # type: ignore[union-attr]

    async def drain(self) -> None:
        """Wait until the socket's buffer has room (or raise `ClientGone`)."""
        while self.write_paused and not self.closed:
            waiter = self._drain_waiter = asyncio.get_running_loop().create_future()
            await waiter
        if self.closed:
            raise ClientGone()

    async def write(self, data: bytes) -> None:
        self.send_data(data)
        if self.write_paused:
            await self.drain()

    def send_end(self) -> None:
        self._write(self.h11.send(h11.EndOfMessage()))

    def send_reply(self, reply: Reply) -> None:
        headers = [(name.encode(), value.encode()) for name, value in reply.headers]
        headers.append((b"content-length", str(len(reply.body)).encode()))
        self.send_head(reply.status, headers)
        if reply.body and not self._head:
            self.send_data(reply.body)
        self.send_end()

    def reset(self) -> None:
        """Abort the connection with a TCP RST."""
        transport = self.transport
        if transport is None or self.closed:
            return
        self.closed = True
        abort_with_reset(transport)

    def close(self) -> None:
        """Close the connection and cancel the request in flight (proxy stop)."""
        transport = self.transport
        if transport is not None and not transport.is_closing():
            if self.write_paused:
                transport.abort()  # a client that does not read would hold the close forever
            else:
                transport.close()
        self.closed = True
        self._cancel()

    # -- the request loop -----------------------------------------------------------------

    async def _serve(self) -> None:
        try:
            while await self._serve_one():
                self.h11.start_next_cycle()
        except (asyncio.CancelledError, ClientGone):
            pass  # stopped, or the client went away: nothing to tell anyone
        except h11.RemoteProtocolError as exc:
            self._refuse(exc.error_status_hint, f"Invalid HTTP request: {exc}")
        except Exception:
            log.exception("http proxy: request failed")
            self._refuse(500, "The proxy failed while handling the request.")
        finally:
            self._finishing = True
            if self.h11.our_state is h11.SEND_BODY:
                self.reset()  # mid-body: a plain close could pass for the end of the body
            else:
                self.close()
            await self.host.closed(self)

    async def _serve_one(self) -> bool:
        """Serve one request; whether the connection can carry another."""
        event = await self._next_event()
        if not isinstance(event, h11.Request):
            return False
        self.host.stats.upstream.messages += 1
        self._head = event.method == b"HEAD"
        self.busy = True
        try:
            body = await self._read_body(event)
            if body is not None:
                await self.host.handle(self, event, body)
        finally:
            self.busy = False
        return self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE and not self.closed

    async def _read_body(self, request: h11.Request) -> bytes | None:
        """The whole body, or None once a 413 was sent (the body stays unread)."""
        length = dict(request.headers).get(b"content-length", b"0")
        if int(length) > MAX_BODY:
            self._too_large()
            return None
        if self.h11.they_are_waiting_for_100_continue:
            self._write(self.h11.send(h11.InformationalResponse(status_code=100, headers=[])))
        chunks: list[bytes] = []
        size = 0
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > MAX_BODY:
                    self._too_large()
                    return None
                chunks.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return b"".join(chunks)
            else:
                raise ClientGone()

    async def _next_event(self) -> h11.Event | type[h11.PAUSED] | type[h11.NEED_DATA]:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            if self.closed:
                raise ClientGone()
            if self._read_paused and self.transport is not None:
                self._read_paused = False
                self.transport.resume_reading()
            waiter = self._read_waiter = asyncio.get_running_loop().create_future()
            await waiter

    # -- helpers --------------------------------------------------------------------------

    def _too_large(self) -> None:
        message = f"Request body too large: the proxy accepts at most {MAX_BODY} bytes."
        self._reply(error_reply(413, rng=self.rng, message=message))

    def _refuse(self, status: int, message: str) -> None:
        if self.closed or self.h11.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        with contextlib.suppress(h11.LocalProtocolError, ClientGone):
            self._reply(error_reply(status, rng=self.rng, message=message))

    def _reply(self, reply: Reply) -> None:
        self.send_reply(reply)
        self.host.stats.downstream.messages += 1
        self.host.stats.downstream.bytes += len(reply.body)

    def _write(self, data: bytes) -> None:
        if self.closed:
            raise ClientGone()
        self.transport.write(data)  # type: ignore[union-attr]

    def _cancel(self) -> None:
        task = self.task
        if task is not None and not task.done() and not self._finishing and task is not asyncio.current_task():
            task.cancel()

    def _wake_reader(self) -> None:
        waiter, self._read_waiter = self._read_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake_writer(self) -> None:
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
