"""Time, injected: production code asks a `Clock`, tests hand in a fake one."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a monotonic clock; only differences are meaningful."""
        ...


class MonotonicClock:
    """The process's monotonic clock (the same one asyncio event loops use)."""

    def now(self) -> float:
        return time.monotonic()
