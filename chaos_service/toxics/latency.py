"""latency: delays every chunk by ``latency`` ± ``jitter`` milliseconds.

The delay counts from when the chunk became available (``Chunk.at``), so time spent
queued behind earlier chunks is part of it and delays do not accumulate over a stream.
Jitter is drawn per chunk, uniformly from the integers in ``[-jitter, +jitter)``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from chaos_service.toxics.base import Attribute, Chunk, Emit, Step, Toxic


@dataclass(frozen=True, slots=True)
class Latency(Toxic):
    latency: int = 0
    jitter: int = 0

    type_name = "latency"
    attributes = (
        Attribute("latency", "ms", "added delay per chunk"),
        Attribute("jitter", "ms", "uniform variation of the delay, per chunk"),
    )

    def delay_ms(self, rng: random.Random) -> int:
        """The delay for one chunk: latency plus a jitter draw, never below zero."""
        delay = self.latency
        if self.jitter > 0:
            delay += rng.randrange(-self.jitter, self.jitter)
        return max(delay, 0)

    def on_chunk(self, chunk: Chunk, state: Any, rng: random.Random) -> list[Step]:
        return [Emit(chunk.data, chunk.at + self.delay_ms(rng) / 1000)]
