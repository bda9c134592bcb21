"""Every websocket toxic through a real engine, a real upstream and a real client.

Assertions name exactly which messages arrive, in which order, and how connections
close. Sync points are pings (a pong proves the proxy has read everything before it)
and sentinel messages; timing bounds are generous.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support.engine import EngineProcess
from tests.ws_faults.ws_support import (
    WsUpstream,
    add_toxic,
    create_ws_proxy,
    event,
    fired,
    kinds,
    open_client,
    ping,
    proxied,
    received_code,
    recv_n,
    recv_to_close,
    recv_until,
)


@pytest.fixture
def upstream() -> Iterator[WsUpstream]:
    with WsUpstream(echo=False) as server:
        yield server


HOLD = {"type_name": "ws_delay", "name": "slow", "attributes": {"delay": 30_000}}
THINKING = {"type_name": "ws_drop", "name": "no_thinking", "attributes": {"field": "type", "value": "agent_thinking"}}


# -- ws_drop ------------------------------------------------------------------------------


def test_drop_removes_only_thinking_events_and_keeps_the_rest_in_order(api: httpx.Client, upstream: WsUpstream) -> None:
    with proxied(api, upstream, toxics=[THINKING]) as (client, peer):
        script = [
            event("agent_thinking", 1),
            event("token", 2),
            event("agent_thinking", 3),
            event("tool_call", 4),
            event("token", 5),
            event("done", 6),
        ]
        peer.send(*script)
        assert kinds(recv_until(client, script[-1])) == [("token", 2), ("tool_call", 4), ("token", 5), ("done", 6)]
        assert fired(api, "no_thinking") == 2


def test_drop_on_the_upstream_stream_acts_on_client_messages(api: httpx.Client, upstream: WsUpstream) -> None:
    with proxied(api, upstream) as (client, peer):
        add_toxic(api, "ws_drop", {"field": "type", "value": "ping"}, stream="upstream")
        for message in (event("ping", 1), event("message", 2), event("ping", 3), event("message", 4)):
            client.send(message)
        client.send("end")  # not JSON: never matches a field
        assert peer.wait_received(3) == [event("message", 2), event("message", 4), "end"]


def test_toxicity_zero_drops_nothing_and_one_drops_every_match(api: httpx.Client, upstream: WsUpstream) -> None:
    with proxied(api, upstream) as (client, peer):
        add_toxic(api, "ws_drop", {"field": "type", "value": "x"}, name="drop", toxicity=0)
        peer.send(event("x", 1), event("x", 2), event("end", 3))
        assert kinds(recv_n(client, 3)) == [("x", 1), ("x", 2), ("end", 3)]
        assert api.patch("/proxies/chat_ws/toxics/drop", json={"toxicity": 1}).status_code == 200
        peer.send(event("x", 4), event("x", 5), event("end", 6))
        assert kinds(recv_n(client, 1)) == [("end", 6)]
        assert fired(api, "drop") == 2


# -- ws_duplicate -------------------------------------------------------------------------


def test_duplicate_sends_matching_messages_again_right_after(api: httpx.Client, upstream: WsUpstream) -> None:
    dup = {"type_name": "ws_duplicate", "name": "dup", "attributes": {"field": "type", "value": "token", "copies": 2}}
    with proxied(api, upstream, toxics=[dup]) as (client, peer):
        peer.send(event("token", 1), event("status", 2), event("token", 3), event("done", 4))
        assert kinds(recv_until(client, event("done", 4))) == [
            ("token", 1),
            ("token", 1),
            ("token", 1),
            ("status", 2),
            ("token", 3),
            ("token", 3),
            ("token", 3),
            ("done", 4),
        ]
        assert fired(api, "dup") == 2


# -- ws_delay -----------------------------------------------------------------------------


def test_delay_holds_a_matching_message_and_everything_behind_it(api: httpx.Client, upstream: WsUpstream) -> None:
    delay = {"type_name": "ws_delay", "attributes": {"field": "type", "value": "slow", "delay": 300}}
    with proxied(api, upstream, toxics=[delay]) as (client, peer):
        peer.send(event("fast", 1))
        assert kinds(recv_n(client, 1)) == [("fast", 1)]
        start = time.monotonic()
        peer.send(event("slow", 2), event("fast", 3))
        assert kinds(recv_n(client, 2)) == [("slow", 2), ("fast", 3)]
        elapsed = time.monotonic() - start
        assert 0.28 <= elapsed < 2.0, elapsed


def test_delay_on_client_messages(api: httpx.Client, upstream: WsUpstream) -> None:
    with proxied(api, upstream) as (client, peer):
        add_toxic(api, "ws_delay", {"delay": 250, "jitter": 50}, stream="upstream")
        start = time.monotonic()
        for seq in range(5):
            client.send(event("m", seq))
        assert kinds(peer.wait_received(5)) == [("m", seq) for seq in range(5)]
        assert 0.19 <= time.monotonic() - start < 2.0


def test_removing_a_delay_mid_stream_releases_what_it_holds_at_once_in_order(
    api: httpx.Client, upstream: WsUpstream
) -> None:
    with proxied(api, upstream, toxics=[HOLD]) as (client, peer):
        peer.send(event("token", 1), event("token", 2), event("token", 3))
        peer.ping()  # the proxy holds all three now
        assert fired(api, "slow") == 3
        start = time.monotonic()
        assert api.delete("/proxies/chat_ws/toxics/slow").status_code == 204
        assert kinds(recv_n(client, 3)) == [("token", 1), ("token", 2), ("token", 3)]
        peer.send(event("token", 4))
        assert kinds(recv_n(client, 1)) == [("token", 4)]
        assert time.monotonic() - start < 2.0


def test_updating_a_delay_releases_what_it_holds_and_applies_at_once(api: httpx.Client, upstream: WsUpstream) -> None:
    with proxied(api, upstream, toxics=[HOLD]) as (client, peer):
        peer.send(event("token", 1))
        peer.ping()
        start = time.monotonic()
        response = api.patch("/proxies/chat_ws/toxics/slow", json={"attributes": {"delay": 0}})
        assert response.status_code == 200
        assert response.json()["attributes"] == {"field": "", "value": "", "delay": 0, "jitter": 0}
        assert kinds(recv_n(client, 1)) == [("token", 1)]
        peer.send(event("token", 2))
        assert kinds(recv_n(client, 1)) == [("token", 2)]
        assert time.monotonic() - start < 2.0


# -- ws_reorder ---------------------------------------------------------------------------


def test_reorder_releases_a_full_window_out_of_order(api: httpx.Client, upstream: WsUpstream) -> None:
    tokens = {"field": "type", "value": "token", "window": 3}
    reorder = {"type_name": "ws_reorder", "name": "shuffle", "attributes": tokens}
    with proxied(api, upstream, toxics=[reorder]) as (client, peer):
        peer.send(event("token", 1), event("token", 2), event("token", 3), event("done", 4))
        received = kinds(recv_n(client, 4))
        assert sorted(received[:3]) == [("token", 1), ("token", 2), ("token", 3)]
        assert received[:3] != [("token", 1), ("token", 2), ("token", 3)]
        assert received[3] == ("done", 4)
        assert fired(api, "shuffle") == 3


def test_reorder_releases_an_unfilled_window_in_order_after_its_timeout(
    api: httpx.Client, upstream: WsUpstream
) -> None:
    reorder = {"type_name": "ws_reorder", "attributes": {"window": 5, "timeout": 300}}
    with proxied(api, upstream, toxics=[reorder]) as (client, peer):
        start = time.monotonic()
        peer.send(event("token", 1), event("token", 2))
        assert kinds(recv_n(client, 2)) == [("token", 1), ("token", 2)]
        assert 0.28 <= time.monotonic() - start < 2.0


# -- ws_close -----------------------------------------------------------------------------


def test_close_with_1012_after_three_messages_closes_both_sides(api: httpx.Client, upstream: WsUpstream) -> None:
    close = {"type_name": "ws_close", "name": "restart", "attributes": {"after": 3, "code": 1012, "reason": "restart"}}
    with proxied(api, upstream, toxics=[close]) as (client, peer):
        peer.send(*(event("token", seq) for seq in range(1, 6)))
        messages, closed = recv_to_close(client)
        assert kinds(messages) == [("token", 1), ("token", 2), ("token", 3)]
        assert closed.rcvd is not None and (closed.rcvd.code, closed.rcvd.reason) == (1012, "restart")
        assert peer.wait_closed() == (1012, "restart")
        assert fired(api, "restart") == 1


def test_close_on_the_upstream_stream_counts_client_messages(api: httpx.Client, upstream: WsUpstream) -> None:
    close = {"type_name": "ws_close", "stream": "upstream", "attributes": {"after": 2, "code": 4000, "reason": "x"}}
    with proxied(api, upstream, toxics=[close]) as (client, peer):
        client.send(event("m", 0))
        client.send(event("m", 1))
        # The close the second message triggers may already be here: then the third cannot go.
        with contextlib.suppress(ConnectionClosed):
            client.send(event("m", 2))
        _, closed = recv_to_close(client)
        assert received_code(closed) == 4000
        assert peer.wait_closed() == (4000, "x")
        assert kinds(peer.received) == [("m", 0), ("m", 1)]


def test_close_with_1006_aborts_both_connections(api: httpx.Client, upstream: WsUpstream) -> None:
    close = {"type_name": "ws_close", "attributes": {"after": 1, "code": 1006}}
    with proxied(api, upstream, toxics=[close]) as (client, peer):
        peer.send(event("token", 1), event("token", 2))
        messages, closed = recv_to_close(client)
        assert kinds(messages) == [("token", 1)]
        assert closed.rcvd is None and received_code(closed) == 1006
        assert peer.wait_closed() == (1006, "")


def test_close_after_zero_added_to_an_open_connection_closes_it_at_once(
    api: httpx.Client, upstream: WsUpstream
) -> None:
    with proxied(api, upstream) as (client, peer):
        add_toxic(api, "ws_close", {"code": 1013, "reason": "try later"})
        _, closed = recv_to_close(client)
        assert received_code(closed) == 1013
        assert peer.wait_closed() == (1013, "try later")
        listen = api.get("/proxies/chat_ws").json()["listen"]
        with open_client(listen) as again:
            _, closed = recv_to_close(again)
            assert received_code(closed) == 1013


def test_close_with_toxicity_zero_never_closes(api: httpx.Client, upstream: WsUpstream) -> None:
    close = {"type_name": "ws_close", "toxicity": 0, "attributes": {"after": 1, "code": 4000}}
    with proxied(api, upstream, toxics=[close]) as (client, peer):
        peer.send(event("token", 1), event("token", 2))
        assert kinds(recv_n(client, 2)) == [("token", 1), ("token", 2)]


# -- ws_refuse ----------------------------------------------------------------------------


def test_refuse_401_with_a_body_leaves_open_connections_alone(api: httpx.Client, upstream: WsUpstream) -> None:
    with proxied(api, upstream) as (client, peer):
        add_toxic(api, "ws_refuse", {"status": 401, "body": "token expired"}, name="auth")
        listen = api.get("/proxies/chat_ws").json()["listen"]
        with pytest.raises(InvalidStatus) as info, open_client(listen):
            pass
        assert info.value.response.status_code == 401
        assert info.value.response.body == b"token expired"
        assert "Retry-After" not in info.value.response.headers
        peer.send(event("still", 1))
        assert kinds(recv_n(client, 1)) == [("still", 1)]
        assert fired(api, "auth") == 1
        assert len(upstream.peers) == 1  # the refused client never reached the upstream


def test_refuse_503_with_retry_after(api: httpx.Client, upstream: WsUpstream) -> None:
    listen = create_ws_proxy(api, upstream.address)
    add_toxic(api, "ws_refuse", {"retry_after": 30, "body": "overloaded"})
    with pytest.raises(InvalidStatus) as info, open_client(listen):
        pass
    response = info.value.response
    assert (response.status_code, response.body) == (503, b"overloaded")
    assert response.headers["Retry-After"] == "30"
    assert api.delete("/proxies/chat_ws/toxics/ws_refuse_downstream").status_code == 204
    with open_client(listen) as client:
        ping(client)


# -- seeding ------------------------------------------------------------------------------


def _shuffled_and_dropped(seed: int) -> list[tuple[str, int]]:
    """What a client receives through a fresh engine started with ``--seed``."""
    with EngineProcess("--seed", str(seed)) as engine, engine.client() as api, WsUpstream(echo=False) as upstream:
        toxics: list[dict[str, Any]] = [
            {"type_name": "ws_reorder", "attributes": {"field": "type", "value": "token", "window": 6}},
            {"type_name": "ws_drop", "toxicity": 0.5, "attributes": {"field": "type", "value": "status"}},
        ]
        with proxied(api, upstream, toxics=toxics) as (client, peer):
            peer.send(*(event("token", seq) for seq in range(6)), *(event("status", seq) for seq in range(20)))
            peer.send(event("done", 0))
            return kinds(recv_until(client, event("done", 0)))


def test_the_same_seed_gives_the_same_faults() -> None:
    first = _shuffled_and_dropped(7)
    assert first == _shuffled_and_dropped(7)
    tokens = [seq for kind, seq in first if kind == "token"]
    assert sorted(tokens) == list(range(6)) and tokens != list(range(6))
    assert 0 < sum(kind == "status" for kind, _ in first) < 20
