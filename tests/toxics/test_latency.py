import random

from hypothesis import given
from hypothesis import strategies as st

from chaos_service.toxics import Chunk, Emit, Latency


def test_delays_each_chunk_from_its_arrival() -> None:
    steps = Latency(latency=100).on_chunk(Chunk(b"abc", 5.0), None, random.Random(0))
    assert steps == [Emit(b"abc", 5.1)]


@given(
    latency=st.integers(0, 10_000),
    jitter=st.integers(0, 10_000),
    seed=st.integers(0, 2**32),
)
def test_jitter_draws_from_half_open_interval_and_never_goes_negative(latency: int, jitter: int, seed: int) -> None:
    toxic = Latency(latency=latency, jitter=jitter)
    rng = random.Random(seed)
    for _ in range(20):
        delay = toxic.delay_ms(rng)
        assert max(latency - jitter, 0) <= delay
        assert delay < latency + jitter or (jitter == 0 and delay == latency)


def test_jitter_covers_both_sides() -> None:
    toxic = Latency(latency=100, jitter=10)
    rng = random.Random(7)
    delays = {toxic.delay_ms(rng) for _ in range(2000)}
    assert min(delays) == 90
    assert max(delays) == 109
