"""The handshake helpers: what is forwarded upstream, and the refusals the proxy sends."""

from __future__ import annotations

import random

from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from chaos_service.engine.model import Direction, ToxicEntry
from chaos_service.ws_faults import Drop, Refuse
from chaos_service.ws_faults.handshake import (
    choose_refusal,
    end_to_end_headers,
    http_response,
    offered_subprotocols,
    refusal,
    upstream_refusal,
    upstream_response_headers,
    upstream_uri,
)


def request(path: str = "/", headers: list[tuple[str, str]] | None = None) -> Request:
    return Request(path, Headers(headers or []))


def test_end_to_end_headers_are_forwarded_and_hop_by_hop_ones_are_not() -> None:
    headers = Headers(
        [
            ("Host", "proxy:1"),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade, X-Hop"),
            ("X-Hop", "secret"),
            ("Sec-WebSocket-Key", "abc"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Protocol", "chat"),
            ("Sec-WebSocket-Extensions", "permessage-deflate"),
            ("Authorization", "Bearer t"),
            ("Cookie", "a=1"),
            ("Origin", "https://app.example"),
            ("User-Agent", "client/1"),
            ("X-Request-Id", "r1"),
            ("X-Request-Id", "r2"),
        ]
    )
    assert end_to_end_headers(headers) == [
        ("Authorization", "Bearer t"),
        ("Cookie", "a=1"),
        ("Origin", "https://app.example"),
        ("User-Agent", "client/1"),
        ("X-Request-Id", "r1"),
        ("X-Request-Id", "r2"),
    ]


def test_offered_subprotocols_in_the_clients_order() -> None:
    offered = request(headers=[("Sec-WebSocket-Protocol", "chat.v2, chat.v1"), ("Sec-WebSocket-Protocol", "x")])
    assert offered_subprotocols(offered) == ["chat.v2", "chat.v1", "x"]
    assert offered_subprotocols(request()) is None
    assert offered_subprotocols(request(headers=[("Sec-WebSocket-Protocol", "bad value!")])) is None


def test_upstream_uri_keeps_path_and_query() -> None:
    assert upstream_uri("127.0.0.1:9000", request("/chat/1?token=a&b=2")) == "ws://127.0.0.1:9000/chat/1?token=a&b=2"
    assert upstream_uri("[::1]:9000", request("/")) == "ws://[::1]:9000/"


def test_refusal_has_the_status_body_and_retry_after() -> None:
    response = refusal(Refuse(status=503, retry_after=30, body="overloaded"))
    assert (response.status_code, response.reason_phrase, response.body) == (503, "Service Unavailable", b"overloaded")
    assert response.headers["Retry-After"] == "30"
    assert response.headers["Content-Length"] == "10"
    assert "Retry-After" not in refusal(Refuse(status=401)).headers


def test_statuses_outside_the_registry_are_still_sent() -> None:
    response = http_response(529, b"")
    assert (response.status_code, response.reason_phrase) == (529, "Error")
    assert response.serialize().startswith(b"HTTP/1.1 529 Error\r\n")


def test_upstream_refusal_passes_status_body_and_end_to_end_headers() -> None:
    upstream = Response(
        401,
        "Unauthorized",
        Headers(
            [
                ("Date", "x"),
                ("Server", "up"),
                ("Connection", "close"),
                ("Content-Length", "9"),
                ("Content-Type", "application/json"),
                ("WWW-Authenticate", "Bearer"),
            ]
        ),
        b'{"e": 1}\n',
    )
    response = upstream_refusal(upstream)
    assert (response.status_code, response.body) == (401, b'{"e": 1}\n')
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers.get_all("Content-Length") == ["9"]
    assert "Server" not in response.headers


def test_upstream_101_headers_worth_passing_on() -> None:
    upstream = Response(
        101,
        "Switching Protocols",
        Headers([("Upgrade", "websocket"), ("Sec-WebSocket-Accept", "x"), ("Set-Cookie", "s=1"), ("Date", "d")]),
    )
    assert upstream_response_headers(upstream) == [("Set-Cookie", "s=1")]


def entry(name: str, toxic: object, toxicity: float) -> ToxicEntry:
    return ToxicEntry(name, "downstream", Direction.DOWNSTREAM, toxicity, toxic)  # type: ignore[arg-type]


def test_choose_refusal_takes_the_first_refuse_toxic_whose_coin_applies() -> None:
    rng = random.Random(1)
    entries = [entry("drop", Drop(), 1.0), entry("never", Refuse(status=401), 0.0), entry("always", Refuse(), 1.0)]
    chosen = choose_refusal(entries, rng)
    assert chosen is not None and chosen[0].name == "always"
    assert choose_refusal(entries[:2], rng) is None


def test_choose_refusal_coin_is_per_handshake() -> None:
    rng = random.Random(5)
    entries = [entry("half", Refuse(), 0.5)]
    refused = sum(choose_refusal(entries, rng) is not None for _ in range(200))
    assert 60 < refused < 140
