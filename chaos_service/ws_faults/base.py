"""The websocket toxic contract: frozen attribute values, and per-connection stages.

Rules for every toxic module in this package: no asyncio, no sockets, no clocks. Time
arrives as ``now`` (seconds, monotonic), randomness as the direction's `random.Random`.

A *message toxic* (`MessageToxic`) builds one `Stage` per connection and direction. A
`Relay` (see `relay`) runs its direction's stages in chain order; each stage answers
with the items it releases now, in order, and may hold items until a time it reports
in `Stage.due`::

    relay.push(item, now) ─► stage 1 ─► stage 2 ─► … ─► [items to send now, in order]
    relay.tick(now)           (tick: release what is due, then process what arrived)

``toxicity`` is the probability that a stage acts on one matching message; stages that
act once per connection (``ws_close``) throw that coin when they are created.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from chaos_service.errors import InvalidToxic
from chaos_service.toxics.attributes import AttributeSpec, AttributeToxic, Text
from chaos_service.ws_faults.attributes import FieldPath
from chaos_service.ws_faults.message import Item, Match, Message

#: The match attributes of every message toxic, shown before its own.
MATCH_ATTRIBUTES: tuple[AttributeSpec, ...] = (FieldPath("field"), Text("value", integers=True))


class WsToxic(AttributeToxic):
    """Base of every websocket toxic type; subclasses are frozen, slotted dataclasses
    whose fields are their attributes (see `AttributeToxic`), in the order shown."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class StageContext:
    """What a stage gets from its relay: its toxic's name and toxicity, the direction's
    random source, and ``fired`` to call each time the toxic takes effect."""

    name: str
    toxicity: float
    rng: random.Random
    fired: Callable[[], None]

    def coin(self) -> bool:
        """Whether the toxic applies this time (no draw at toxicity 0 or 1)."""
        if self.toxicity >= 1.0:
            return True
        if self.toxicity <= 0.0:
            return False
        return self.rng.random() < self.toxicity


class Stage:
    """One toxic on one direction of one connection. The default passes everything on."""

    __slots__ = ("ctx",)

    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx

    def start(self, now: float) -> list[Item]:
        """Items released when the stage starts (on a new connection, an add or an update)."""
        return []

    def push(self, item: Item, now: float) -> list[Item]:
        """Process one item arriving at ``now``; returns what goes on now, in order."""
        return [item]

    def due(self) -> float | None:
        """When `tick` should next be called (None: nothing held)."""
        return None

    def tick(self, now: float) -> list[Item]:
        """Release what is due at ``now``, in order."""
        return []

    def flush(self) -> list[Item]:
        """Release everything held, in order (the toxic is removed or updated)."""
        return []

    def held(self) -> tuple[int, int]:
        """Messages and bytes held (for flow control)."""
        return 0, 0


@dataclass(frozen=True, slots=True)
class MessageToxic(WsToxic):
    """A toxic acting on messages, optionally only those selected by ``field``/``value``."""

    field: str = ""
    value: str = ""

    @classmethod
    def attribute_specs(cls) -> tuple[AttributeSpec, ...]:
        return MATCH_ATTRIBUTES + cls.attributes

    @property
    def match(self) -> Match:
        return Match(self.field, self.value)

    def check(self) -> None:
        if self.value and not self.field:
            raise InvalidToxic(
                f"attribute 'value' of toxic type {self.type_name} needs a 'field' to compare with,"
                f" got value {self.value!r} and no field"
            )

    def stage(self, ctx: StageContext, previous: Stage | None) -> Stage:
        """A fresh stage for one connection and direction; ``previous`` is the stage this
        one replaces on an update (already flushed), for toxics that keep counts."""
        raise NotImplementedError


def selected(stage_match: Match, ctx: StageContext, item: Item) -> bool:
    """Whether a message toxic acts on ``item``: a matching message and a winning coin."""
    return isinstance(item, Message) and stage_match.matches(item) and ctx.coin()
