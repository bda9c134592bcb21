"""A proxied WebSocket connection: the client's, the upstream's, and one pump per direction.

    client ──► Pump(upstream)   ──► [relay] ──► upstream server
    client ◄── Pump(downstream) ◄── [relay] ◄── upstream server

`websockets` parses frames and runs the handshakes, pings and closes; the relay runs in
its callbacks, not in tasks: both hops are `wire` connections that hand each data frame
to the pump reading from them as it is parsed. A pump with no toxics frames each message
for its destination at once (the fast path: a count and a frame, no task switch, no
decoding), and everything framed during one read of the source goes out in one write.
With toxics, the relay decides, and what it holds is released from event-loop timers.

Flow control is end to end, as for tcp proxies: a pump stops reading its source while
its destination's write buffer is above the high-water mark or its relay holds more
than `MAX_HELD_MESSAGES` / `MAX_HELD_BYTES`; the source's sender then blocks in TCP.

Closes travel like messages: a close received from one side is passed to the other
(behind the messages ahead of it) with the same code and reason; no code (1005) or no
close frame at all (1006) is passed on by ending the other side's TCP connection without
a close frame, so that peer sees 1006 too.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from websockets.frames import Frame, Opcode
from websockets.protocol import Side, State
from websockets.typing import BytesLike

from chaos_service.engine.model import Direction
from chaos_service.engine.timing import TIMER_SLACK, LoopScheduler
from chaos_service.ws_faults.base import MessageToxic
from chaos_service.ws_faults.framing import data_frame
from chaos_service.ws_faults.message import Close, Item, Message
from chaos_service.ws_faults.relay import Relay
from chaos_service.ws_faults.wire import RelayClientConnection, Relayed, RelayServerConnection, begin_close

if TYPE_CHECKING:
    from chaos_service.engine.model import ToxicEntry
    from chaos_service.engine.stats import DirectionCounters

#: A pump stops reading while its relay holds this many messages (or bytes).
MAX_HELD_MESSAGES = 4096
MAX_HELD_BYTES = 16 * 1024 * 1024

_DEST_PAUSED = 1
_RELAY_FULL = 2


class Pump:
    """One direction of a connection: source → relay → destination, in callbacks."""

    def __init__(
        self,
        connection: WsConnection,
        source: Relayed,
        dest: Relayed,
        relay: Relay,
        counters: DirectionCounters,
    ) -> None:
        self.connection = connection
        self.source = source
        self.dest = dest
        self.relay = relay
        self.counters = counters
        self.direct = relay.empty  # fast path: no toxics
        self.paused = 0
        self.closed = False  # the source's close has been seen
        self._fragments: list[BytesLike] = []
        self._fragments_text = False
        self._out: list[bytes] = []  # frames written by `_write`, not flushed yet
        self._mask = dest.protocol.side is Side.CLIENT
        self._scheduler = LoopScheduler(source.loop)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None

    def attach(self) -> None:
        """Start relaying: take over the source's frames, including any that came early."""
        source = self.source
        source.reader = self
        self.dest.writer = self
        for frame in source.take_early_frames():
            self.on_frame(frame)
        self.flush()
        if self.dest.paused:
            self.set_paused(_DEST_PAUSED, True)
        if source.protocol.close_rcvd is not None or source.protocol.state is State.CLOSED:
            self.source_closed()

    # -- source side --------------------------------------------------------------------

    def on_frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        data: BytesLike
        if opcode is Opcode.CONT:
            self._fragments.append(frame.data)
            if not frame.fin:
                return
            data, text = b"".join(self._fragments), self._fragments_text
            self._fragments = []
        elif not frame.fin:
            self._fragments = [frame.data]
            self._fragments_text = opcode is Opcode.TEXT
            return
        else:
            data, text = frame.data, opcode is Opcode.TEXT
        counters = self.counters
        counters.messages += 1
        counters.bytes += len(data)
        if self.direct:
            self._write(data, text)
        else:
            self._deliver(self.relay.push(Message(bytes(data), text), time.monotonic()))

    def source_closed(self) -> None:
        """The source sent a close frame or its connection ended: pass that on."""
        if self.closed or self.connection.closing:
            return
        self.closed = True
        received = self.source.protocol.close_rcvd
        close = Close(None) if received is None else Close(received.code, received.reason)
        if self.direct:
            self.connection.execute(self, close)
        else:
            self._deliver(self.relay.push(close, time.monotonic()))

    # -- toxics -------------------------------------------------------------------------

    def add(self, name: str, toxic: MessageToxic, toxicity: float) -> None:
        self.direct = False
        self._deliver(self.relay.add(name, toxic, toxicity, time.monotonic()))

    def replace(self, name: str, toxic: MessageToxic, toxicity: float) -> None:
        if name in self.relay:
            self._deliver(self.relay.replace(name, toxic, toxicity, time.monotonic()))

    def remove(self, name: str) -> None:
        if name in self.relay:
            self._deliver(self.relay.remove(name, time.monotonic()))
            self.direct = self.relay.empty

    # -- destination side ---------------------------------------------------------------

    def _write(self, data: BytesLike, text: bool) -> None:
        """Frame a message for the destination; `flush` sends what was framed.

        Frames bypass the destination's `websockets` protocol object (which only ever
        writes whole frames of its own: pongs, pings, closes), so both may share the
        transport; anything framed is flushed before a close frame is sent.
        """
        if self.dest.protocol.state is not State.OPEN or self.connection.closing:
            return  # closing: what is still in flight is lost, as on any closing connection
        self._out.append(data_frame(data, text, self._mask))

    def flush(self) -> None:
        """Write what was framed for the destination, in one call."""
        out = self._out
        if not out:
            return
        self._out = []
        transport = self.dest.transport
        if not transport.is_closing():
            transport.writelines(out)

    def _deliver(self, items: list[Item]) -> None:
        """Write what the relay released, in order; then re-arm its timer and flow control."""
        for item in items:
            if isinstance(item, Close):
                self.connection.execute(self, item)  # flushes what is framed first
                break
            self._write(item.data, item.text)
        self.flush()
        self._arm_timer()
        if not self.relay.empty or self.paused & _RELAY_FULL:
            count, size = self.relay.held()
            if self.paused & _RELAY_FULL:
                full = count > MAX_HELD_MESSAGES // 2 or size > MAX_HELD_BYTES // 2
            else:
                full = count >= MAX_HELD_MESSAGES or size >= MAX_HELD_BYTES
            self.set_paused(_RELAY_FULL, full)

    def _arm_timer(self) -> None:
        due = self.relay.next_due()
        if due == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = due
        if due is not None and not self.connection.closing:
            self._timer = self._scheduler.call_at(due, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self._deliver(self.relay.tick(time.monotonic() + TIMER_SLACK))

    def dest_paused(self, paused: bool) -> None:
        self.set_paused(_DEST_PAUSED, paused)

    def set_paused(self, reason: int, on: bool) -> None:
        before = self.paused
        self.paused = before | reason if on else before & ~reason
        transport = self.source.transport
        if bool(before) == bool(self.paused) or transport.is_closing():
            return
        if self.paused:
            transport.pause_reading()
        else:
            transport.resume_reading()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class WsConnection:
    """A client connection accepted by a websocket proxy and its connection to the upstream."""

    def __init__(
        self,
        client: RelayServerConnection,
        upstream: RelayClientConnection,
        toxics: list[ToxicEntry],
        rng: random.Random,
        counters: Callable[[Direction], DirectionCounters],
        on_fired: Callable[[str], None],
    ) -> None:
        self.client = client
        self.upstream = upstream
        self.closing = False

        def pump(direction: Direction, source: Relayed, dest: Relayed) -> Pump:
            relay = Relay(random.Random(rng.getrandbits(64)), on_fired)
            return Pump(self, source, dest, relay, counters(direction))

        self.pumps = {
            Direction.UPSTREAM: pump(Direction.UPSTREAM, client, upstream),
            Direction.DOWNSTREAM: pump(Direction.DOWNSTREAM, upstream, client),
        }
        self._toxics = toxics

    # -- toxics -------------------------------------------------------------------------

    def toxic_added(self, entry: ToxicEntry) -> None:
        if isinstance(entry.toxic, MessageToxic) and not self.closing:
            self.pumps[entry.direction].add(entry.name, entry.toxic, entry.toxicity)

    def toxic_updated(self, entry: ToxicEntry) -> None:
        if isinstance(entry.toxic, MessageToxic) and not self.closing:
            self.pumps[entry.direction].replace(entry.name, entry.toxic, entry.toxicity)

    def toxic_removed(self, entry: ToxicEntry) -> None:
        if isinstance(entry.toxic, MessageToxic) and not self.closing:
            self.pumps[entry.direction].remove(entry.name)

    # -- lifecycle ----------------------------------------------------------------------

    async def run(self) -> None:
        """Relay until both sides are closed."""
        for entry in self._toxics:
            self.toxic_added(entry)
        for pump in self.pumps.values():
            pump.attach()
        try:
            await self.client.wait_closed()
            await self.upstream.wait_closed()
        finally:
            for pump in self.pumps.values():
                pump.stop()
            for ws in (self.client, self.upstream):
                ws.reader = ws.writer = None

    def execute(self, pump: Pump, close: Close) -> None:
        """Carry out a close action that reached the front of ``pump``'s direction."""
        if self.closing:
            return
        for other in self.pumps.values():
            other.flush()
            other.stop()
        self.closing = True
        begin_close(pump.dest, close.code, close.reason)
        if close.both:
            begin_close(pump.source, close.code, close.reason)

    def shutdown(self, code: int = 1001, reason: str = "going away") -> None:
        """Close both sides now (the proxy stops or its upstream changed)."""
        for pump in self.pumps.values():
            pump.flush()
            pump.stop()
        self.closing = True
        for ws in (self.client, self.upstream):
            with contextlib.suppress(Exception):
                begin_close(ws, code, reason)
