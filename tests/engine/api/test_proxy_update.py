"""Updating proxies: enable/disable, sticky ports, moving listen, changing upstream."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.engine.api.helpers import (
    PROXY_KEYS,
    add_toxic,
    all_proxies,
    assert_closed,
    assert_down,
    assert_error,
    assert_json,
    assert_up,
    connect,
    create_proxy,
    echo,
    error_message,
    free_port,
    held_port,
    port_of,
)
from tests.support.engine import EchoServer


@pytest.fixture
def other_echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.mark.parametrize("method", ["PATCH", "POST"])
def test_disable_refuses_and_enable_rebinds_the_same_port(
    api: httpx.Client, echo_server: EchoServer, method: str
) -> None:
    created = create_proxy(api, "sticky", echo_server.address)
    port = port_of(created["listen"])
    assert_up(port)

    disabled = assert_json(api.request(method, "/proxies/sticky", json={"enabled": False}), 200)
    assert list(disabled) == PROXY_KEYS
    assert disabled == {**created, "enabled": False}
    assert_down(port)

    enabled = assert_json(api.request(method, "/proxies/sticky", json={"enabled": True}), 200)
    assert enabled == created
    with connect(port) as sock:
        echo(sock)


def test_create_disabled_then_enable_binds_the_literal_listen(api: httpx.Client, echo_server: EchoServer) -> None:
    port = free_port()
    create_proxy(api, "later", echo_server.address, listen=f"localhost:{port}", enabled=False)
    assert_down(port)
    enabled = assert_json(api.post("/proxies/later", json={"enabled": True}), 200)
    assert enabled["enabled"] is True
    assert enabled["listen"] == f"127.0.0.1:{port}"
    assert_up(port)
    disabled = assert_json(api.post("/proxies/later", json={"enabled": False}), 200)
    assert disabled["enabled"] is False
    assert disabled["listen"] == f"127.0.0.1:{port}"
    assert_down(port)


def test_disable_closes_open_connections_and_keeps_toxics(api: httpx.Client, echo_server: EchoServer) -> None:
    created = create_proxy(api, "cut", echo_server.address)
    toxic = add_toxic(api, "cut", type="latency", attributes={"latency": 1})
    with connect(port_of(created["listen"])) as first, connect(port_of(created["listen"])) as second:
        echo(first)
        echo(second)
        assert_json(api.patch("/proxies/cut", json={"enabled": False}), 200)
        assert_closed(first)
        assert_closed(second)
    assert api.get("/proxies/cut/toxics").json() == [toxic]


def test_disable_twice_and_enable_twice_are_harmless(api: httpx.Client, echo_server: EchoServer) -> None:
    created = create_proxy(api, "twice", echo_server.address)
    port = port_of(created["listen"])
    for _ in range(2):
        assert assert_json(api.patch("/proxies/twice", json={"enabled": False}), 200)["enabled"] is False
    assert_down(port)
    for _ in range(2):
        assert assert_json(api.patch("/proxies/twice", json={"enabled": True}), 200)["enabled"] is True
    assert_up(port)


def test_two_disabled_proxies_may_share_a_listen_but_not_both_enable(
    api: httpx.Client, echo_server: EchoServer
) -> None:
    port = free_port()
    listen = f"127.0.0.1:{port}"
    create_proxy(api, "a", echo_server.address, listen=listen, enabled=False)
    create_proxy(api, "b", echo_server.address, listen=listen, enabled=False)
    assert_json(api.patch("/proxies/a", json={"enabled": True}), 200)
    before = all_proxies(api)
    response = api.patch("/proxies/b", json={"enabled": True})
    assert_error(response, 409, f"listen tcp 127.0.0.1:{port}: bind: address already in use")
    assert all_proxies(api) == before
    assert before["b"]["enabled"] is False


def test_cli_style_toggle_posts_the_whole_proxy_back(api: httpx.Client, echo_server: EchoServer) -> None:
    # toxiproxy-cli toggle: GET the proxy, flip "enabled", POST the full object back.
    create_proxy(api, "toggle", echo_server.address)
    toxic = add_toxic(api, "toggle", type="latency", attributes={"latency": 1})
    current = api.get("/proxies/toggle").json()
    port = port_of(current["listen"])
    off = assert_json(api.post("/proxies/toggle", json={**current, "enabled": False, "Logger": {}}), 200)
    assert off == {**current, "enabled": False}
    assert_down(port)
    on = assert_json(api.post("/proxies/toggle", json={**off, "enabled": True}), 200)
    assert on == current
    assert on["toxics"] == [toxic]
    assert_up(port)


def test_sending_back_the_current_definition_keeps_connections(api: httpx.Client, echo_server: EchoServer) -> None:
    created = create_proxy(api, "noop_update", echo_server.address)
    with connect(port_of(created["listen"])) as sock:
        echo(sock)
        assert assert_json(api.patch("/proxies/noop_update", json=created), 200) == created
        echo(sock, b"same connection")
    assert echo_server.accepted == 1


def test_empty_update_changes_nothing(api: httpx.Client, echo_server: EchoServer) -> None:
    created = create_proxy(api, "same", echo_server.address)
    with connect(port_of(created["listen"])) as sock:
        echo(sock)
        assert assert_json(api.patch("/proxies/same", json={}), 200) == created
        echo(sock)


def test_update_ignores_name_and_toxics(api: httpx.Client, echo_server: EchoServer) -> None:
    created = create_proxy(api, "keep", echo_server.address)
    response = api.patch("/proxies/keep", json={"name": "renamed", "toxics": [{"type": "latency"}], "enabled": True})
    assert assert_json(response, 200) == created
    assert list(all_proxies(api)) == ["keep"]
    assert api.get("/proxies/keep/toxics").json() == []


def test_update_keys_are_case_insensitive(api: httpx.Client, echo_server: EchoServer) -> None:
    created = create_proxy(api, "ci", echo_server.address)
    updated = assert_json(api.patch("/proxies/ci", json={"ENABLED": False}), 200)
    assert updated["enabled"] is False
    assert_down(port_of(created["listen"]))


def test_update_with_null_fields_changes_nothing(api: httpx.Client, echo_server: EchoServer) -> None:
    created = create_proxy(api, "nul", echo_server.address)
    body = {"listen": None, "upstream": None, "enabled": None}
    assert assert_json(api.patch("/proxies/nul", json=body), 200) == created
    assert_up(port_of(created["listen"]))


# -- listen changes ------------------------------------------------------------------------


def test_update_with_a_new_listen_moves_the_port(api: httpx.Client, echo_server: EchoServer) -> None:
    created = create_proxy(api, "mover", echo_server.address)
    toxic = add_toxic(api, "mover", type="noop", stream="upstream")
    old_port = port_of(created["listen"])
    new_port = free_port()
    with connect(old_port) as sock:
        echo(sock)
        updated = assert_json(api.patch("/proxies/mover", json={"listen": f"localhost:{new_port}"}), 200)
        assert updated == {**created, "listen": f"127.0.0.1:{new_port}", "toxics": [toxic]}
        assert_closed(sock)
    assert_down(old_port)
    with connect(new_port) as sock:
        echo(sock)


def test_update_listen_to_port_zero_picks_a_new_port(api: httpx.Client, echo_server: EchoServer) -> None:
    created = create_proxy(api, "zero", echo_server.address)
    old_port = port_of(created["listen"])
    updated = assert_json(api.patch("/proxies/zero", json={"listen": "localhost:0"}), 200)
    new_port = port_of(updated["listen"])
    assert new_port not in (0, old_port)
    assert_up(new_port)
    assert_down(old_port)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_update_with_the_same_listen_keeps_open_connections(
    api: httpx.Client, echo_server: EchoServer, host: str
) -> None:
    created = create_proxy(api, "stay", echo_server.address)
    port = port_of(created["listen"])
    with connect(port) as sock:
        echo(sock, b"before")
        updated = assert_json(api.patch("/proxies/stay", json={"listen": f"{host}:{port}"}), 200)
        assert updated == created
        echo(sock, b"after")
    assert echo_server.accepted == 1


def test_update_listen_of_a_disabled_proxy_only_stores_it(api: httpx.Client, echo_server: EchoServer) -> None:
    created = create_proxy(api, "idle", echo_server.address)
    old_port = port_of(created["listen"])
    assert_json(api.patch("/proxies/idle", json={"enabled": False}), 200)
    new_port = free_port()
    updated = assert_json(api.patch("/proxies/idle", json={"listen": f"127.0.0.1:{new_port}"}), 200)
    assert updated["enabled"] is False
    assert updated["listen"] == f"127.0.0.1:{new_port}"
    assert_down(new_port)
    assert_down(old_port)
    assert_json(api.patch("/proxies/idle", json={"enabled": True}), 200)
    assert_up(new_port)


def test_update_listen_and_disable_in_one_request(api: httpx.Client, echo_server: EchoServer) -> None:
    created = create_proxy(api, "both", echo_server.address)
    new_port = free_port()
    body = {"listen": f"127.0.0.1:{new_port}", "enabled": False}
    updated = assert_json(api.patch("/proxies/both", json=body), 200)
    assert updated["enabled"] is False
    assert_down(new_port)
    assert_down(port_of(created["listen"]))


def test_update_to_a_busy_port_is_409_and_changes_nothing(api: httpx.Client, echo_server: EchoServer) -> None:
    created = create_proxy(api, "stuck", echo_server.address)
    port = port_of(created["listen"])
    with connect(port) as sock, held_port() as busy:
        echo(sock)
        response = api.patch("/proxies/stuck", json={"listen": f"127.0.0.1:{busy}"})
        assert_error(response, 409, f"listen tcp 127.0.0.1:{busy}: bind: address already in use")
        assert api.get("/proxies/stuck").json() == created
        echo(sock)
    assert_up(port)


@pytest.mark.parametrize("listen", ["foo", "local373", "127.0.0.1:99999", "127.0.0.1:x"])
def test_update_with_a_malformed_listen_is_400_and_changes_nothing(
    api: httpx.Client, echo_server: EchoServer, listen: str
) -> None:
    created = create_proxy(api, "keepme", echo_server.address)
    message = error_message(api.patch("/proxies/keepme", json={"listen": listen}), 400)
    assert listen in message, message
    assert api.get("/proxies/keepme").json() == created
    assert_up(port_of(created["listen"]))


# -- upstream changes ----------------------------------------------------------------------


def test_update_upstream_redirects_new_connections_and_closes_old_ones(
    api: httpx.Client, echo_server: EchoServer, other_echo: EchoServer
) -> None:
    created = create_proxy(api, "swap", echo_server.address)
    port = port_of(created["listen"])
    with connect(port) as sock:
        echo(sock)
        updated = assert_json(api.patch("/proxies/swap", json={"upstream": other_echo.address}), 200)
        assert updated == {**created, "upstream": other_echo.address}
        assert_closed(sock)
    with connect(port) as sock:
        echo(sock)
    assert (echo_server.accepted, other_echo.accepted) == (1, 1)


@pytest.mark.parametrize("upstream", ["http://x", "x", "127.0.0.1:0", "127.0.0.1:65536"])
def test_update_with_an_invalid_upstream_is_400_and_changes_nothing(
    api: httpx.Client, echo_server: EchoServer, upstream: str
) -> None:
    created = create_proxy(api, "up", echo_server.address)
    with connect(port_of(created["listen"])) as sock:
        echo(sock)
        error_message(api.patch("/proxies/up", json={"upstream": upstream}), 400)
        assert api.get("/proxies/up").json() == created
        echo(sock)


@pytest.mark.parametrize(
    "body",
    [b'{"enabled":"true"}', b'{"enabled":0}', b'{"listen":80}', b"", b"{", b"[]"],
)
def test_update_with_a_bad_body_is_400_and_changes_nothing(
    api: httpx.Client, echo_server: EchoServer, body: bytes
) -> None:
    created = create_proxy(api, "typed", echo_server.address)
    message = error_message(api.patch("/proxies/typed", content=body), 400)
    assert message.startswith("bad request body: "), message
    assert api.get("/proxies/typed").json() == created
    assert_up(port_of(created["listen"]))


def test_updating_an_unknown_proxy_is_404_and_creates_nothing(api: httpx.Client) -> None:
    port = free_port()
    response = api.patch("/proxies/ghost", json={"listen": f"127.0.0.1:{port}", "upstream": "127.0.0.1:1"})
    assert_error(response, 404, "proxy not found")
    assert all_proxies(api) == {}
    assert_down(port)
