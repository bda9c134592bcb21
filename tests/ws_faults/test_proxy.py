"""A websocket proxy without toxics, through a real engine: handshake, relay, closes, stats.

Real servers and clients on 127.0.0.1 (see `ws_support`).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection

from tests.ws_faults.ws_support import (
    TIMEOUT,
    WsUpstream,
    create_ws_proxy,
    open_client,
    proxied,
    received_code,
    recv_to_close,
    stats,
)


@pytest.fixture
def upstream() -> Iterator[WsUpstream]:
    with WsUpstream() as server:
        yield server


def test_relays_text_and_binary_messages_both_ways(api: httpx.Client, upstream: WsUpstream) -> None:
    with proxied(api, upstream) as (client, peer):
        client.send('{"type": "hello"}')
        client.send(b"\x00\xffbinary")
        assert client.recv(timeout=TIMEOUT) == '{"type": "hello"}'
        assert client.recv(timeout=TIMEOUT) == b"\x00\xffbinary"
        assert peer.wait_received(2) == ['{"type": "hello"}', b"\x00\xffbinary"]


def test_messages_the_upstream_sends_before_the_client_is_answered_arrive_first(api: httpx.Client) -> None:
    with WsUpstream(greeting=["welcome", b"\x01"]) as upstream, proxied(api, upstream) as (client, _):
        client.send("hi")
        assert [client.recv(timeout=TIMEOUT) for _ in range(3)] == ["welcome", b"\x01", "hi"]


def test_fragmented_and_large_messages_arrive_whole(api: httpx.Client, upstream: WsUpstream) -> None:
    big = "x" * (3 * 1024 * 1024)
    with proxied(api, upstream) as (client, _):
        client.send(["frag", "mented ", "message"])
        client.send(big)
        assert client.recv(timeout=TIMEOUT) == "fragmented message"
        assert client.recv(timeout=TIMEOUT) == big


def test_path_query_headers_and_subprotocol_reach_the_upstream(api: httpx.Client) -> None:
    with (
        WsUpstream(subprotocols=["chat.v1", "chat.v0"]) as upstream,
        proxied(
            api,
            upstream,
            "/v1/chat/run-7?token=abc&x=1",
            additional_headers={
                "Authorization": "Bearer secret",
                "Cookie": "session=s1",
                "X-Request-Id": "req-1",
            },
            origin="https://app.example",
            subprotocols=["chat.v2", "chat.v1"],
        ) as (client, peer),
    ):
        assert peer.request.path == "/v1/chat/run-7?token=abc&x=1"
        headers = peer.request.headers
        assert headers["Authorization"] == "Bearer secret"
        assert headers["Cookie"] == "session=s1"
        assert headers["Origin"] == "https://app.example"
        assert headers["X-Request-Id"] == "req-1"
        assert headers["Sec-WebSocket-Protocol"] == "chat.v2, chat.v1"
        assert peer.subprotocol == "chat.v1"
        assert client.subprotocol == "chat.v1"


def test_no_subprotocol_when_the_upstream_selects_none(api: httpx.Client, upstream: WsUpstream) -> None:
    with proxied(api, upstream, subprotocols=["chat.v1"]) as (client, peer):
        assert peer.subprotocol is None
        assert client.subprotocol is None


@pytest.mark.parametrize(
    ("status", "body", "headers"),
    [(401, "invalid token", {"WWW-Authenticate": "Bearer"}), (429, "slow down", {"Retry-After": "7"})],
)
def test_an_upstream_refusal_reaches_the_client_unchanged(
    api: httpx.Client, upstream: WsUpstream, status: int, body: str, headers: dict[str, str]
) -> None:
    upstream.refuse = (status, body, headers)
    listen = create_ws_proxy(api, upstream.address)
    with pytest.raises(InvalidStatus) as info, open_client(listen):
        pass
    response = info.value.response
    assert response.status_code == status
    assert response.body == body.encode()
    for name, value in headers.items():
        assert response.headers[name] == value


def test_an_unreachable_upstream_is_a_502(api: httpx.Client) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
        listen = create_ws_proxy(api, f"127.0.0.1:{port}")  # nothing listens there
        with pytest.raises(InvalidStatus) as info, open_client(listen):
            pass
    assert info.value.response.status_code == 502
    assert str(port).encode() in info.value.response.body


@pytest.mark.parametrize(("code", "reason"), [(4001, "auth expired"), (1000, ""), (1011, "internal"), (1001, "bye")])
def test_the_upstreams_close_code_reaches_the_client(
    api: httpx.Client, upstream: WsUpstream, code: int, reason: str
) -> None:
    with proxied(api, upstream) as (client, peer):
        peer.send("last words")
        peer.close(code, reason)
        messages, closed = recv_to_close(client)
        assert messages == ["last words"]
        assert closed.rcvd is not None
        assert (closed.rcvd.code, closed.rcvd.reason) == (code, reason)


def test_an_upstream_close_without_a_code_is_1006_for_the_client(api: httpx.Client, upstream: WsUpstream) -> None:
    with proxied(api, upstream) as (client, peer):
        peer.close_without_code()
        _, closed = recv_to_close(client)
        assert received_code(closed) == 1006


def test_the_clients_close_code_reaches_the_upstream(api: httpx.Client, upstream: WsUpstream) -> None:
    with proxied(api, upstream) as (client, peer):
        client.send("bye")
        client.close(4002, "user left")
        assert peer.wait_received(1) == ["bye"]
        assert peer.wait_closed() == (4002, "user left")


def test_an_upstream_vanishing_without_a_close_frame_is_1006_for_the_client(
    api: httpx.Client, upstream: WsUpstream
) -> None:
    with proxied(api, upstream) as (client, peer):
        peer.abort()
        _, closed = recv_to_close(client)
        assert received_code(closed) == 1006


def test_a_client_vanishing_without_a_close_frame_is_1006_for_the_upstream(
    api: httpx.Client, upstream: WsUpstream
) -> None:
    with proxied(api, upstream) as (client, peer):
        client.socket.shutdown(socket.SHUT_RDWR)  # TCP FIN, no close frame
        assert peer.wait_closed() == (1006, "")


def _closed_by_proxy(client: ClientConnection) -> int:
    _, closed = recv_to_close(client)
    return received_code(closed)


def test_disabling_the_proxy_closes_its_connections_with_1001(api: httpx.Client, upstream: WsUpstream) -> None:
    with proxied(api, upstream) as (client, peer):
        listen = api.get("/proxies/chat_ws").json()["listen"]
        assert api.post("/proxies/chat_ws", json={"enabled": False}).status_code == 200
        assert _closed_by_proxy(client) == 1001
        assert peer.wait_closed() == (1001, "going away")
        assert stats(api)["connections"]["open"] == 0
    with pytest.raises(OSError), open_client(listen):
        pass
    assert api.post("/proxies/chat_ws", json={"enabled": True}).status_code == 200
    with open_client(listen) as again:
        again.send("back")
        assert again.recv(timeout=TIMEOUT) == "back"


def test_deleting_the_proxy_closes_its_connections(api: httpx.Client, upstream: WsUpstream) -> None:
    with proxied(api, upstream) as (client, peer):
        assert api.delete("/proxies/chat_ws").status_code == 204
        assert _closed_by_proxy(client) == 1001
        assert peer.wait_closed()[0] == 1001


def test_a_new_upstream_closes_open_connections(api: httpx.Client, upstream: WsUpstream) -> None:
    with WsUpstream() as other, proxied(api, upstream) as (client, _):
        assert api.post("/proxies/chat_ws", json={"upstream": other.address}).status_code == 200
        assert _closed_by_proxy(client) == 1001
        listen = api.get("/proxies/chat_ws").json()["listen"]
        with open_client(listen) as moved:
            moved.send("hi")
            assert moved.recv(timeout=TIMEOUT) == "hi"
        assert other.peer(0).wait_received(1) == ["hi"]


def test_populate_replacing_the_proxy_hands_its_address_over(api: httpx.Client, upstream: WsUpstream) -> None:
    with WsUpstream() as other, proxied(api, upstream) as (client, _):
        listen = api.get("/proxies/chat_ws").json()["listen"]
        body = [{"name": "chat_ws", "listen": listen, "upstream": other.address, "protocol": "websocket"}]
        response = api.post("/populate", json=body)
        assert response.status_code == 201, response.text
        assert _closed_by_proxy(client) == 1001
        with open_client(listen) as moved:
            moved.send("moved")
            assert moved.recv(timeout=TIMEOUT) == "moved"
        assert other.peer(0).wait_received(1) == ["moved"]


def test_stats_count_connections_messages_and_payload_bytes(api: httpx.Client, upstream: WsUpstream) -> None:
    with proxied(api, upstream) as (client, _):
        client.send("héllo")  # 6 bytes of UTF-8
        client.send(b"1234")
        assert client.recv(timeout=TIMEOUT) == "héllo"
        assert client.recv(timeout=TIMEOUT) == b"1234"
        body = stats(api)
        assert body["connections"] == {"open": 1, "total": 1}
        assert body["message_unit"] == "message"
        assert body["upstream"] == {"messages": 2, "bytes": 10}
        assert body["downstream"] == {"messages": 2, "bytes": 10}
