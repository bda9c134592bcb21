"""http_delay: hold the response headers back (a slow first token).

The delay is taken before the request goes upstream (or before a made-up reply is
sent), so the response then streams at its own pace. Several delays add up.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from chaos_service.http_faults.attributes import Attr
from chaos_service.http_faults.base import DelayToxic

DELAY = Attr("delay", "int", 0, "delay in milliseconds")
JITTER = Attr("jitter", "int", 0, "uniform variation of the delay in milliseconds, drawn per delay")


def jittered_ms(delay: int, jitter: int, rng: random.Random) -> int:
    """``delay`` plus a draw from the integers in ``[-jitter, +jitter)``, never below zero."""
    if jitter > 0:
        delay += rng.randrange(-jitter, jitter)
    return max(delay, 0)


@dataclass(frozen=True, slots=True)
class HttpDelay(DelayToxic):
    delay: int = 0
    jitter: int = 0

    type_name = "http_delay"
    attributes = (DELAY, JITTER)

    def delay_seconds(self, rng: random.Random) -> float:
        return jittered_ms(self.delay, self.jitter, rng) / 1000
