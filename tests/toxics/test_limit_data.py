import random

import pytest

from chaos_service.toxics import Chunk, Emit, EndStream, LimitData


def _run(limit: int, sizes: list[int]) -> tuple[bytes, bool]:
    toxic = LimitData(bytes=limit)
    state = toxic.new_state()
    passed = b""
    closed = False
    for size in sizes:
        if closed:
            break
        for step in toxic.on_chunk(Chunk(b"d" * size, 0.0), state, random.Random(0)):
            if isinstance(step, Emit):
                passed += step.data
            elif isinstance(step, EndStream):
                assert step.close_connection
                closed = True
    return passed, closed


@pytest.mark.parametrize(
    ("limit", "sizes", "passed", "closed"),
    [
        (100, [50], 50, False),
        (100, [100], 100, True),
        (100, [150], 100, True),
        (100, [25, 25, 25, 25], 100, True),
        (100, [90, 20], 100, True),
        (0, [10], 0, True),
    ],
)
def test_toxiproxys_cases(limit: int, sizes: list[int], passed: int, closed: bool) -> None:
    assert _run(limit, sizes) == (b"d" * passed, closed)
