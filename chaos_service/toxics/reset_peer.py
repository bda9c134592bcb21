"""reset_peer: on the first chunk (or end-of-stream), waits ``timeout`` ms, then resets.

The chunk that triggers it and everything after it are discarded; the connection is
then aborted with a TCP RST on both sides, so peers read ``ECONNRESET``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from chaos_service.toxics.base import Attribute, Chunk, Deadline, Step, Toxic


@dataclass(slots=True)
class ResetPeerState:
    triggered: bool = False


@dataclass(frozen=True, slots=True)
class ResetPeer(Toxic):
    timeout: int = 0

    type_name = "reset_peer"
    attributes = (Attribute("timeout", "ms", "wait after the first chunk before the reset"),)

    def new_state(self) -> ResetPeerState:
        return ResetPeerState()

    def _trigger(self, at: float, state: ResetPeerState) -> list[Step]:
        if state.triggered:
            return []
        state.triggered = True
        return [Deadline(at + self.timeout / 1000, reset=True)]

    def on_chunk(self, chunk: Chunk, state: ResetPeerState, rng: random.Random) -> list[Step]:
        return self._trigger(chunk.at, state)

    def on_eof(self, at: float, state: ResetPeerState) -> list[Step]:
        return self._trigger(at, state)
