"""A virtual-time scheduler and a recording sink, for driving chains without sockets."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(order=True)
class _Timer:
    when: float
    seq: int
    callback: Callable[..., Any] = field(compare=False)
    args: tuple[Any, ...] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class VirtualScheduler:
    """Satisfies the chain's `Scheduler`; time moves only when the test advances it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._timers: list[_Timer] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> _Timer:
        timer = _Timer(when, next(self._seq), callback, args)
        heapq.heappush(self._timers, timer)
        return timer

    @property
    def pending(self) -> int:
        return sum(1 for timer in self._timers if not timer.cancelled)

    def advance_to(self, when: float) -> None:
        """Run every timer due up to ``when`` in order, then set the clock to ``when``."""
        while self._timers and self._timers[0].when <= when:
            timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self.now = max(self.now, timer.when)
            timer.callback(*timer.args)
        self.now = max(self.now, when)

    def advance(self, seconds: float) -> None:
        self.advance_to(self.now + seconds)

    def run_all(self, limit: float = 1e6) -> None:
        """Run timers until none is left (or the clock passes ``now + limit``)."""
        self.advance_to(self.now + limit)


@dataclass
class RecordingSink:
    """Records what reaches the end of a chain, with the virtual time it arrived."""

    scheduler: VirtualScheduler
    writes: list[tuple[float, bytes]] = field(default_factory=list)
    ends: list[tuple[float, bool]] = field(default_factory=list)
    resets: list[float] = field(default_factory=list)

    def write(self, data: bytes) -> None:
        self.writes.append((self.scheduler.now, data))

    def end(self, close_connection: bool) -> None:
        self.ends.append((self.scheduler.now, close_connection))

    def reset(self) -> None:
        self.resets.append(self.scheduler.now)

    @property
    def data(self) -> bytes:
        return b"".join(chunk for _, chunk in self.writes)
