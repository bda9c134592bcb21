"""ws_delay: matching messages wait delay ± jitter; nothing overtakes anything."""

from __future__ import annotations

from chaos_service.ws_faults import Delay
from chaos_service.ws_faults.message import Close
from tests.ws_faults.relay_support import msg, stage_of, texts


def test_a_matching_message_is_released_after_the_delay() -> None:
    stage = stage_of(Delay(delay=250))
    assert stage.push(msg("a"), 1.0) == []
    assert stage.due() == 1.25
    assert stage.tick(1.2499) == []
    assert texts(stage.tick(1.25)) == ["a"]
    assert stage.due() is None


def test_non_matching_messages_pass_unless_something_is_held() -> None:
    stage = stage_of(Delay(field="type", value="slow", delay=100))
    assert texts(stage.push(msg('{"type": "fast"}'), 0.0)) == ['{"type": "fast"}']
    stage.push(msg('{"type": "slow"}'), 0.0)
    assert stage.push(msg('{"type": "fast"}'), 0.01) == []  # behind the slow one
    assert texts(stage.tick(0.1)) == ['{"type": "slow"}', '{"type": "fast"}']


def test_jitter_stays_within_bounds_and_never_reorders() -> None:
    stage = stage_of(Delay(delay=100, jitter=50), seed=3)
    release_times = []
    for i in range(100):
        stage.push(msg(str(i)), 0.0)
    while (due := stage.due()) is not None:
        out = stage.tick(due)
        release_times.extend([due] * len(out))
    assert len(release_times) == 100
    assert min(release_times) >= 0.05 - 1e-9
    assert max(release_times) <= 0.15 + 1e-9


def test_jitter_larger_than_the_delay_is_clamped_at_zero() -> None:
    stage = stage_of(Delay(delay=0, jitter=1000), seed=1)
    out = []
    for i in range(50):
        out.extend(stage.push(msg(str(i)), 0.0))
    while (due := stage.due()) is not None:
        assert 0.0 <= due <= 1.0
        out.extend(stage.tick(due))
    assert texts(out) == [str(i) for i in range(50)]


def test_flush_releases_everything_in_order_and_counts_held_bytes() -> None:
    stage = stage_of(Delay(delay=1000))
    stage.push(msg("ab"), 0.0)
    stage.push(Close(1000), 0.0)
    stage.push(msg("é"), 0.0)
    assert stage.held() == (3, 4)
    assert texts(stage.flush()) == ["ab", "close:1000", "é"]
    assert stage.held() == (0, 0)


def test_toxicity_zero_delays_nothing() -> None:
    assert texts(stage_of(Delay(delay=1000), toxicity=0.0).push(msg("a"), 0.0)) == ["a"]
