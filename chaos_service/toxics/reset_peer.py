"""reset_peer: on the first chunk (or end-of-stream), waits ``timeout`` ms, then resets.

The chunk that triggers it and everything after it are discarded; the connection is
then aborted with a TCP RST on both sides, so peers read ``ECONNRESET``. Once
triggered, the reset happens whatever else is done to the toxic: an update re-arms it
with the new timeout (counted from the trigger) and a removal resets at once, since
the discarded bytes have left the stream corrupt.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from chaos_service.toxics.attributes import Integer
from chaos_service.toxics.base import Chunk, Deadline, Removal, Step, Toxic


@dataclass(slots=True)
class ResetPeerState:
    #: When the first chunk (or the end of the stream) arrived; None until then.
    triggered_at: float | None = None


@dataclass(frozen=True, slots=True)
class ResetPeer(Toxic):
    timeout: int = 0

    type_name = "reset_peer"
    attributes = (Integer("timeout", unit="ms", description="wait after the first chunk before the reset"),)

    def new_state(self) -> ResetPeerState:
        return ResetPeerState()

    def _reset_deadline(self, state: ResetPeerState) -> list[Step]:
        assert state.triggered_at is not None
        return [Deadline(state.triggered_at + self.timeout / 1000, reset=True)]

    def _trigger(self, at: float, state: ResetPeerState) -> list[Step]:
        if state.triggered_at is not None:
            return []
        state.triggered_at = at
        return self._reset_deadline(state)

    def start(self, now: float, state: ResetPeerState) -> list[Step]:
        return self._reset_deadline(state) if state.triggered_at is not None else []

    def on_removal(self, state: ResetPeerState) -> Removal:
        return Removal.RESET if state.triggered_at is not None else Removal.KEEP

    def on_chunk(self, chunk: Chunk, state: ResetPeerState, rng: random.Random) -> list[Step]:
        return self._trigger(chunk.at, state)

    def on_eof(self, at: float, state: ResetPeerState) -> list[Step]:
        return self._trigger(at, state)
