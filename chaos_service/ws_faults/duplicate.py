"""ws_duplicate: matching messages are sent ``copies`` extra times, right after themselves."""

from __future__ import annotations

from dataclasses import dataclass

from chaos_service.toxics.attributes import Integer
from chaos_service.ws_faults.base import MessageToxic, Stage, StageContext, selected
from chaos_service.ws_faults.message import Item

MAX_COPIES = 1000


@dataclass(frozen=True, slots=True)
class Duplicate(MessageToxic):
    """Sends each matching message ``1 + copies`` times in a row (with probability ``toxicity``)."""

    copies: int = 1

    type_name = "ws_duplicate"
    attributes = (Integer("copies", 0, MAX_COPIES, "extra copies"),)

    def stage(self, ctx: StageContext, previous: Stage | None) -> Stage:
        return DuplicateStage(ctx, self)


class DuplicateStage(Stage):
    __slots__ = ("copies", "match")

    def __init__(self, ctx: StageContext, toxic: Duplicate) -> None:
        super().__init__(ctx)
        self.match = toxic.match
        self.copies = toxic.copies

    def push(self, item: Item, now: float) -> list[Item]:
        if selected(self.match, self.ctx, item):
            self.ctx.fired()
            return [item] * (1 + self.copies)
        return [item]
