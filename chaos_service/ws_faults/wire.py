"""The proxy's two `websockets` connections per client, as the relay needs them.

`RelayServerConnection` (the client's hop) and `RelayClientConnection` (the upstream's)
are `websockets` asyncio connections that hand every data frame, as it is parsed, to the
`FrameReader` reading from them instead of queueing it for ``recv()``, and tell the
`FrameReader` writing to them when their write buffer fills and drains. Control frames
(ping, pong, close) stay with `websockets`, which answers pings and runs the closing
handshake. `begin_close` starts a close without awaiting it.
"""

from __future__ import annotations

from typing import Protocol

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.connection import Connection
from websockets.asyncio.server import ServerConnection
from websockets.frames import Frame, Opcode
from websockets.protocol import Event, State

#: Data frames buffered before a reader is attached (right after the handshake) beyond
#: which reading pauses.
MAX_EARLY_FRAMES = 64
#: Seconds a closing handshake may take before the TCP connection is aborted.
CLOSE_TIMEOUT = 10.0
#: Seconds a TCP connection ended without a close frame may take to finish sending.
DROP_TIMEOUT = 2.0


class FrameReader(Protocol):
    """One direction of the relay, as its source and destination connections see it."""

    def on_frame(self, frame: Frame) -> None:
        """A data frame (text, binary or continuation) from the source."""

    def source_closed(self) -> None:
        """The source received a close frame, or its connection ended."""

    def flush(self) -> None:
        """Everything from one read of the source has been handed over: write it."""

    def dest_paused(self, paused: bool) -> None:
        """The destination's write buffer went above (True) or below its limit."""


class Relayed(Connection):
    """Hands data frames and the end of the connection to the relay direction reading it."""

    reader: FrameReader | None = None  # the direction whose source this connection is
    writer: FrameReader | None = None  # the direction whose destination this connection is
    early: list[Frame] | None = None  # data frames received before `reader` was set

    def process_event(self, event: Event) -> None:
        if isinstance(event, Frame):
            opcode = event.opcode
            if opcode is Opcode.TEXT or opcode is Opcode.BINARY or opcode is Opcode.CONT:
                reader = self.reader
                if reader is not None:
                    reader.on_frame(event)
                    return
                if self.early is None:
                    self.early = []
                self.early.append(event)
                if len(self.early) == MAX_EARLY_FRAMES:
                    self.transport.pause_reading()
                return
            if opcode is Opcode.CLOSE and self.reader is not None:
                self.reader.source_closed()
        super().process_event(event)

    def take_early_frames(self) -> list[Frame]:
        """The data frames that arrived before a reader was attached (reading resumes)."""
        early, self.early = self.early or [], None
        if len(early) >= MAX_EARLY_FRAMES:
            self.transport.resume_reading()
        return early

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # One write for every frame relayed from this read, not one per frame.
        if self.reader is not None:
            self.reader.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.reader is not None:
            self.reader.source_closed()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self.writer is not None:
            self.writer.dest_paused(True)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self.writer is not None:
            self.writer.dest_paused(False)


class RelayServerConnection(Relayed, ServerConnection):
    """The proxy's side of a client's connection."""


class RelayClientConnection(Relayed, ClientConnection):
    """The proxy's connection to the upstream."""


def begin_close(ws: Connection, code: int | None, reason: str = "") -> None:
    """Start closing ``ws`` now, without waiting: a close frame with ``code``, or for
    None/1005/1006 an end of the TCP stream without one (the peer sees 1006)."""
    transport = ws.transport
    if transport.is_closing() or ws.protocol.state is not State.OPEN:
        return
    if code is None or code in (1005, 1006):
        # FIN after what is already written, not RST: an RST may discard data the peer
        # has received but not read yet.
        try:
            transport.write_eof()
        except (OSError, RuntimeError):
            transport.abort()
            return
        _abort_later(ws, DROP_TIMEOUT)
    else:
        # What Connection.close() does, minus the wait: callers act synchronously.
        ws.protocol.send_close(code, reason)
        try:
            ws.send_data()
        except (OSError, RuntimeError):  # e.g. its end of the stream was already written
            transport.abort()
            return
        _abort_later(ws, CLOSE_TIMEOUT)
    # A source paused for flow control must still read the peer's close frame or EOF.
    transport.resume_reading()


def _abort_later(ws: Connection, delay: float) -> None:
    handle = ws.loop.call_later(delay, ws.transport.abort)
    ws.connection_lost_waiter.add_done_callback(lambda _: handle.cancel())
