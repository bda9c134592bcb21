from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from chaos_service.http_faults import HttpDelay
from chaos_service.http_faults.http_delay import jittered_ms


def test_the_delay_is_in_milliseconds() -> None:
    assert HttpDelay(delay=250).delay_seconds(random.Random(0)) == 0.25


@given(delay=st.integers(0, 10_000), jitter=st.integers(0, 10_000), seed=st.integers(0, 2**32))
def test_jitter_stays_within_bounds_and_never_goes_negative(delay: int, jitter: int, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(10):
        value = jittered_ms(delay, jitter, rng)
        assert max(delay - jitter, 0) <= value <= max(delay + jitter - 1, delay)


def test_jitter_covers_both_sides() -> None:
    rng = random.Random(3)
    values = {jittered_ms(100, 10, rng) for _ in range(2000)}
    assert (min(values), max(values)) == (90, 109)
