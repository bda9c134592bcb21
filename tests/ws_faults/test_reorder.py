"""ws_reorder: windows of matching messages released shuffled, or in order on timeout."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from chaos_service.ws_faults import Reorder
from chaos_service.ws_faults.message import Close, Message
from chaos_service.ws_faults.reorder import shuffled
from tests.ws_faults.relay_support import msg, stage_of, texts


def test_a_full_window_is_released_in_another_order() -> None:
    stage = stage_of(Reorder(window=2))
    assert stage.push(msg("1"), 0.0) == []
    assert texts(stage.push(msg("2"), 0.0)) == ["2", "1"]


def test_the_order_is_seeded() -> None:
    def run(seed: int) -> list[str]:
        stage = stage_of(Reorder(window=5), seed=seed)
        out = []
        for i in range(5):
            out.extend(stage.push(msg(str(i)), 0.0))
        return texts(out)

    assert run(11) == run(11)
    assert len({tuple(run(seed)) for seed in range(20)}) > 1


def test_a_window_not_filled_in_time_goes_on_in_arrival_order() -> None:
    stage = stage_of(Reorder(window=3, timeout=200))
    stage.push(msg("1"), 1.0)
    stage.push(msg("2"), 1.1)
    assert stage.due() == 1.2
    assert stage.tick(1.19) == []
    assert texts(stage.tick(1.2)) == ["1", "2"]
    assert stage.due() is None


def test_non_matching_messages_pass_at_once() -> None:
    stage = stage_of(Reorder(field="type", value="token", window=2))
    assert stage.push(msg('{"type": "token", "n": 1}'), 0.0) == []
    assert texts(stage.push(msg('{"type": "done"}'), 0.0)) == ['{"type": "done"}']


def test_a_close_releases_the_held_messages_first() -> None:
    stage = stage_of(Reorder(window=3))
    stage.push(msg("1"), 0.0)
    stage.push(msg("2"), 0.0)
    assert texts(stage.push(Close(1000), 0.0)) == ["1", "2", "close:1000"]


def test_flush_is_arrival_order() -> None:
    stage = stage_of(Reorder(window=4))
    for i in range(3):
        stage.push(msg(str(i)), 0.0)
    assert stage.held() == (3, 3)
    assert texts(stage.flush()) == ["0", "1", "2"]
    assert stage.held() == (0, 0)


@given(st.integers(2, 30), st.randoms(use_true_random=False))
def test_shuffled_is_a_permutation_never_the_identity(size: int, rng: random.Random) -> None:
    items = [Message.of(str(i)) for i in range(size)]
    result = shuffled(items, rng)
    assert sorted(result, key=items.index) == items
    assert result != items
