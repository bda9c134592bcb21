"""The proxy's state seen from its connections: disable, enable, reset, delete, new upstream.

Spec §1.4.5-§1.4.11 and §2.3: disabling or deleting a proxy closes its connections
(disable keeps the toxics), enabling brings back the same port, ``POST /reset`` removes
toxics while open connections keep working, and a new upstream closes open connections.
"""

from __future__ import annotations

import httpx

from tests.engine.tcp_support import (
    API_BOUND,
    Upstream,
    add_toxic,
    assert_delay,
    close_outcome,
    connect,
    create_proxy,
    exchange,
    proxied_pair,
    round_trip,
    set_enabled,
    timed_call,
    toxic_names,
)
from tests.support.engine import EchoServer


def assert_refused(address: tuple[str, int]) -> None:
    try:
        connect(address, timeout=1).close()
    except ConnectionRefusedError:
        return
    raise AssertionError(f"{address} accepted a connection")


# -- disable, enable, reset ---------------------------------------------------------------


def test_disabling_closes_connections_and_keeps_toxics(
    api: httpx.Client, echo_server: EchoServer
) -> None:
    address = create_proxy(api, echo_server.address)
    add_toxic(api, "tcp", "latency", attributes={"latency": 200})
    with connect(address) as client:
        assert_delay(round_trip(client), 0.2)
        set_enabled(api, "tcp", False)
        outcome, elapsed = close_outcome(client)
    assert outcome in ("eof", "reset")
    assert elapsed < 1.0
    assert_refused(address)
    assert toxic_names(api) == ["latency_downstream"]
    enabled = set_enabled(api, "tcp", True)
    assert enabled["listen"] == f"{address[0]}:{address[1]}"
    with connect(address) as client:
        assert_delay(round_trip(client), 0.2)  # the toxic still applies


def test_reset_removes_toxics_and_open_connections_keep_working(
    api: httpx.Client, echo_server: EchoServer
) -> None:
    address = create_proxy(api, echo_server.address)
    add_toxic(api, "tcp", "latency", attributes={"latency": 200})
    add_toxic(api, "tcp", "limit_data", stream="upstream", attributes={"bytes": 1_000_000})
    with connect(address) as client:
        assert_delay(round_trip(client), 0.2)
        assert api.post("/reset").status_code == 204
        assert toxic_names(api) == []
        for _ in range(5):
            assert round_trip(client, b"x" * 300_000) < 0.5  # beyond the old limit too


def test_reset_closes_connections_a_timeout_toxic_was_active_on(api: httpx.Client) -> None:
    with Upstream() as upstream, proxied_pair(api, upstream) as (client, server):
        add_toxic(api, "tcp", "timeout", stream="upstream", attributes={"timeout": 0})
        response, elapsed = timed_call(lambda: api.post("/reset"))
        assert response.status_code == 204
        assert elapsed < API_BOUND
        assert close_outcome(client)[0] in ("eof", "reset")
        assert close_outcome(server)[0] in ("eof", "reset")


def test_reset_enables_a_disabled_proxy_on_the_same_port(
    api: httpx.Client, echo_server: EchoServer
) -> None:
    address = create_proxy(api, echo_server.address)
    set_enabled(api, "tcp", False)
    assert api.post("/reset").status_code == 204
    with connect(address) as client:
        assert round_trip(client) < 0.5


def test_deleting_a_proxy_closes_its_connections_and_its_port(
    api: httpx.Client, echo_server: EchoServer
) -> None:
    address = create_proxy(api, echo_server.address)
    with connect(address) as client:
        assert round_trip(client) < 0.5
        response, elapsed = timed_call(lambda: api.delete("/proxies/tcp"))
        assert response.status_code == 204
        assert elapsed < API_BOUND
        outcome, elapsed = close_outcome(client)
    assert outcome in ("eof", "reset")
    assert elapsed < 1.0
    assert_refused(address)


def test_a_new_upstream_closes_open_connections_and_serves_new_ones(api: httpx.Client) -> None:
    with Upstream() as first, Upstream() as second, proxied_pair(api, first) as (client, server):
        exchange(client, server, b"to the first upstream")
        response = api.post("/proxies/tcp", json={"upstream": second.address})
        assert response.status_code == 200, response.text
        assert close_outcome(client)[0] in ("eof", "reset")
        assert close_outcome(server)[0] in ("eof", "reset")
        address = tuple(response.json()["listen"].rsplit(":", 1))
        with connect((address[0], int(address[1]))) as new_client, second.accept() as new_server:
            exchange(new_client, new_server, b"to the second upstream")
