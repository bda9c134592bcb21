from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from chaos_service.http_faults import HttpDelay, SseDelay
from chaos_service.http_faults.base import Pause
from chaos_service.toxics import Latency


def test_the_delay_is_in_milliseconds() -> None:
    assert HttpDelay(delay=250).delay_seconds(random.Random(0)) == 0.25


@given(delay=st.integers(0, 10_000), jitter=st.integers(0, 10_000), seed=st.integers(0, 2**32))
def test_jitter_is_drawn_as_the_tcp_latency_draws_it(delay: int, jitter: int, seed: int) -> None:
    # The bounds and spread of the draw are tested with the latency toxic (tests/toxics/test_latency.py).
    expected = Latency(latency=delay, jitter=jitter).delay_ms(random.Random(seed)) / 1000
    assert HttpDelay(delay=delay, jitter=jitter).delay_seconds(random.Random(seed)) == expected
    steps = SseDelay(delay=delay, jitter=jitter).on_event(b"data: x\n\n", None, random.Random(seed))
    assert steps[0] == Pause(expected)
