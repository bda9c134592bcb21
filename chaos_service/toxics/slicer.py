"""slicer: cuts chunks into smaller ones, pausing ``delay`` microseconds after each.

A chunk of n bytes is kept whole when ``n - average_size <= size_variation``; otherwise
it is cut near the middle (moved by a uniform draw from ``[-size_variation,
size_variation)``) and both halves are sliced again. ``average_size: 0`` means no slicing
(Toxiproxy loops forever on it), and a cut always leaves at least one byte on each side
(Toxiproxy panics when ``size_variation >= average_size``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from chaos_service.toxics.attributes import Integer
from chaos_service.toxics.base import Chunk, Emit, Step, Toxic


@dataclass(slots=True)
class SlicerState:
    #: When the pause after the previous slice ends.
    free_at: float = float("-inf")


@dataclass(frozen=True, slots=True)
class Slicer(Toxic):
    average_size: int = 0
    size_variation: int = 0
    delay: int = 0

    type_name = "slicer"
    attributes = (
        Integer("average_size", unit="bytes", description="target slice size; 0 = no slicing"),
        Integer("size_variation", unit="bytes", description="variation of the cut point"),
        Integer("delay", unit="µs", description="pause after each slice"),
    )

    def new_state(self) -> SlicerState:
        return SlicerState()

    def cut_points(self, size: int, rng: random.Random) -> list[int]:
        """Slice boundaries (ends of each slice) for a chunk of ``size`` bytes, in order."""
        if self.average_size <= 0 or size == 0:
            return [size]
        ends: list[int] = []
        pending = [(0, size)]  # a stack of [start, end) ranges, leftmost on top
        while pending:
            start, end = pending.pop()
            length = end - start
            if length - self.average_size <= self.size_variation or length < 2:
                ends.append(end)
                continue
            mid = length // 2
            if self.size_variation > 0:
                mid += rng.randrange(-self.size_variation, self.size_variation)
            mid = min(max(mid, 1), length - 1)
            pending.append((start + mid, end))
            pending.append((start, start + mid))
        return ends

    def start(self, now: float, state: SlicerState) -> list[Step]:
        state.free_at = float("-inf")  # a restarted toxic keeps no schedule from before
        return []

    def on_chunk(self, chunk: Chunk, state: SlicerState, rng: random.Random) -> list[Step]:
        at = max(chunk.at, state.free_at)
        pause = self.delay / 1_000_000
        steps: list[Step] = []
        begin = 0
        for end in self.cut_points(len(chunk.data), rng):
            steps.append(Emit(chunk.data[begin:end], at))
            at += pause
            begin = end
        state.free_at = at
        return steps
