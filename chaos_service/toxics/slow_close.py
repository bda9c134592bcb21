"""slow_close: delays the end of a stream by ``delay`` milliseconds; data passes as is."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from chaos_service.toxics.attributes import Integer
from chaos_service.toxics.base import Chunk, Emit, EndStream, Step, Toxic


@dataclass(frozen=True, slots=True)
class SlowClose(Toxic):
    delay: int = 0

    type_name = "slow_close"
    attributes = (Integer("delay", unit="ms", description="wait before the close is passed on"),)

    def on_chunk(self, chunk: Chunk, state: Any, rng: random.Random) -> list[Step]:
        return [Emit(chunk.data, chunk.at)]

    def on_eof(self, at: float, state: Any) -> list[Step]:
        return [EndStream(at + self.delay / 1000)]
