"""timeout: swallows all data; closes the connection after ``timeout`` ms without data.

The timer starts when the toxic starts and restarts on every swallowed chunk (an idle
timer). ``timeout: 0`` never closes: a black hole until the toxic is removed. Removing
the toxic closes the connections it was active on, since the bytes it swallowed would
otherwise leave both ends reading a corrupt stream.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from chaos_service.toxics.attributes import Integer
from chaos_service.toxics.base import Chunk, Deadline, Removal, Step, Toxic


@dataclass(frozen=True, slots=True)
class Timeout(Toxic):
    timeout: int = 0

    type_name = "timeout"
    attributes = (Integer("timeout", unit="ms", description="idle time before closing; 0 = never (black hole)"),)

    def _deadline(self, at: float) -> list[Step]:
        return [Deadline(at + self.timeout / 1000)] if self.timeout > 0 else []

    def start(self, now: float, state: Any) -> list[Step]:
        return self._deadline(now)

    def on_chunk(self, chunk: Chunk, state: Any, rng: random.Random) -> list[Step]:
        return self._deadline(chunk.at)

    def on_removal(self, state: Any) -> Removal:
        return Removal.CLOSE
