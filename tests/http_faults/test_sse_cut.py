from __future__ import annotations

import random

from chaos_service.http_faults import SseCut
from chaos_service.http_faults.base import FIRED, EventCount, Finish, Send
from tests.http_faults.support import event, ops_for


def test_ends_the_stream_right_after_the_nth_event() -> None:
    assert ops_for(SseCut(after=2), [event(1), event(2), event(3)]) == [
        Send(event(1)),
        Send(event(2)),
        FIRED,
        Finish(reset=False),
        Send(event(3)),  # never reached by the shell: Finish ends the response
    ]


def test_reset_mode_aborts() -> None:
    assert Finish(reset=True) in ops_for(SseCut(after=1, mode="reset"), [event(1)])


def test_after_zero_cuts_before_the_first_event() -> None:
    toxic = SseCut(after=0)
    assert toxic.start(toxic.new_state()) == [FIRED, Finish(reset=False)]


def test_a_stream_shorter_than_after_is_untouched() -> None:
    assert ops_for(SseCut(after=5), [event(1), event(2)]) == [Send(event(1)), Send(event(2))]


def test_an_update_keeps_the_count_and_acts_once() -> None:
    state = EventCount()
    rng = random.Random(0)
    for n in range(3):
        SseCut(after=10).on_event(event(n), state, rng)
    assert SseCut(after=2).on_event(event(3), state, rng) == [Send(event(3)), FIRED, Finish(reset=False)]
    assert SseCut(after=2).on_event(event(4), state, rng) == [Send(event(4))]
