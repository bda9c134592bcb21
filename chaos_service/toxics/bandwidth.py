"""bandwidth: limits a direction of a connection to ``rate`` KB/s (1 KB = 1000 bytes).

Each byte is released when its transmission at ``rate`` would have finished; a chunk
larger than 100 ms worth of data is released in 100 ms slices. The schedule is kept in
the state, so the long-run rate is exact whatever the timer granularity. ``rate: 0``
holds the data until the toxic is removed (a stalled, half-open direction).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from chaos_service.toxics.attributes import Integer
from chaos_service.toxics.base import Chunk, Emit, Step, Toxic


@dataclass(slots=True)
class BandwidthState:
    #: When the previous byte finished "transmitting" (seconds, monotonic).
    free_at: float = -math.inf


@dataclass(frozen=True, slots=True)
class Bandwidth(Toxic):
    rate: int = 0

    type_name = "bandwidth"
    attributes = (Integer("rate", unit="KB/s", description="throughput limit per connection and direction"),)

    def new_state(self) -> BandwidthState:
        return BandwidthState()

    def start(self, now: float, state: BandwidthState) -> list[Step]:
        state.free_at = float("-inf")  # a restarted toxic keeps no schedule from before
        return []

    def on_chunk(self, chunk: Chunk, state: BandwidthState, rng: random.Random) -> list[Step]:
        if self.rate == 0:
            return [Emit(chunk.data, math.inf)]
        bytes_per_second = self.rate * 1000
        slice_size = self.rate * 100  # 100 ms worth
        start = max(chunk.at, state.free_at)
        steps: list[Step] = []
        sent = 0
        data = chunk.data
        while sent < len(data):
            piece = data[sent : sent + slice_size]
            sent += len(piece)
            steps.append(Emit(piece, start + sent / bytes_per_second))
        state.free_at = start + len(data) / bytes_per_second
        return steps
