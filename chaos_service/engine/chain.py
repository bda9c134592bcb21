"""One direction's chain of toxic stages, driven by an injected scheduler.

    Link.feed ─► Chain.push ─► stage 1 ─► stage 2 ─► … ─► Sink.write / end / reset
                               (toxic)    (toxic)

A stage runs its toxic's steps: emitted bytes wait in the stage's outbox until their
release time (one timer per stage, for the head of the outbox), then move on to the
next stage. Nothing here awaits: the chain is plain callbacks on a `Scheduler` (the
event loop's timers in production, see `timing`; a virtual clock in tests), so adding,
updating or removing a toxic is a synchronous splice that cannot hang.

Rules kept by this module:
* order: a stage releases in the order it produced, never more than `TIMER_SLACK`
  before ``at``;
* no loss: removing or updating a stage releases everything it holds, at once, to the
  next stage (then the toxic's `Removal` effect applies: ``timeout`` closes the
  connection, a triggered ``reset_peer`` resets it);
* bounded memory: bytes inside the chain are counted; above ``high_water`` the chain asks
  its owner to stop reading the source, below ``low_water`` to resume.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from chaos_service.engine.timing import TIMER_SLACK
from chaos_service.toxics.base import Chunk, Deadline, Emit, EndStream, Removal, Step, Toxic

#: Release times further ahead than this (seconds) wait for an interrupt, not a timer.
LONGEST_TIMER = 1_000_000.0


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Scheduler(Protocol):
    """What the chain needs from an event loop; `asyncio.AbstractEventLoop` satisfies it."""

    def time(self) -> float: ...

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> TimerHandle: ...


class Sink(Protocol):
    """The end of a chain: the destination socket of a link."""

    def write(self, data: bytes) -> None: ...

    def end(self, close_connection: bool) -> None:
        """The direction ended; ``close_connection`` closes both sides, else half-close."""

    def reset(self) -> None:
        """Abort the whole connection with a TCP RST."""


class Chain:
    """The ordered toxic stages of one direction of one connection."""

    def __init__(
        self,
        scheduler: Scheduler,
        sink: Sink,
        rng: random.Random,
        on_pressure: Callable[[bool], None],
        *,
        on_applied: Callable[[str], None] | None = None,
        high_water: int = 16 * 1024 * 1024,
        low_water: int | None = None,
    ) -> None:
        self.scheduler = scheduler
        self.sink = sink
        self.rng = rng
        self._on_pressure = on_pressure
        #: Told the name of each toxic whose coin flip made it apply to this chain.
        self.on_applied = on_applied
        self.high_water = high_water
        self.low_water = high_water // 2 if low_water is None else low_water
        self.buffered = 0
        self.pressured = False
        self.disposed = False
        self.stages: list[Stage] = []
        self._tail = _SinkStage(self)

    @property
    def empty(self) -> bool:
        return not self.stages

    def _head(self) -> Stage | _SinkStage:
        return self.stages[0] if self.stages else self._tail

    # -- data in ------------------------------------------------------------------------

    def push(self, data: bytes) -> None:
        """Bytes read from the source just now."""
        self.buffered += len(data)
        if not self.pressured and self.buffered >= self.high_water:
            self.pressured = True
            self._on_pressure(True)
        self._head().push(Chunk(data, self.scheduler.time()))

    def push_eof(self) -> None:
        """The source reached end-of-stream just now."""
        self._head().push_end(self.scheduler.time(), False)

    def release(self, nbytes: int) -> None:
        """``nbytes`` left the chain (written out or swallowed by a toxic)."""
        self.buffered -= nbytes
        if self.pressured and self.buffered <= self.low_water:
            self.pressured = False
            self._on_pressure(False)

    # -- toxics -------------------------------------------------------------------------

    def append(self, name: str, toxic: Toxic, toxicity: float) -> None:
        """Start a toxic at the end of the chain (just before the sink)."""
        self._insert(len(self.stages), Stage(self, name, toxic, toxic.new_state(), toxicity))

    def replace(self, name: str, toxic: Toxic, toxicity: float) -> None:
        """Restart a toxic with new attributes in its place; its state carries over."""
        index = self._index(name)
        old = self.stages[index]
        old.detach()
        del self.stages[index]
        stage = Stage(self, name, toxic, old.state, toxicity)
        stage.ended = old.ended
        self._insert(index, stage)

    def remove(self, name: str) -> None:
        """Stop a toxic; what it holds goes on at once, then its `Removal` effect applies."""
        index = self._index(name)
        stage = self.stages[index]
        stage.detach()
        del self.stages[index]
        self._relink()
        effect = stage.toxic.on_removal(stage.state) if stage.active else Removal.KEEP
        if effect is Removal.CLOSE and not self.disposed:
            self.sink.end(True)
        elif effect is Removal.RESET and not self.disposed:
            self.sink.reset()

    def dispose(self) -> None:
        """The connection is gone: cancel every timer and drop what is held."""
        self.disposed = True
        for stage in self.stages:
            stage.cancel_timers()
            stage.outbox.clear()

    def _index(self, name: str) -> int:
        for index, stage in enumerate(self.stages):
            if stage.name == name:
                return index
        raise KeyError(name)

    def _insert(self, index: int, stage: Stage) -> None:
        self.stages.insert(index, stage)
        self._relink()
        if stage.active:
            stage.apply(stage.toxic.start(self.scheduler.time(), stage.state), consumed=0)

    def _relink(self) -> None:
        following: list[Stage | _SinkStage] = [*self.stages[1:], self._tail]
        for stage, next_stage in zip(self.stages, following, strict=False):
            stage.next = next_stage


class _SinkStage:
    """Adapts the sink to the stage interface at the end of the chain."""

    __slots__ = ("chain",)

    def __init__(self, chain: Chain) -> None:
        self.chain = chain

    def push(self, chunk: Chunk) -> None:
        chain = self.chain
        if chain.disposed:
            return
        chain.sink.write(chunk.data)
        chain.release(len(chunk.data))

    def push_end(self, at: float, close_connection: bool) -> None:
        if not self.chain.disposed:
            self.chain.sink.end(close_connection)


class Stage:
    """A toxic running on one direction of one connection."""

    __slots__ = (
        "active",
        "chain",
        "deadline",
        "ended",
        "last_at",
        "name",
        "next",
        "outbox",
        "state",
        "timer",
        "timer_at",
        "toxic",
    )

    def __init__(self, chain: Chain, name: str, toxic: Toxic, state: Any, toxicity: float) -> None:
        self.chain = chain
        self.name = name
        self.toxic = toxic
        self.state = state
        # Toxicity is a per-connection coin flip, thrown whenever the toxic (re)starts.
        self.active = toxicity >= 1 or chain.rng.random() < toxicity
        if self.active and chain.on_applied is not None:
            chain.on_applied(name)
        self.outbox: deque[tuple[float, bytes | None, bool]] = deque()
        self.last_at = float("-inf")
        self.ended = False
        self.next: Stage | _SinkStage = chain._tail
        self.timer: TimerHandle | None = None
        self.timer_at = 0.0
        self.deadline: TimerHandle | None = None

    def push(self, chunk: Chunk) -> None:
        if not self.active:
            self.next.push(chunk)
        elif self.ended:
            self.chain.release(len(chunk.data))
        else:
            self.apply(self.toxic.on_chunk(chunk, self.state, self.chain.rng), len(chunk.data))

    def push_end(self, at: float, close_connection: bool) -> None:
        if not self.active:
            self.next.push_end(at, close_connection)
        elif not self.ended:
            self.apply(self.toxic.on_eof(at, self.state), 0, close_connection)

    def apply(self, steps: list[Step], consumed: int, force_close: bool = False) -> None:
        emitted = 0
        for step in steps:
            if isinstance(step, Emit):
                emitted += len(step.data)
                self._enqueue(step.at, step.data, False)
            elif isinstance(step, EndStream):
                self._enqueue(step.at, None, step.close_connection or force_close)
                self.ended = True
            elif isinstance(step, Deadline):
                self._set_deadline(step)
        if consumed != emitted:
            self.chain.release(consumed - emitted)
        self._flush_due()

    def _enqueue(self, at: float, data: bytes | None, close: bool) -> None:
        at = max(at, self.last_at)
        self.last_at = at
        self.outbox.append((at, data, close))

    def _flush_due(self, slack: float = 0.0) -> None:
        chain = self.chain
        outbox = self.outbox
        now = chain.scheduler.time()
        due_by = now + slack
        while outbox and not chain.disposed:
            at, data, close = outbox[0]
            if at > due_by:
                self._arm(at, now)
                return
            outbox.popleft()
            self._forward(at, data, close)

    def _forward(self, at: float, data: bytes | None, close: bool) -> None:
        if data is None:
            self.next.push_end(at, close)
        else:
            self.next.push(Chunk(data, at))

    def _arm(self, at: float, now: float) -> None:
        if self.timer is not None:
            if self.timer_at == at:
                return
            self.timer.cancel()
            self.timer = None
        if at - now <= LONGEST_TIMER:
            self.timer_at = at
            self.timer = self.chain.scheduler.call_at(at, self._on_timer)

    def _on_timer(self) -> None:
        self.timer = None
        self._flush_due(TIMER_SLACK)

    def _set_deadline(self, step: Deadline) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None
        if step.at is not None and step.at - self.chain.scheduler.time() <= LONGEST_TIMER:
            self.deadline = self.chain.scheduler.call_at(step.at, self._on_deadline, step.reset)

    def _on_deadline(self, reset: bool) -> None:
        self.deadline = None
        if self.chain.disposed or self.ended:
            return
        if reset:
            self.chain.sink.reset()
            return
        self._enqueue(self.chain.scheduler.time(), None, True)
        self.ended = True
        self._flush_due()

    def cancel_timers(self) -> None:
        for handle in (self.timer, self.deadline):
            if handle is not None:
                handle.cancel()
        self.timer = self.deadline = None

    def detach(self) -> None:
        """Leave the chain: cancel timers and pass on everything held, in order, now."""
        self.cancel_timers()
        now = self.chain.scheduler.time()
        while self.outbox and not self.chain.disposed:
            at, data, close = self.outbox.popleft()
            self._forward(min(at, now), data, close)
