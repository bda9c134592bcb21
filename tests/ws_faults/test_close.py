"""ws_close: one close action per connection, after ``after`` matching messages."""

from __future__ import annotations

from chaos_service.ws_faults import CloseAfter
from chaos_service.ws_faults.message import Close
from tests.ws_faults.relay_support import msg, stage_of, texts


def test_closes_both_sides_after_the_third_matching_message() -> None:
    stage = stage_of(CloseAfter(after=3, code=1012, reason="restart"))
    assert stage.start(0.0) == []
    assert texts(stage.push(msg("1"), 0.0) + stage.push(msg("2"), 0.0)) == ["1", "2"]
    out = stage.push(msg("3"), 0.0)
    assert out[-1] == Close(1012, "restart", both=True)
    assert texts(out) == ["3", "close:1012"]
    assert texts(stage.push(msg("4"), 0.0)) == ["4"]  # fires once


def test_after_zero_closes_as_soon_as_the_toxic_applies() -> None:
    assert stage_of(CloseAfter(code=4000)).start(0.0) == [Close(4000, "", both=True)]


def test_only_matching_messages_count() -> None:
    stage = stage_of(CloseAfter(field="type", value="done", after=1, code=1000))
    assert texts(stage.push(msg('{"type": "token"}'), 0.0)) == ['{"type": "token"}']
    assert texts(stage.push(msg('{"type": "done"}'), 0.0)) == ['{"type": "done"}', "close:1000"]


def test_toxicity_is_a_coin_per_connection() -> None:
    stages = [stage_of(CloseAfter(after=1), toxicity=0.5, seed=seed) for seed in range(40)]
    closing = [bool(stage.start(0.0) or len(stage.push(msg("x"), 0.0)) == 2) for stage in stages]
    assert 5 < sum(closing) < 35
    never = stage_of(CloseAfter(after=0), toxicity=0.0)
    assert never.start(0.0) == [] and texts(never.push(msg("x"), 0.0)) == ["x"]


def test_an_update_keeps_the_count_and_closes_at_once_when_already_past() -> None:
    old = stage_of(CloseAfter(after=10, code=4001))
    for i in range(4):
        old.push(msg(str(i)), 0.0)
    new = stage_of(CloseAfter(after=3, code=4002), previous=old)
    assert new.start(0.0) == [Close(4002, "", both=True)]
    done = stage_of(CloseAfter(after=1, code=4003), previous=new)
    assert done.start(0.0) == []  # one close per connection


def test_1006_is_an_abort() -> None:
    assert stage_of(CloseAfter(code=1006)).start(0.0) == [Close(1006, "", both=True)]
