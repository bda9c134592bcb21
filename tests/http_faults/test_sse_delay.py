from __future__ import annotations

from chaos_service.http_faults import SseDelay
from chaos_service.http_faults.base import FIRED, Pause, Send
from tests.http_faults.support import event, ops_for


def test_each_event_waits_its_delay_first() -> None:
    assert ops_for(SseDelay(delay=40), [event(1), event(2)]) == [
        FIRED,
        Pause(0.04),
        Send(event(1)),
        Pause(0.04),
        Send(event(2)),
    ]


def test_jitter_is_drawn_per_event_and_reproducible() -> None:
    pauses = [
        op.seconds
        for op in ops_for(SseDelay(delay=50, jitter=20), [event(i) for i in range(50)], seed=4)
        if isinstance(op, Pause)
    ]
    assert len(set(pauses)) > 5
    assert all(0.03 <= p < 0.07 for p in pauses)
    assert pauses == [
        op.seconds
        for op in ops_for(SseDelay(delay=50, jitter=20), [event(i) for i in range(50)], seed=4)
        if isinstance(op, Pause)
    ]
