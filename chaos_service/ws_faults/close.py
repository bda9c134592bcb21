"""ws_close: close the connection after ``after`` matching messages have been relayed.

The coin (``toxicity``) is thrown once per connection, when the toxic starts on it (at
accept, add or update). ``after`` 0 closes as soon as the toxic applies. The close is an
action in the direction's ordered stream, so it follows every message ahead of it (a
delay earlier in the chain delays the close too). Both peers are closed with ``code``
and ``reason``; ``1006`` aborts both TCP connections instead, without a close frame.
An update keeps the count of matching messages already relayed.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaos_service.toxics.attributes import Integer
from chaos_service.ws_faults.attributes import CloseCode, CloseReason
from chaos_service.ws_faults.base import MessageToxic, Stage, StageContext
from chaos_service.ws_faults.message import Close, Item, Message


@dataclass(frozen=True, slots=True)
class CloseAfter(MessageToxic):
    """Closes both sides of a connection after ``after`` matching messages."""

    after: int = 0
    code: int = 1000
    reason: str = ""

    type_name = "ws_close"
    attributes = (Integer("after", unit="matching messages"), CloseCode("code"), CloseReason("reason"))

    def stage(self, ctx: StageContext, previous: Stage | None) -> Stage:
        count = previous.count if isinstance(previous, CloseStage) else 0
        done = previous.done if isinstance(previous, CloseStage) else False
        return CloseStage(ctx, self, count, done)


class CloseStage(Stage):
    __slots__ = ("action", "after", "applies", "count", "done", "match")

    def __init__(self, ctx: StageContext, toxic: CloseAfter, count: int = 0, done: bool = False) -> None:
        super().__init__(ctx)
        self.match = toxic.match
        self.after = toxic.after
        self.action = Close(toxic.code, toxic.reason, both=True)
        self.applies = ctx.coin()
        self.count = count
        self.done = done

    def _fire(self) -> list[Item]:
        self.done = True
        self.ctx.fired()
        return [self.action]

    def start(self, now: float) -> list[Item]:
        if self.applies and not self.done and self.count >= self.after:
            return self._fire()
        return []

    def push(self, item: Item, now: float) -> list[Item]:
        if self.done or not self.applies or not isinstance(item, Message) or not self.match.matches(item):
            return [item]
        self.count += 1
        if self.count >= self.after:
            return [item, *self._fire()]
        return [item]
