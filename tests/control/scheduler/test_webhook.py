"""Posting a game day's results to its webhook: retried on connection errors and 5xx, never raising."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from chaos_service.control.scheduler.webhook import notify, payload
from tests.support.webhook import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def a_closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


BODY = {"schedule": "thursdays", "outcome": "passed", "runs": []}


def test_the_payload_is_posted_as_json_once_when_the_receiver_accepts_it(receiver: Receiver) -> None:
    assert asyncio.run(notify(receiver.url, BODY)) == {"status": 200, "attempts": 1}
    [(headers, body)] = receiver.requests
    assert body == BODY
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == "chaos-service-gamedays"


def test_5xx_answers_are_retried_until_one_is_not(receiver: Receiver) -> None:
    receiver.statuses = [503, 500, 204]
    assert asyncio.run(notify(receiver.url, BODY, backoff=0.01)) == {"status": 204, "attempts": 3}
    assert receiver.bodies == [BODY] * 3


def test_the_last_5xx_is_reported_after_the_last_attempt(receiver: Receiver) -> None:
    receiver.statuses = [502, 502, 502]
    assert asyncio.run(notify(receiver.url, BODY, attempts=2, backoff=0.01)) == {"status": 502, "attempts": 2}
    assert len(receiver.bodies) == 2 and receiver.statuses == [502]


def test_a_4xx_answer_is_final(receiver: Receiver) -> None:
    receiver.statuses = [404, 200]
    assert asyncio.run(notify(receiver.url, BODY, backoff=0.01)) == {"status": 404, "attempts": 1}
    assert len(receiver.bodies) == 1


def test_an_unreachable_receiver_is_retried_then_reported() -> None:
    result = asyncio.run(notify(f"http://127.0.0.1:{a_closed_port()}/hook", BODY, attempts=2, backoff=0.01))
    assert result["attempts"] == 2 and result["error"].startswith("ConnectError")


def test_a_receiver_that_does_not_answer_in_time_is_reported(receiver: Receiver) -> None:
    receiver.answering.clear()
    result = asyncio.run(notify(receiver.url, BODY, timeout=0.2, attempts=1))
    assert result == {"error": "ReadTimeout", "attempts": 1}


@pytest.mark.parametrize(
    ("url", "error"),
    [("ftp://example.invalid/hook", "UnsupportedProtocol"), ("http://[::1", "InvalidURL"), ("", "UnsupportedProtocol")],
)
def test_an_unusable_url_is_reported_at_once_without_raising(url: str, error: str) -> None:
    result = asyncio.run(notify(url, BODY, backoff=5))
    assert result["attempts"] == 1 and result["error"].startswith(error)


def test_a_body_that_is_not_json_is_reported_without_raising(receiver: Receiver) -> None:
    result = asyncio.run(notify(receiver.url, {"at": datetime.now(UTC)}))
    assert result["error"].startswith("TypeError") and receiver.requests == []


def test_the_payload_names_the_firing_with_its_fire_time_in_utc() -> None:
    fire_time = datetime(2025, 3, 27, 14, tzinfo=ZoneInfo("Europe/Berlin"))
    runs = [{"experiment": "a", "run_id": "r1", "status": "passed", "reason": ""}]
    assert payload("thursdays", 7, fire_time, "passed", runs) == {
        "schedule": "thursdays",
        "firing": 7,
        "fire_time": "2025-03-27T13:00:00+00:00",
        "outcome": "passed",
        "runs": runs,
    }
    assert payload("thursdays", 8, fire_time, "skipped", [], "halted: incident")["reason"] == "halted: incident"
