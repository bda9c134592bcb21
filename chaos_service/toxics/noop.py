"""noop: passes data through unchanged."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from chaos_service.toxics.base import Chunk, Emit, Step, Toxic


@dataclass(frozen=True, slots=True)
class Noop(Toxic):
    type_name = "noop"

    def on_chunk(self, chunk: Chunk, state: Any, rng: random.Random) -> list[Step]:
        return [Emit(chunk.data, chunk.at)]
