from __future__ import annotations

import math

from chaos_service.http_faults import SseStall
from chaos_service.http_faults.base import FIRED, Pause, Send
from tests.http_faults.support import event, ops_for


def test_stalls_once_after_the_nth_event_with_keepalives() -> None:
    assert ops_for(SseStall(after=1, duration=1500, keepalive=200), [event(1), event(2), event(3)]) == [
        Send(event(1)),
        FIRED,
        Pause(1.5, keepalive=0.2),
        Send(event(2)),
        Send(event(3)),
    ]


def test_duration_zero_stalls_until_released() -> None:
    assert ops_for(SseStall(after=0), []) == [FIRED, Pause(math.inf, keepalive=0.0)]
