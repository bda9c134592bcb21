"""Per-proxy counters: the evidence that traffic flowed and that a fault took effect."""

from __future__ import annotations

from dataclasses import dataclass, field

from chaos_service.engine.model import Direction


@dataclass(slots=True)
class DirectionCounters:
    """Traffic read from one direction's source: bytes, and messages where the protocol has them."""

    bytes: int = 0
    messages: int = 0


@dataclass(slots=True)
class ProxyStats:
    """Cumulative counters of one proxy since it was created."""

    connections: int = 0
    upstream: DirectionCounters = field(default_factory=DirectionCounters)
    downstream: DirectionCounters = field(default_factory=DirectionCounters)
    #: How many times each toxic (by name) took effect; kept after the toxic is removed.
    fired: dict[str, int] = field(default_factory=dict)

    def direction(self, direction: Direction) -> DirectionCounters:
        return self.upstream if direction is Direction.UPSTREAM else self.downstream

    def toxic_fired(self, name: str) -> None:
        self.fired[name] = self.fired.get(name, 0) + 1
