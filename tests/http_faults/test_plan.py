from __future__ import annotations

import random
from typing import Any

from chaos_service.engine.model import Direction, ToxicEntry
from chaos_service.http_faults import FailAttempts, HttpDelay, HttpError, HttpToxic, SseCut, SseDelay
from chaos_service.http_faults.plan import TOXIC_HEADER, plan_request
from chaos_service.http_faults.request import RequestInfo

CHAT = RequestInfo("POST", "/v1/chat/completions", [], b'{"model": "gpt-4o-mini"}')
MODELS = RequestInfo("GET", "/v1/models")


def entry(name: str, toxic: HttpToxic, toxicity: float = 1.0) -> ToxicEntry:
    return ToxicEntry(name, "downstream", Direction.DOWNSTREAM, toxicity, toxic)


def plan(*entries: ToxicEntry, request: RequestInfo = CHAT, seed: int = 0, states: dict[str, Any] | None = None):  # type: ignore[no-untyped-def]
    return plan_request(request, entries, random.Random(seed), {} if states is None else states)


def test_no_toxics_no_plan() -> None:
    result = plan()
    assert (result.reply, result.delays, result.streams, result.fired) == (None, [], [], [])


def test_an_error_answers_and_names_its_toxic() -> None:
    result = plan(entry("boom", HttpError(status=500)))
    assert result.reply is not None and result.reply.status == 500
    assert (TOXIC_HEADER, "boom") in result.reply.headers
    assert result.fired == ["boom"]


def test_the_first_answer_wins_and_stream_toxics_stay_out() -> None:
    result = plan(entry("cut", SseCut()), entry("first", HttpError(status=429)), entry("second", HttpError(status=500)))
    assert result.reply is not None and result.reply.status == 429
    assert result.streams == [] and result.fired == ["first"]


def test_delays_add_up_whatever_their_place() -> None:
    result = plan(entry("e", HttpError()), entry("d1", HttpDelay(delay=100)), entry("d2", HttpDelay(delay=50)))
    assert [(name, seconds) for name, _, seconds in result.delays] == [("d1", 0.1), ("d2", 0.05)]
    assert result.fired == ["e", "d1", "d2"]


def test_stream_toxics_keep_chain_order_and_fire_only_when_they_act() -> None:
    cut, pace = SseCut(after=3), SseDelay(delay=5)
    result = plan(entry("cut", cut), entry("pace", pace))
    assert result.streams == [("cut", cut), ("pace", pace)]
    assert result.fired == []


def test_match_attributes_select_requests() -> None:
    toxics = (entry("chat-only", HttpError(path="/v1/chat/*")), entry("mini", HttpDelay(delay=1, model="*-mini")))
    assert plan(*toxics).fired == ["chat-only", "mini"]
    assert plan(*toxics, request=MODELS).fired == []
    assert plan(entry("get", HttpError(method="GET")), request=MODELS).fired == ["get"]


def test_toxicity_is_a_reproducible_coin_flip_per_request() -> None:
    never = [plan(entry("e", HttpError(), toxicity=0.0), seed=s).reply for s in range(50)]
    assert never == [None] * 50
    always = [plan(entry("e", HttpError(), toxicity=1.0), seed=s).reply for s in range(50)]
    assert None not in always
    half = [plan(entry("e", HttpError(), toxicity=0.5), seed=s).reply is not None for s in range(400)]
    assert 150 < sum(half) < 250
    assert half == [plan(entry("e", HttpError(), toxicity=0.5), seed=s).reply is not None for s in range(400)]


def test_answer_state_lives_in_the_callers_map() -> None:
    states: dict[str, Any] = {}
    toxic = entry("retry", FailAttempts(attempts=1))
    assert plan(toxic, states=states).reply is not None
    assert "retry" in states
    assert plan(toxic, states=states).reply is None  # second identical attempt goes through
