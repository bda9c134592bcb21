"""One direction of one connection, without I/O: the chain of stages between source and destination.

    push(item, now) ─► stage 1 ─► stage 2 ─► … ─► items to send now, in order
    tick(now)          (each stage first releases what is due, then takes new arrivals)

The owner sends what `push`, `tick`, `add`, `replace` and `remove` return, in the order
returned, and calls `tick` again at `next_due`. Nothing is ever reordered except by a
stage that means to (``ws_reorder``): an item released by a stage goes behind what that
stage and the later ones released before it. Removing or updating a toxic releases what
its stage holds at once, into the next stage (nothing is lost).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from chaos_service.ws_faults.base import MessageToxic, Stage, StageContext
from chaos_service.ws_faults.message import Item


class Relay:
    """The message toxics of one direction, in chain order.

    ``rng`` is this direction's random source (seeded from the proxy's); ``on_fired`` is
    told a toxic's name each time that toxic takes effect.
    """

    __slots__ = ("names", "on_fired", "rng", "stages")

    def __init__(self, rng: random.Random, on_fired: Callable[[str], None]) -> None:
        self.rng = rng
        self.on_fired = on_fired
        self.names: list[str] = []
        self.stages: list[Stage] = []

    @property
    def empty(self) -> bool:
        return not self.stages

    def _context(self, name: str, toxicity: float) -> StageContext:
        on_fired = self.on_fired
        return StageContext(name, toxicity, self.rng, lambda: on_fired(name))

    # -- toxics -------------------------------------------------------------------------

    def add(self, name: str, toxic: MessageToxic, toxicity: float, now: float) -> list[Item]:
        """Append a toxic to the chain; returns what its start releases (a ``ws_close`` with
        ``after`` 0)."""
        stage = toxic.stage(self._context(name, toxicity), None)
        self.names.append(name)
        self.stages.append(stage)
        return stage.start(now)  # the last stage: what it starts with goes straight out

    def replace(self, name: str, toxic: MessageToxic, toxicity: float, now: float) -> list[Item]:
        """Restart a toxic with new attributes: what it held goes on, then the new stage starts."""
        index = self.names.index(name)
        old = self.stages[index]
        flushed = old.flush()
        stage = toxic.stage(self._context(name, toxicity), old)
        self.stages[index] = stage
        return self._advance(index + 1, now, [*flushed, *stage.start(now)])

    def remove(self, name: str, now: float) -> list[Item]:
        """Take a toxic out of the chain; what it held goes on to the next stages at once."""
        index = self.names.index(name)
        del self.names[index]
        flushed = self.stages.pop(index).flush()
        return self._advance(index, now, flushed)

    def __contains__(self, name: str) -> bool:
        return name in self.names

    # -- data ---------------------------------------------------------------------------

    def push(self, item: Item, now: float) -> list[Item]:
        """An item from the source at ``now``; returns the items to send now, in order."""
        return self._advance(0, now, [item])

    def tick(self, now: float) -> list[Item]:
        """Release everything due at ``now``; returns the items to send now, in order."""
        return self._advance(0, now, [])

    def next_due(self) -> float | None:
        """When `tick` should next be called (None: nothing is held)."""
        due = [at for stage in self.stages if (at := stage.due()) is not None]
        return min(due) if due else None

    def held(self) -> tuple[int, int]:
        """Messages and bytes held by the stages."""
        count = size = 0
        for stage in self.stages:
            c, s = stage.held()
            count += c
            size += s
        return count, size

    def _advance(self, start: int, now: float, items: list[Item]) -> list[Item]:
        """Run ``items`` through the stages from ``start`` on; each stage first releases
        what is due (it arrived before them), then takes them."""
        carried = items
        for stage in self.stages[start:]:
            out = stage.tick(now)
            for item in carried:
                out.extend(stage.push(item, now))
            carried = out
        return carried
