"""The I/O shell of the toxics: holds that a toxic change releases, and the event pipeline.

A `Run` is one toxic acting on one in-flight request. `Runs` finds them by toxic name,
so that removing a toxic releases what its runs hold and lets later events through
untouched, and updating one releases what it holds and gives its runs the new value
(their per-response state, e.g. an event count, is kept). Nothing is lost either way:
a held event goes on at once.

`EventPipeline` pushes each block of an event stream through the stream toxics in
chain order, carrying out the `Op` values they answer with.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable

from chaos_service.engine.timing import TIMER_LEAD
from chaos_service.http_faults.base import Finish, Fired, HttpToxic, Op, Pause, Send, StreamToxic
from chaos_service.http_faults.sse import KEEPALIVE, is_event

#: Pauses longer than this (seconds) wait for a release, not a timer.
LONGEST_TIMER = 1_000_000.0


class Run:
    """One toxic on one in-flight request: its current value and per-request state."""

    __slots__ = ("_waiter", "name", "removed", "state", "toxic", "version")

    def __init__(self, name: str, toxic: HttpToxic, state: object = None) -> None:
        self.name = name
        self.toxic = toxic
        self.state = state
        self.removed = False
        self.version = 0  # bumped by every update
        self._waiter: asyncio.Future[bool] | None = None

    def replace(self, toxic: HttpToxic) -> None:
        """The toxic was updated: take the new value and release the pause in progress."""
        self.toxic = toxic
        self.version += 1
        self.release()

    def remove(self) -> None:
        """The toxic was removed: release the pause in progress and act no more."""
        self.removed = True
        self.release()

    def release(self) -> None:
        """End the pause in progress, if any."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    async def wait_until(self, deadline: float) -> bool:
        """Sleep until ``deadline`` (``time.monotonic``); True if released before it."""
        if self.removed:
            return True
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        delay = deadline - time.monotonic() - TIMER_LEAD
        timer = loop.call_later(max(delay, 0.0), _expire, waiter) if delay < LONGEST_TIMER else None
        self._waiter = waiter
        try:
            return await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    async def pause(
        self, seconds: float, keepalive: float = 0.0, beat: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """Wait ``seconds`` (``math.inf``: until released), calling ``beat`` every
        ``keepalive`` seconds meanwhile; a removal or update of the toxic ends it early."""
        start = time.monotonic()
        end = start + seconds
        version = self.version
        beats = 0
        while self.version == version:
            next_beat = start + (beats + 1) * keepalive if keepalive > 0 and beat is not None else math.inf
            if await self.wait_until(min(end, next_beat)) or next_beat >= end:
                return
            beats += 1
            assert beat is not None
            await beat()


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


class Runs:
    """The runs of in-flight requests, by toxic name."""

    def __init__(self) -> None:
        self._by_name: dict[str, set[Run]] = {}

    def open(self, name: str, toxic: HttpToxic, state: object = None) -> Run:
        run = Run(name, toxic, state)
        self._by_name.setdefault(name, set()).add(run)
        return run

    def close(self, run: Run) -> None:
        runs = self._by_name.get(run.name)
        if runs is not None:
            runs.discard(run)
            if not runs:
                del self._by_name[run.name]

    def updated(self, name: str, toxic: HttpToxic) -> None:
        for run in self._by_name.get(name, ()):
            run.replace(toxic)

    def removed(self, name: str) -> None:
        for run in self._by_name.pop(name, ()):
            run.remove()

    def clear(self) -> None:
        for name in list(self._by_name):
            self.removed(name)

    def __len__(self) -> int:
        return sum(len(runs) for runs in self._by_name.values())


class StreamFinished(Exception):
    """A toxic ended the response: cleanly, or with a reset."""

    def __init__(self, reset: bool) -> None:
        super().__init__("reset" if reset else "clean")
        self.reset = reset


class EventPipeline:
    """Stream toxics between an event stream and the client, in chain order.

    ``write`` sends bytes to the client (waiting while it is backed up); ``fired``
    counts a toxic that took effect. `push` and `start` raise `StreamFinished` when a
    toxic ends the response.
    """

    def __init__(
        self,
        runs: list[Run],
        write: Callable[[bytes], Awaitable[None]],
        rng: random.Random,
        fired: Callable[[str], None],
    ) -> None:
        self.runs = runs
        self._write = write
        self._rng = rng
        self._fired = fired

    async def start(self) -> None:
        for index, run in enumerate(self.runs):
            if not run.removed:
                await self._apply(index, _stream(run).start(run.state))

    async def push(self, block: bytes) -> None:
        """One complete block from the upstream."""
        await self._push(0, block, is_event(block))

    async def push_fragment(self, data: bytes) -> None:
        """Bytes that are not a complete event (a partial event at end of stream)."""
        await self._push(0, data, False)

    async def _push(self, index: int, data: bytes, event: bool) -> None:
        runs = self.runs
        while index < len(runs) and (not event or runs[index].removed):
            index += 1
        if index == len(runs):
            await self._write(data)
            return
        run = runs[index]
        await self._apply(index, _stream(run).on_event(data, run.state, self._rng))

    async def _apply(self, index: int, ops: list[Op]) -> None:
        run = self.runs[index]
        for op in ops:
            if isinstance(op, Send):
                await self._push(index + 1, op.data, op.event)
            elif isinstance(op, Pause):
                await run.pause(op.seconds, op.keepalive, lambda: self._push(index + 1, KEEPALIVE, False))
            elif isinstance(op, Finish):
                raise StreamFinished(op.reset)
            elif isinstance(op, Fired):
                self._fired(run.name)


def _stream(run: Run) -> StreamToxic:
    toxic = run.toxic
    assert isinstance(toxic, StreamToxic), f"{toxic.type_name} is not a stream toxic"
    return toxic
