"""http_delay: hold the response headers back (a slow first token).

The delay is taken before the request goes upstream (or before a made-up reply is
sent), so the response then streams at its own pace. Several delays add up.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from chaos_service.http_faults.base import DelayToxic
from chaos_service.toxics.attributes import Integer
from chaos_service.toxics.latency import jittered_ms

DELAY = Integer("delay", unit="ms", description="delay of the response headers")
JITTER = Integer("jitter", unit="ms", description="uniform variation of the delay, drawn per delay")


@dataclass(frozen=True, slots=True)
class HttpDelay(DelayToxic):
    delay: int = 0
    jitter: int = 0

    type_name = "http_delay"
    attributes = (DELAY, JITTER)

    def delay_seconds(self, rng: random.Random) -> float:
        return jittered_ms(self.delay, self.jitter, rng) / 1000
