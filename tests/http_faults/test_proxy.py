"""An http proxy as an HTTP/1.1 reverse proxy: forwarding, framing, errors, start and stop."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.http_faults.upstream import (
    IO_TIMEOUT,
    RawUpstream,
    RecordedRequest,
    chunked,
    create_http_proxy,
    fixed_response,
)

SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
CRLF_EVENTS = [b"data: one\r\n\r\n", b": comment\r\n\r\n", b"data: t", b"wo\r\n\r\ndata: [DONE]\r\n\r\n"]


def proxy_for(api: httpx.Client, upstream: RawUpstream, name: str = "web") -> str:
    return "http://" + create_http_proxy(api, upstream.address, name)


def recv_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
    return data


def test_requests_are_forwarded_with_host_rewritten_and_hop_by_hop_headers_dropped(
    api: httpx.Client, raw_upstream: RawUpstream
) -> None:
    raw_upstream.respond = fixed_response(
        b"HTTP/1.1 201 Made Up\r\nContent-Length: 2\r\nX-Upstream: yes\r\nConnection: keep-alive, X-Hop\r\n"
        b"X-Hop: 1\r\n\r\nok"
    )
    url = proxy_for(api, raw_upstream)
    response = httpx.post(
        f"{url}/v1/chat/completions?a=%20b",
        content=b'{"model": "m"}',
        headers={
            "Authorization": "Bearer k",
            "Connection": "X-Private",
            "X-Private": "1",
            "TE": "trailers",
            "Proxy-Authorization": "Basic x",
            "X-Custom": "kept",
        },
        timeout=IO_TIMEOUT,
    )
    assert (response.status_code, response.reason_phrase, response.content) == (201, "Made Up", b"ok")
    assert response.headers["x-upstream"] == "yes" and "x-hop" not in response.headers
    assert response.headers["content-length"] == "2"
    [request] = raw_upstream.requests
    assert (request.method, request.target, request.body) == ("POST", "/v1/chat/completions?a=%20b", b'{"model": "m"}')
    assert request.header("host") == raw_upstream.address
    assert request.header("authorization") == "Bearer k" and request.header("x-custom") == "kept"
    for hop in ("x-private", "te", "proxy-authorization"):
        assert request.header(hop) is None
    assert request.header("content-length") == "14"


@pytest.mark.parametrize("toxic", [None, {"type": "sse_delay"}, {"type": "sse_cut", "attributes": {"after": 99}}])
def test_event_streams_are_relayed_byte_for_byte(
    api: httpx.Client, raw_upstream: RawUpstream, toxic: dict[str, object] | None
) -> None:
    raw_upstream.respond = fixed_response(SSE_HEAD, chunked(*CRLF_EVENTS))
    url = proxy_for(api, raw_upstream)
    if toxic is not None:
        assert api.post("/proxies/web/toxics", json=toxic).status_code == 200
    with httpx.stream("GET", f"{url}/events", timeout=IO_TIMEOUT) as response:
        body = response.read()
    assert body == b"".join(CRLF_EVENTS)


def test_stream_toxics_leave_other_responses_alone(api: httpx.Client, raw_upstream: RawUpstream) -> None:
    raw_upstream.respond = fixed_response(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n", b'{"a": "b"}\n'
    )
    url = proxy_for(api, raw_upstream)
    assert api.post("/proxies/web/toxics", json={"type": "sse_cut", "name": "cut"}).status_code == 200
    response = httpx.get(f"{url}/json", timeout=IO_TIMEOUT)
    assert response.content == b'{"a": "b"}\n' and response.headers["content-length"] == "11"
    assert api.get("/proxies/web/stats").json()["toxics"] == {"cut": {"fired": 0}}


def test_an_unreachable_upstream_is_a_502_with_an_openai_error(api: httpx.Client) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    url = "http://" + create_http_proxy(api, f"127.0.0.1:{closed_port}", "dead")
    response = httpx.post(f"{url}/v1/chat/completions", json={}, timeout=IO_TIMEOUT)
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["type"] == "server_error" and f"127.0.0.1:{closed_port}" in error["message"]


def test_an_upstream_that_breaks_off_mid_body_breaks_the_response(api: httpx.Client, raw_upstream: RawUpstream) -> None:
    def respond(request: RecordedRequest, conn: socket.socket) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        return False  # closes the connection 93 bytes short

    raw_upstream.respond = respond
    url = proxy_for(api, raw_upstream)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/x", timeout=IO_TIMEOUT)


def test_a_body_over_the_limit_is_refused_with_413(api: httpx.Client, raw_upstream: RawUpstream) -> None:
    url = proxy_for(api, raw_upstream)
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=IO_TIMEOUT) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 16777217\r\n\r\n")
        data = recv_until(sock, b"}}")
    assert data.startswith(b"HTTP/1.1 413 ")
    assert json.loads(data.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "request_too_large"

    def body() -> Iterator[bytes]:
        for _ in range(17):
            yield b"x" * (1024 * 1024)

    response = httpx.post(f"{url}/big", content=body(), timeout=IO_TIMEOUT)  # chunked, no length
    assert response.status_code == 413
    assert raw_upstream.requests == []


def test_expect_100_continue_pipelining_and_bad_requests(api: httpx.Client, raw_upstream: RawUpstream) -> None:
    raw_upstream.respond = fixed_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    host, port = proxy_for(api, raw_upstream).removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=IO_TIMEOUT) as sock:
        sock.sendall(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        assert recv_until(sock, b"\r\n\r\n").startswith(b"HTTP/1.1 100 ")
        sock.sendall(b"abc")
        assert recv_until(sock, b"ok").startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n")
        both = recv_until(sock, b"ok" + b"HTTP/1.1 200 OK")
        both += recv_until(sock, b"ok") if both.count(b"ok") < 2 else b""
        assert both.count(b"HTTP/1.1 200 ") == 2
        sock.sendall(b"NOT HTTP\r\n\r\n")
        assert recv_until(sock, b"}}").startswith(b"HTTP/1.1 400 ")
    assert [(r.method, r.target, r.body) for r in raw_upstream.requests] == [
        ("POST", "/a", b"abc"),
        ("GET", "/b", b""),
        ("GET", "/c", b""),
    ]


def test_disabling_the_proxy_closes_clients_and_cancels_upstream_requests(
    api: httpx.Client, raw_upstream: RawUpstream
) -> None:
    release = threading.Event()

    def respond(request: RecordedRequest, conn: socket.socket) -> bool:
        conn.sendall(SSE_HEAD + chunked(b"data: first\n\n")[:-5])  # one event, then nothing
        release.wait(IO_TIMEOUT)
        conn.recv(1)  # returns when the proxy closes its side
        return False

    raw_upstream.respond = respond
    url = proxy_for(api, raw_upstream)
    try:
        with httpx.stream("GET", f"{url}/events", timeout=IO_TIMEOUT) as response:
            chunks = response.iter_raw()
            assert next(chunks) == b"data: first\n\n"
            started = time.monotonic()
            assert api.post("/proxies/web", json={"enabled": False}).status_code == 200
            with pytest.raises(httpx.TransportError):
                next(chunks)
            release.set()
            assert raw_upstream.closed.wait(IO_TIMEOUT)
            assert time.monotonic() - started < 2
    finally:
        release.set()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/x", timeout=IO_TIMEOUT)
    raw_upstream.respond = fixed_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert api.post("/proxies/web", json={"enabled": True}).status_code == 200
    assert httpx.get(f"{url}/x", timeout=IO_TIMEOUT).content == b"ok"  # same port again


def test_a_populate_that_replaces_the_proxy_keeps_its_address(api: httpx.Client, raw_upstream: RawUpstream) -> None:
    raw_upstream.respond = fixed_response(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nold")
    url = proxy_for(api, raw_upstream)
    assert httpx.get(f"{url}/x", timeout=IO_TIMEOUT).content == b"old"
    other = RawUpstream()
    try:
        other.respond = fixed_response(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nnew")
        listen = url.removeprefix("http://")
        spec = {"name": "web", "listen": listen, "upstream": other.address, "protocol": "http"}
        response = api.post("/populate", json=[spec])
        assert response.status_code == 201, response.text
        assert httpx.get(f"{url}/x", timeout=IO_TIMEOUT).content == b"new"
    finally:
        other.close()


def test_a_new_upstream_ends_requests_in_flight_and_serves_the_next_ones(
    api: httpx.Client, raw_upstream: RawUpstream
) -> None:
    def respond(request: RecordedRequest, conn: socket.socket) -> bool:
        if request.target == "/stream":
            conn.sendall(SSE_HEAD + chunked(b"data: first\n\n")[:-5])
            conn.recv(1)  # until the proxy lets go
            return False
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nold")
        return True

    raw_upstream.respond = respond
    url = proxy_for(api, raw_upstream)
    other = RawUpstream()
    try:
        other.respond = fixed_response(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nnew")
        with httpx.Client(base_url=url, timeout=IO_TIMEOUT) as idle, httpx.stream("GET", f"{url}/stream") as stream:
            assert idle.get("/x").content == b"old"
            chunks = stream.iter_raw()
            assert next(chunks) == b"data: first\n\n"
            assert api.post("/proxies/web", json={"upstream": other.address}).status_code == 200
            with pytest.raises(httpx.TransportError):
                next(chunks)
            assert raw_upstream.closed.wait(IO_TIMEOUT)
            assert idle.get("/x").content == b"new"  # the idle keep-alive connection carries on
        assert api.get("/proxies/web/stats").json()["connections"]["total"] == 2
    finally:
        other.close()


def test_a_client_that_goes_away_cancels_its_upstream_request(api: httpx.Client, raw_upstream: RawUpstream) -> None:
    def respond(request: RecordedRequest, conn: socket.socket) -> bool:
        conn.sendall(SSE_HEAD + chunked(b"data: first\n\n")[:-5])
        conn.recv(1)
        return False

    raw_upstream.respond = respond
    host, port = proxy_for(api, raw_upstream).removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=IO_TIMEOUT) as sock:
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"data: first" in recv_until(sock, b"data: first\n\n")
    assert raw_upstream.closed.wait(IO_TIMEOUT)


def test_a_made_up_reply_to_head_has_no_body(api: httpx.Client, raw_upstream: RawUpstream) -> None:
    url = proxy_for(api, raw_upstream)
    assert (
        api.post("/proxies/web/toxics", json={"type": "http_error", "attributes": {"status": 429}}).status_code == 200
    )
    with httpx.Client(base_url=url, timeout=IO_TIMEOUT) as client:
        head = client.head("/v1/models")
        assert head.status_code == 429 and head.content == b"" and int(head.headers["content-length"]) > 0
        assert client.get("/v1/models").json()["error"]["code"] == "rate_limit_exceeded"  # same connection
    assert raw_upstream.requests == []
