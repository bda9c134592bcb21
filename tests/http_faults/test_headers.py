from __future__ import annotations

from chaos_service.http_faults.headers import (
    client_response_headers,
    header_value,
    is_event_stream,
    upstream_request_headers,
)

REQUEST = [
    (b"host", b"proxy:8080"),
    (b"connection", b"keep-alive, x-private"),
    (b"x-private", b"1"),
    (b"keep-alive", b"timeout=5"),
    (b"content-length", b"10"),
    (b"expect", b"100-continue"),
    (b"te", b"trailers"),
    (b"authorization", b"Bearer k"),
    (b"accept-encoding", b"gzip"),
    (b"x-stainless-retry-count", b"0"),
]


def test_hop_by_hop_host_and_framing_headers_are_not_forwarded() -> None:
    assert upstream_request_headers(REQUEST) == [
        (b"authorization", b"Bearer k"),
        (b"accept-encoding", b"gzip"),
        (b"x-stainless-retry-count", b"0"),
    ]


def test_an_event_toxic_asks_for_an_uncompressed_body() -> None:
    headers = upstream_request_headers(REQUEST, identity=True)
    assert header_value(headers, b"accept-encoding") == b"identity"
    assert [name for name, _ in headers].count(b"accept-encoding") == 1


def test_response_framing_is_redone_and_length_dropped_when_the_body_changes() -> None:
    response = [
        (b"Content-Type", b"text/event-stream"),
        (b"Transfer-Encoding", b"chunked"),
        (b"Connection", b"close"),
        (b"Content-Length", b"5"),
        (b"X-Request-Id", b"r"),
    ]
    assert client_response_headers(response, keep_length=True) == [
        (b"Content-Type", b"text/event-stream"),
        (b"Content-Length", b"5"),
        (b"X-Request-Id", b"r"),
    ]
    assert client_response_headers(response, keep_length=False) == [
        (b"Content-Type", b"text/event-stream"),
        (b"X-Request-Id", b"r"),
    ]


def test_event_streams_are_recognised_unless_compressed() -> None:
    assert is_event_stream([(b"content-type", b"text/event-stream; charset=utf-8")])
    assert is_event_stream([(b"Content-Type", b"Text/Event-Stream"), (b"content-encoding", b"identity")])
    assert not is_event_stream([(b"content-type", b"text/event-stream"), (b"content-encoding", b"gzip")])
    assert not is_event_stream([(b"content-type", b"application/json")])
    assert not is_event_stream([])
