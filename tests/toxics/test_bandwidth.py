import math
import random

from hypothesis import given
from hypothesis import strategies as st

from chaos_service.toxics import Bandwidth, Chunk, Emit


@given(
    rate=st.integers(1, 100_000),
    sizes=st.lists(st.integers(1, 200_000), min_size=1, max_size=20),
)
def test_back_to_back_chunks_leave_at_exactly_the_rate(rate: int, sizes: list[int]) -> None:
    toxic = Bandwidth(rate=rate)
    state = toxic.new_state()
    emitted: list[Emit] = []
    payload = b""
    for index, size in enumerate(sizes):
        data = bytes([index % 256]) * size
        payload += data
        emitted += [s for s in toxic.on_chunk(Chunk(data, 0.0), state, random.Random(0)) if isinstance(s, Emit)]
    assert b"".join(e.data for e in emitted) == payload
    assert math.isclose(emitted[-1].at, len(payload) / (rate * 1000), rel_tol=1e-9)
    assert all(len(e.data) <= rate * 100 for e in emitted)
    assert [e.at for e in emitted] == sorted(e.at for e in emitted)


def test_an_idle_gap_is_not_banked_as_credit() -> None:
    toxic = Bandwidth(rate=1)  # 1000 B/s
    state = toxic.new_state()
    toxic.on_chunk(Chunk(b"x" * 100, 0.0), state, random.Random(0))
    later = toxic.on_chunk(Chunk(b"x" * 100, 10.0), state, random.Random(0))
    assert later == [Emit(b"x" * 100, 10.1)]


def test_rate_zero_holds_the_data_forever() -> None:
    assert Bandwidth(rate=0).on_chunk(Chunk(b"abc", 1.0), None, random.Random(0)) == [Emit(b"abc", math.inf)]


def test_large_chunks_are_released_in_100ms_slices() -> None:
    toxic = Bandwidth(rate=10)  # 10 000 B/s → 1 000 B per 100 ms
    steps = toxic.on_chunk(Chunk(b"y" * 2500, 0.0), toxic.new_state(), random.Random(0))
    assert [(len(s.data), round(s.at, 9)) for s in steps if isinstance(s, Emit)] == [
        (1000, 0.1),
        (1000, 0.2),
        (500, 0.25),
    ]
