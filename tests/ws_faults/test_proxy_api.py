"""The engine API with websocket toxics: validation, nothing changed on errors, round trips."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.ws_faults.ws_support import WsUpstream, add_toxic, create_ws_proxy


@pytest.fixture
def proxy(api: httpx.Client) -> Iterator[str]:
    with WsUpstream() as upstream:
        create_ws_proxy(api, upstream.address)
        yield "chat_ws"


def toxics(api: httpx.Client) -> list[dict[str, Any]]:
    return list(api.get("/proxies/chat_ws/toxics").json())


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"type": "ws_delay", "attributes": {"delay": -5}},
            "attribute 'delay' of toxic type ws_delay must be an integer from 0 to 86400000 (ms), got -5",
        ),
        (
            {"type": "ws_delay", "attributes": {"latency": 5}},
            "unknown attribute 'latency' for toxic type ws_delay (valid: delay, field, jitter, value)",
        ),
        (
            {"type": "ws_close", "attributes": {"code": 1005}},
            "attribute 'code' of toxic type ws_close must be one of 1000, 1001, 1006 (abort without a close frame),"
            " 1008, 1011, 1012, 1013 or 3000-4999, got 1005",
        ),
        (
            {"type": "ws_refuse", "attributes": {"status": 200}},
            "attribute 'status' of toxic type ws_refuse must be an integer from 400 to 599 (HTTP status), got 200",
        ),
        (
            {"type": "ws_drop", "attributes": {"value": "x"}},
            "attribute 'value' of toxic type ws_drop needs a 'field' to compare with",
        ),
        (
            {"type": "latency", "attributes": {"latency": 100}},
            "invalid toxic type: 'latency' is not one of ws_close, ws_delay, ws_drop, ws_duplicate, ws_refuse,"
            " ws_reorder (protocol websocket)",
        ),
    ],
)
def test_bad_toxics_are_a_400_with_a_clear_message_and_change_nothing(
    api: httpx.Client, proxy: str, body: dict[str, Any], message: str
) -> None:
    add_toxic(api, "ws_drop", name="existing")
    response = api.post(f"/proxies/{proxy}/toxics", json=body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert [t["name"] for t in toxics(api)] == ["existing"]


def test_a_bad_update_is_a_400_and_keeps_the_toxic_as_it_was(api: httpx.Client, proxy: str) -> None:
    created = add_toxic(api, "ws_delay", {"delay": 100}, name="slow")
    response = api.patch(f"/proxies/{proxy}/toxics/slow", json={"attributes": {"jitter": "lots"}})
    assert response.status_code == 400
    assert "attribute 'jitter' of toxic type ws_delay must be an integer" in response.json()["error"]
    assert api.get(f"/proxies/{proxy}/toxics/slow").json() == created


def test_attributes_are_shown_in_full_and_patches_merge(api: httpx.Client, proxy: str) -> None:
    created = add_toxic(api, "ws_close", {"After": 3, "CODE": 1012.0, "reason": None}, name="restart")
    assert created["attributes"] == {"field": "", "value": "", "after": 3, "code": 1012, "reason": ""}
    response = api.patch(f"/proxies/{proxy}/toxics/restart", json={"attributes": {"reason": "restart"}})
    assert response.status_code == 200
    assert response.json()["attributes"] == {"field": "", "value": "", "after": 3, "code": 1012, "reason": "restart"}
    refuse = add_toxic(api, "ws_refuse", {"status": 429, "retry_after": 5})
    assert refuse["attributes"] == {"status": 429, "retry_after": 5, "body": ""}
    assert refuse["name"] == "ws_refuse_downstream"


def test_websocket_toxics_on_both_streams(api: httpx.Client, proxy: str) -> None:
    add_toxic(api, "ws_drop", stream="upstream", name="up")
    add_toxic(api, "ws_drop", stream="downstream", name="down")
    assert [(t["name"], t["stream"]) for t in toxics(api)] == [("up", "upstream"), ("down", "downstream")]


def test_websocket_toxics_are_not_tcp_toxics(api: httpx.Client) -> None:
    response = api.post("/proxies", json={"name": "tcp", "upstream": "127.0.0.1:9", "listen": "127.0.0.1:0"})
    assert response.status_code == 201
    response = api.post("/proxies/tcp/toxics", json={"type": "ws_drop"})
    assert response.status_code == 400
    assert "invalid toxic type: 'ws_drop' is not one of" in response.json()["error"]
