from __future__ import annotations

import json
import random

from chaos_service.http_faults import HttpError
from chaos_service.http_faults.request import RequestInfo

REQUEST = RequestInfo("POST", "/v1/chat/completions", body=b'{"model": "gpt-4o-mini"}')


def test_the_default_is_an_overloaded_503() -> None:
    reply = HttpError().answer(REQUEST, None, random.Random(0))
    assert reply.status == 503
    assert json.loads(reply.body)["error"]["message"] == "The server is overloaded or not ready yet."


def test_attributes_shape_the_reply() -> None:
    toxic = HttpError(status=429, message="slow down", retry_after=2.0, should_retry=True)
    reply = toxic.answer(REQUEST, None, random.Random(0))
    headers = dict(reply.headers)
    assert reply.status == 429
    assert json.loads(reply.body)["error"] == {
        "message": "slow down",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    assert (headers["retry-after"], headers["retry-after-ms"], headers["x-should-retry"]) == ("2", "2000", "true")


def test_a_gateway_error_can_be_an_html_page() -> None:
    reply = HttpError(status=504, html=True).answer(REQUEST, None, random.Random(0))
    assert b"504 Gateway Time-out" in reply.body
    assert dict(reply.headers)["content-type"] == "text/html"
