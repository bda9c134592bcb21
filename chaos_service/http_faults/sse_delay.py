"""sse_delay: delay every event of a stream (token pacing)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from chaos_service.http_faults.base import FIRED, Op, Pause, Send, StreamToxic
from chaos_service.http_faults.http_delay import JITTER
from chaos_service.toxics.attributes import Integer
from chaos_service.toxics.latency import jittered_ms


@dataclass(frozen=True, slots=True)
class SseDelay(StreamToxic):
    delay: int = 0
    jitter: int = 0

    type_name = "sse_delay"
    attributes = (Integer("delay", unit="ms", description="delay before each event"), JITTER)

    def start(self, state: Any) -> list[Op]:
        return [FIRED]

    def on_event(self, event: bytes, state: Any, rng: random.Random) -> list[Op]:
        return [Pause(jittered_ms(self.delay, self.jitter, rng) / 1000), Send(event)]
