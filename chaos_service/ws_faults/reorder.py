"""ws_reorder: matching messages are held until ``window`` of them are, then released shuffled.

The release order is a seeded random permutation of the window that is never the arrival
order (a shuffle that comes out in order is reversed instead). If the window is not full
``timeout`` ms after its first message was held, what is held goes on in arrival order.
Messages that do not match, or lose the coin flip, pass at once and so may overtake held
ones. A close action, a removal or an update releases the held messages in arrival order
first.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from chaos_service.toxics.attributes import Integer
from chaos_service.ws_faults.attributes import MAX_MS
from chaos_service.ws_faults.base import MessageToxic, Stage, StageContext, selected
from chaos_service.ws_faults.message import Item, Message

MAX_WINDOW = 1000


@dataclass(frozen=True, slots=True)
class Reorder(MessageToxic):
    """Shuffles windows of matching messages (each message held with probability ``toxicity``)."""

    window: int = 2
    timeout: int = 1000

    type_name = "ws_reorder"
    attributes = (Integer("window", 2, MAX_WINDOW, "messages"), Integer("timeout", 1, MAX_MS, "ms"))

    def stage(self, ctx: StageContext, previous: Stage | None) -> Stage:
        return ReorderStage(ctx, self)


def shuffled(items: list[Message], rng: random.Random) -> list[Message]:
    """A random permutation of ``items`` (two or more) that differs from their order."""
    order = list(range(len(items)))
    rng.shuffle(order)
    if order == sorted(order):  # the identity
        order.reverse()
    return [items[i] for i in order]


class ReorderStage(Stage):
    __slots__ = ("bytes", "first_at", "held_messages", "match", "timeout", "window")

    def __init__(self, ctx: StageContext, toxic: Reorder) -> None:
        super().__init__(ctx)
        self.match = toxic.match
        self.window = toxic.window
        self.timeout = toxic.timeout / 1000
        self.held_messages: list[Message] = []
        self.first_at = 0.0
        self.bytes = 0

    def push(self, item: Item, now: float) -> list[Item]:
        if not isinstance(item, Message):
            return [*self.flush(), item]
        if not selected(self.match, self.ctx, item):
            return [item]
        self.ctx.fired()
        if not self.held_messages:
            self.first_at = now
        self.held_messages.append(item)
        self.bytes += item.size
        if len(self.held_messages) < self.window:
            return []
        window = self._take()
        return list(shuffled(window, self.ctx.rng))

    def due(self) -> float | None:
        return self.first_at + self.timeout if self.held_messages else None

    def tick(self, now: float) -> list[Item]:
        if self.held_messages and now >= self.first_at + self.timeout:
            return self.flush()
        return []

    def flush(self) -> list[Item]:
        return list(self._take())

    def _take(self) -> list[Message]:
        held, self.held_messages = self.held_messages, []
        self.bytes = 0
        return held

    def held(self) -> tuple[int, int]:
        return len(self.held_messages), self.bytes
