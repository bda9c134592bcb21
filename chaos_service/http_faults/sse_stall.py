"""sse_stall: stop a stream after some events, then carry on.

The stall lasts ``duration`` milliseconds, or with 0 until the toxic is removed or
updated; either releases a stall at once. Meanwhile a ``: keep-alive`` comment can be
sent every ``keepalive`` milliseconds, as servers do to keep idle connections open.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from chaos_service.http_faults.base import AFTER, AfterEvents, Op, Pause
from chaos_service.toxics.attributes import Integer


@dataclass(frozen=True, slots=True)
class SseStall(AfterEvents):
    duration: int = 0
    keepalive: int = 0

    type_name = "sse_stall"
    attributes = (
        AFTER,
        Integer("duration", unit="ms", description="length of the stall (0: until the toxic is removed or updated)"),
        Integer("keepalive", unit="ms", description="send ': keep-alive' this often while stalled (0: never)"),
    )

    def act(self) -> list[Op]:
        seconds = self.duration / 1000 if self.duration else math.inf
        return [Pause(seconds, keepalive=self.keepalive / 1000)]
