"""The chains' clock: the event loop's timers, read against the monotonic clock.

uvloop keeps time in milliseconds from a coarse clock cached once per loop iteration:
its timestamps are up to a millisecond old and its timers fire, on average, most of a
millisecond late. Chains therefore stamp chunks with ``time.monotonic()`` (read when the
data arrives), arm each timer `TIMER_LEAD` ahead of the release time, and release what
a timer finds within `TIMER_SLACK` of due (re-arming for anything further off). On an
idle machine this centres a 100 ms latency toxic's added delay on 100 ms, with 99% of
round trips within ±1 ms (bench/RESULTS.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

#: A timer that fires this close to an item's release time releases it.
TIMER_SLACK = 0.0005
#: How far ahead of a release time its timer is armed (the loop's typical lateness).
TIMER_LEAD = 0.0006


class LoopScheduler:
    """A `Scheduler` on an event loop, with the monotonic clock's resolution."""

    __slots__ = ("loop",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def time(self) -> float:
        return time.monotonic()

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> asyncio.TimerHandle:
        return self.loop.call_later(max(when - time.monotonic() - TIMER_LEAD, 0.0), callback, *args)
