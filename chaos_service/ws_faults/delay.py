"""ws_delay: matching messages wait ``delay`` ± ``jitter`` ms, keeping the direction's order.

The stage is a FIFO: a delayed message holds back every item behind it, matching or
not, so nothing overtakes anything (two delays on one message add up). Jitter is drawn
per delayed message, uniformly from the integers in ``[-jitter, +jitter]``; the delay
never goes below zero. Removing or updating the toxic releases what it holds at once.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from chaos_service.toxics.attributes import Integer
from chaos_service.ws_faults.attributes import MAX_MS
from chaos_service.ws_faults.base import MessageToxic, Stage, StageContext, selected
from chaos_service.ws_faults.message import Item, Message


@dataclass(frozen=True, slots=True)
class Delay(MessageToxic):
    """Delays each matching message (with probability ``toxicity``)."""

    delay: int = 0
    jitter: int = 0

    type_name = "ws_delay"
    attributes = (Integer("delay", 0, MAX_MS, "ms"), Integer("jitter", 0, MAX_MS, "ms"))

    def stage(self, ctx: StageContext, previous: Stage | None) -> Stage:
        return DelayStage(ctx, self)


class DelayStage(Stage):
    __slots__ = ("bytes", "delay", "jitter", "match", "queue")

    def __init__(self, ctx: StageContext, toxic: Delay) -> None:
        super().__init__(ctx)
        self.match = toxic.match
        self.delay = toxic.delay
        self.jitter = toxic.jitter
        self.queue: deque[tuple[float, Item]] = deque()
        self.bytes = 0

    def _delay_ms(self) -> int:
        delay = self.delay
        if self.jitter:
            delay += self.ctx.rng.randint(-self.jitter, self.jitter)
        return max(delay, 0)

    def push(self, item: Item, now: float) -> list[Item]:
        at = now
        if selected(self.match, self.ctx, item):
            self.ctx.fired()
            at = now + self._delay_ms() / 1000
        if not self.queue and at <= now:
            return [item]
        self.queue.append((at, item))
        if isinstance(item, Message):
            self.bytes += item.size
        return []

    def due(self) -> float | None:
        return self.queue[0][0] if self.queue else None

    def tick(self, now: float) -> list[Item]:
        out: list[Item] = []
        queue = self.queue
        while queue and queue[0][0] <= now:
            out.append(self._pop())
        return out

    def flush(self) -> list[Item]:
        return [self._pop() for _ in range(len(self.queue))]

    def _pop(self) -> Item:
        _, item = self.queue.popleft()
        if isinstance(item, Message):
            self.bytes -= item.size
        return item

    def held(self) -> tuple[int, int]:
        return len(self.queue), self.bytes
