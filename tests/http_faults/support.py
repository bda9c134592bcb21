"""Helpers shared by the http fault tests (no tests here)."""

from __future__ import annotations

import random
from typing import Any

from chaos_service.http_faults.base import Op, StreamToxic


def event(n: int) -> bytes:
    return b'data: {"n": %d}\n\n' % n


def ops_for(toxic: StreamToxic, events: list[bytes], seed: int = 0) -> list[Op]:
    """Every op a stream toxic answers with over a whole stream (start included)."""
    rng = random.Random(seed)
    state: Any = toxic.new_state()
    ops = list(toxic.start(state))
    for block in events:
        ops += toxic.on_event(block, state, rng)
    return ops
