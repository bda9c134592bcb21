from __future__ import annotations

import random

from chaos_service.http_faults import FailAttempts
from chaos_service.http_faults.fail_attempts import AttemptCounter, request_key
from chaos_service.http_faults.request import RequestInfo


def request(retry: int | None = None, body: bytes = b'{"model": "m"}') -> RequestInfo:
    headers = [] if retry is None else [(b"x-stainless-retry-count", str(retry).encode())]
    return RequestInfo("POST", "/v1/chat/completions", headers, body)


def statuses(toxic: FailAttempts, requests: list[RequestInfo]) -> list[int | None]:
    state = toxic.new_state()
    rng = random.Random(0)
    out: list[int | None] = []
    for req in requests:
        reply = toxic.answer(req, state, rng)
        out.append(None if reply is None else reply.status)
    return out


def test_numbered_attempts_fail_until_the_count_is_reached() -> None:
    toxic = FailAttempts(attempts=2, status=429)
    assert statuses(toxic, [request(0), request(1), request(2), request(0)]) == [429, 429, None, 429]


def test_unnumbered_attempts_are_counted_per_identical_request_and_restart_after_success() -> None:
    toxic = FailAttempts(attempts=2)
    other = request(body=b'{"model": "other"}')
    assert statuses(toxic, [request(), other, request(), request(), request(), other, other]) == [
        503,
        503,
        503,
        None,
        503,
        503,
        None,
    ]


def test_retry_after_is_sent() -> None:
    reply = FailAttempts(retry_after=0.5).answer(request(0), AttemptCounter(), random.Random(0))
    assert reply is not None and dict(reply.headers)["retry-after-ms"] == "500"


def test_zero_attempts_lets_everything_through() -> None:
    assert statuses(FailAttempts(attempts=0), [request(0), request()]) == [None, None]


def test_the_counter_is_bounded_and_forgets_the_oldest() -> None:
    counter = AttemptCounter(limit=3)
    for key in (b"a", b"b", b"c", b"a", b"d"):
        counter.next_attempt(key)
    assert len(counter) == 3
    assert counter.next_attempt(b"b") == 0  # evicted: counted afresh
    assert counter.next_attempt(b"a") == 2


def test_the_key_is_method_target_and_body() -> None:
    assert request_key(request()) == request_key(request(retry=3))
    assert request_key(request()) != request_key(request(body=b"{}"))
    assert request_key(RequestInfo("GET", "/a")) != request_key(RequestInfo("POST", "/a"))
