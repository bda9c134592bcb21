"""limit_data: passes ``bytes`` bytes per connection and direction, then closes.

The chunk that crosses the limit is truncated to it; the connection is closed once the
limit is reached (on receipt of data, as in Toxiproxy). ``bytes: 0`` drops the first
chunk and closes. The count survives updates of the toxic.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from chaos_service.toxics.attributes import Integer
from chaos_service.toxics.base import Chunk, Emit, EndStream, Step, Toxic


@dataclass(slots=True)
class LimitDataState:
    passed: int = 0


@dataclass(frozen=True, slots=True)
class LimitData(Toxic):
    bytes: int = 0

    type_name = "limit_data"
    attributes = (Integer("bytes", unit="bytes", description="bytes let through before the connection closes"),)

    def new_state(self) -> LimitDataState:
        return LimitDataState()

    def on_chunk(self, chunk: Chunk, state: LimitDataState, rng: random.Random) -> list[Step]:
        take = max(min(len(chunk.data), self.bytes - state.passed), 0)
        state.passed += take
        steps: list[Step] = [Emit(chunk.data[:take], chunk.at)] if take else []
        if state.passed >= self.bytes:
            steps.append(EndStream(chunk.at, close_connection=True))
        return steps
