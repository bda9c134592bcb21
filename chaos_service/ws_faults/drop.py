"""ws_drop: matching messages are not relayed."""

from __future__ import annotations

from dataclasses import dataclass

from chaos_service.ws_faults.base import MessageToxic, Stage, StageContext, selected
from chaos_service.ws_faults.message import Item


@dataclass(frozen=True, slots=True)
class Drop(MessageToxic):
    """Drops each matching message (with probability ``toxicity``)."""

    type_name = "ws_drop"

    def stage(self, ctx: StageContext, previous: Stage | None) -> Stage:
        return DropStage(ctx, self)


class DropStage(Stage):
    __slots__ = ("match",)

    def __init__(self, ctx: StageContext, toxic: Drop) -> None:
        super().__init__(ctx)
        self.match = toxic.match

    def push(self, item: Item, now: float) -> list[Item]:
        if selected(self.match, self.ctx, item):
            self.ctx.fired()
            return []
        return [item]
