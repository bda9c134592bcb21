import random

from hypothesis import given
from hypothesis import strategies as st

from chaos_service.toxics import Chunk, Emit, Slicer


def _slices(toxic: Slicer, data: bytes, seed: int = 0) -> list[Emit]:
    steps = toxic.on_chunk(Chunk(data, 0.0), toxic.new_state(), random.Random(seed))
    return [s for s in steps if isinstance(s, Emit)]


@given(
    average=st.integers(0, 64),
    variation=st.integers(0, 128),
    size=st.integers(0, 5000),
    seed=st.integers(0, 1000),
)
def test_slices_reassemble_to_the_chunk_and_are_never_empty(
    average: int, variation: int, size: int, seed: int
) -> None:
    data = random.Random(seed).randbytes(size)
    slices = _slices(Slicer(average_size=average, size_variation=variation), data, seed)
    assert b"".join(s.data for s in slices) == data
    assert all(s.data for s in slices) or size == 0


def test_average_size_one_without_variation_gives_one_byte_slices() -> None:
    assert len(_slices(Slicer(average_size=1), b"x" * 24)) == 24


def test_toxiproxys_reference_case_gives_240_to_720_slices() -> None:
    slices = _slices(Slicer(average_size=1024, size_variation=512, delay=10), b"z" * 480_000, seed=3)
    assert 240 <= len(slices) <= 720


def test_average_size_zero_passes_the_chunk_whole() -> None:
    assert [s.data for s in _slices(Slicer(average_size=0), b"abcdef")] == [b"abcdef"]


def test_delay_spaces_slices_and_carries_over_to_the_next_chunk() -> None:
    toxic = Slicer(average_size=1, delay=1000)  # 1 ms after each slice
    state = toxic.new_state()
    first = toxic.on_chunk(Chunk(b"ab", 0.0), state, random.Random(0))
    second = toxic.on_chunk(Chunk(b"c", 0.0), state, random.Random(0))
    assert [(s.data, round(s.at, 6)) for s in first + second if isinstance(s, Emit)] == [
        (b"a", 0.0),
        (b"b", 0.001),
        (b"c", 0.002),
    ]
