"""latency: delays every chunk by ``latency`` ± ``jitter`` milliseconds.

The delay counts from when the chunk became available (``Chunk.at``), so time spent
queued behind earlier chunks is part of it and delays do not accumulate over a stream.
Jitter is drawn per chunk, uniformly from the integers in ``[-jitter, +jitter)``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from chaos_service.toxics.attributes import Integer
from chaos_service.toxics.base import Chunk, Emit, Step, Toxic


def jittered_ms(delay: int, jitter: int, rng: random.Random) -> int:
    """``delay`` plus a draw from the integers in ``[-jitter, +jitter)``, never below zero.

    Toxiproxy's jitter; the http delays draw theirs the same way.
    """
    if jitter > 0:
        delay += rng.randrange(-jitter, jitter)
    return max(delay, 0)


@dataclass(frozen=True, slots=True)
class Latency(Toxic):
    latency: int = 0
    jitter: int = 0

    type_name = "latency"
    attributes = (
        Integer("latency", unit="ms", description="added delay per chunk"),
        Integer("jitter", unit="ms", description="uniform variation of the delay, per chunk"),
    )

    def delay_ms(self, rng: random.Random) -> int:
        """The delay for one chunk: latency plus a jitter draw, never below zero."""
        return jittered_ms(self.latency, self.jitter, rng)

    def on_chunk(self, chunk: Chunk, state: Any, rng: random.Random) -> list[Step]:
        return [Emit(chunk.data, chunk.at + self.delay_ms(rng) / 1000)]
