from __future__ import annotations

import json
import random

import pytest

from chaos_service.http_faults.replies import error_body, error_reply, error_style, gateway_html, go_duration


def test_the_body_is_openai_shaped() -> None:
    assert json.loads(error_body(500)) == {
        "error": {
            "message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
    assert json.loads(error_body(503, "custom"))["error"]["message"] == "custom"


@pytest.mark.parametrize(
    ("status", "type_", "code"),
    [
        (429, "requests", "rate_limit_exceeded"),
        (500, "server_error", None),
        (503, "server_error", "overloaded"),
        (529, "overloaded_error", "overloaded"),
        (401, "invalid_request_error", "invalid_api_key"),
        (418, "invalid_request_error", None),
        (599, "server_error", None),
    ],
)
def test_each_status_has_its_realistic_type_and_code(status: int, type_: str, code: str | None) -> None:
    style = error_style(status)
    assert (style.type, style.code) == (type_, code)


def test_a_429_carries_rate_limit_and_retry_headers() -> None:
    reply = error_reply(429, rng=random.Random(1), retry_after=0.25)
    headers = dict(reply.headers)
    assert reply.status == 429
    assert headers["content-type"] == "application/json"
    assert headers["retry-after"] == "1"  # whole seconds, rounded up
    assert headers["retry-after-ms"] == "250"
    assert headers["x-ratelimit-limit-requests"] == "60"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"] == "250ms"
    assert headers["x-request-id"].startswith("req_")
    assert "x-should-retry" not in headers


def test_should_retry_and_html_bodies() -> None:
    reply = error_reply(502, rng=random.Random(1), should_retry=False, html=True)
    headers = dict(reply.headers)
    assert headers["x-should-retry"] == "false"
    assert headers["content-type"] == "text/html"
    assert reply.body == gateway_html(502) and b"502 Bad Gateway" in reply.body
    assert "retry-after" not in headers and "x-ratelimit-limit-requests" not in headers
    assert dict(error_reply(503, rng=random.Random(1), should_retry=True).headers)["x-should-retry"] == "true"


def test_request_ids_are_reproducible_from_the_seed() -> None:
    first = error_reply(500, rng=random.Random(7))
    assert first == error_reply(500, rng=random.Random(7))


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.2, "200ms"),
        (0.0015, "1.5ms"),
        (1, "1s"),
        (1.5, "1.5s"),
        (60, "1m0s"),
        (360, "6m0s"),
        (3723, "1h2m3s"),
    ],
)
def test_durations_read_as_go_prints_them(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text
