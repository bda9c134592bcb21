"""``POST /reset`` and ``GET /version``."""

from __future__ import annotations

import httpx
import pytest

from tests.engine.api.helpers import (
    add_toxic,
    all_proxies,
    assert_closed,
    assert_down,
    assert_empty,
    assert_up,
    connect,
    create_proxy,
    echo,
    error_message,
    free_port,
    occupied,
    port_of,
    toxics_of,
)
from tests.support.engine import EchoServer

# -- version -------------------------------------------------------------------------------


def test_version_body_is_exact(api: httpx.Client) -> None:
    response = api.get("/version")
    assert response.status_code == 200
    assert response.content == b'{"version": "2.12.0"}\n'
    assert response.headers["content-type"].replace(" ", "") == "application/json;charset=utf-8"
    assert response.json() == {"version": "2.12.0"}


def test_version_ignores_state_and_query(api: httpx.Client, echo_server: EchoServer) -> None:
    create_proxy(api, "p", echo_server.address)
    assert api.get("/version?verbose=1").content == b'{"version": "2.12.0"}\n'


# -- reset ---------------------------------------------------------------------------------


def test_reset_with_no_proxies(api: httpx.Client) -> None:
    assert_empty(api.post("/reset"), 204)
    assert all_proxies(api) == {}


def test_reset_state_removes_toxics_and_keeps_proxies(api: httpx.Client, echo_server: EchoServer) -> None:
    created = create_proxy(api, "mysql", echo_server.address)
    add_toxic(api, "mysql", type="latency", attributes={"latency": 100, "jitter": 10})
    add_toxic(api, "mysql", type="noop", stream="upstream")
    assert_empty(api.post("/reset"), 204)
    assert all_proxies(api) == {"mysql": created}
    assert toxics_of(api, "mysql") == []
    with connect(port_of(created["listen"])) as sock:
        echo(sock)


def test_reset_reenables_disabled_proxies_on_the_same_port(api: httpx.Client, echo_server: EchoServer) -> None:
    created = create_proxy(api, "off", echo_server.address)
    port = port_of(created["listen"])
    api.patch("/proxies/off", json={"enabled": False})
    assert_down(port)
    assert_empty(api.post("/reset"))
    assert api.get("/proxies/off").json() == created
    assert_up(port)


def test_reset_enables_a_never_started_proxy(api: httpx.Client, echo_server: EchoServer) -> None:
    port = free_port()
    create_proxy(api, "never", echo_server.address, listen=f"localhost:{port}", enabled=False)
    assert_empty(api.post("/reset"))
    proxy = api.get("/proxies/never").json()
    assert proxy["enabled"] is True
    assert proxy["listen"] == f"127.0.0.1:{port}"
    assert_up(port)


def test_reset_ignores_the_body(api: httpx.Client, echo_server: EchoServer) -> None:
    create_proxy(api, "p", echo_server.address)
    add_toxic(api, "p", type="noop")
    assert_empty(api.post("/reset", content=b"this is {not json"))
    assert toxics_of(api, "p") == []


def test_reset_twice(api: httpx.Client, echo_server: EchoServer) -> None:
    create_proxy(api, "p", echo_server.address)
    add_toxic(api, "p", type="noop")
    assert_empty(api.post("/reset"))
    assert_empty(api.post("/reset"))
    assert toxics_of(api, "p") == []


def test_reset_keeps_open_connections_and_lifts_their_toxics(api: httpx.Client, echo_server: EchoServer) -> None:
    created = create_proxy(api, "live", echo_server.address)
    with connect(port_of(created["listen"])) as sock:
        echo(sock, b"before")
        # Long enough that the echo below would time out (5 s) if the toxic survived.
        add_toxic(api, "live", type="latency", attributes={"latency": 30_000})
        add_toxic(api, "live", type="noop", stream="upstream")
        assert_empty(api.post("/reset"))
        echo(sock, b"after")
    assert echo_server.accepted == 1


def test_reset_closes_connections_of_a_timeout_toxic(api: httpx.Client, echo_server: EchoServer) -> None:
    created = create_proxy(api, "black_hole", echo_server.address)
    with connect(port_of(created["listen"])) as sock:
        echo(sock)
        add_toxic(api, "black_hole", type="timeout", stream="upstream", attributes={"timeout": 0})
        assert_empty(api.post("/reset"))
        assert_closed(sock)


@pytest.mark.parametrize("blocked_first", [True, False])
def test_reset_that_cannot_reenable_a_proxy_resets_the_others_and_is_409(
    api: httpx.Client, echo_server: EchoServer, blocked_first: bool
) -> None:
    blocked_name, ok_name = ("a_blocked", "b_ok") if blocked_first else ("b_blocked", "a_ok")
    blocked = create_proxy(api, blocked_name, echo_server.address)
    blocked_port = port_of(blocked["listen"])
    ok = create_proxy(api, ok_name, echo_server.address, listen=f"127.0.0.1:{free_port()}", enabled=False)
    running = create_proxy(api, "c_running", echo_server.address)
    for name in (blocked_name, ok_name, "c_running"):
        add_toxic(api, name, type="latency", attributes={"latency": 1})
    api.patch(f"/proxies/{blocked_name}", json={"enabled": False})

    with occupied(blocked_port):
        message = error_message(api.post("/reset"), 409)
        assert f"listen tcp 127.0.0.1:{blocked_port}: bind: address already in use" in message, message

        proxies = all_proxies(api)
        assert proxies[blocked_name] == {**blocked, "enabled": False}
        assert proxies[ok_name]["enabled"] is True
        assert proxies[ok_name]["listen"] == ok["listen"]
        assert proxies["c_running"] == running
        for proxy in proxies.values():
            assert proxy["toxics"] == []
        assert_up(port_of(ok["listen"]))

    # Once the port is free again, the next reset succeeds.
    assert_empty(api.post("/reset"))
    assert api.get(f"/proxies/{blocked_name}").json() == blocked
    assert_up(blocked_port)
