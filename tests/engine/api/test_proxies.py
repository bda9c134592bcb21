"""Proxy CRUD: create, show, list, delete, JSON shapes, input validation."""

from __future__ import annotations

import socket

import httpx
import pytest

from tests.engine.api.helpers import (
    PROXY_KEYS,
    all_proxies,
    assert_closed,
    assert_down,
    assert_empty,
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

# -- listing and shapes --------------------------------------------------------------------


def test_index_with_no_proxies_is_an_empty_object(api: httpx.Client) -> None:
    response = api.get("/proxies")
    assert assert_json(response, 200) == {}
    assert response.content == b"{}"


def test_create_returns_201_and_the_full_proxy(api: httpx.Client, echo_server: EchoServer) -> None:
    response = api.post("/proxies", json={"name": "redis", "listen": "127.0.0.1:0", "upstream": echo_server.address})
    body = assert_json(response, 201)
    assert list(body) == PROXY_KEYS
    port = port_of(body["listen"])
    assert port > 0
    assert body == {
        "name": "redis",
        "listen": f"127.0.0.1:{port}",
        "upstream": echo_server.address,
        "enabled": True,
        "protocol": "tcp",
        "toxics": [],
    }
    with connect(port) as sock:
        echo(sock, b"hello through the proxy")
    assert echo_server.accepted == 1


def test_show_proxy_equals_the_created_one(api: httpx.Client, echo_server: EchoServer) -> None:
    created = create_proxy(api, "shown", echo_server.address)
    shown = assert_json(api.get("/proxies/shown"), 200)
    assert list(shown) == PROXY_KEYS
    assert shown == created


def test_listing_is_keyed_by_name_in_sorted_order(api: httpx.Client, echo_server: EchoServer) -> None:
    for name in ["mysql", "alpha", "zeta", "beta"]:
        create_proxy(api, name, echo_server.address)
    response = api.get("/proxies")
    listing = assert_json(response, 200)
    assert list(listing) == ["alpha", "beta", "mysql", "zeta"]
    for name, proxy in listing.items():
        assert list(proxy) == PROXY_KEYS
        assert proxy == api.get(f"/proxies/{name}").json()


def test_listing_proxies_resolves_localhost_and_echoes_upstream(api: httpx.Client) -> None:
    port = free_port()
    response = api.post(
        "/proxies", json={"name": "mysql_master", "listen": f"localhost:{port}", "upstream": "localhost:20001"}
    )
    assert_json(response, 201)
    proxy = all_proxies(api)["mysql_master"]
    assert proxy["listen"] == f"127.0.0.1:{port}"
    assert proxy["upstream"] == "localhost:20001"
    assert proxy["enabled"] is True
    assert proxy["toxics"] == []
    assert_up(port)


@pytest.mark.parametrize("listen", [None, ""])
def test_create_without_listen_binds_loopback_on_a_real_port(
    api: httpx.Client, echo_server: EchoServer, listen: str | None
) -> None:
    body: dict[str, object] = {"name": "nolisten", "upstream": echo_server.address}
    if listen is not None:
        body["listen"] = listen
    created = assert_json(api.post("/proxies", json=body), 201)
    port = port_of(created["listen"])  # asserts the host is 127.0.0.1
    assert port > 0
    with connect(port) as sock:
        echo(sock)


def test_upstream_is_never_resolved_or_dialled_on_create(api: httpx.Client) -> None:
    created = create_proxy(api, "lazy", "no-such-host.invalid:5432")
    assert created["upstream"] == "no-such-host.invalid:5432"
    # The client is accepted and then closed (the upstream cannot be dialled).
    with connect(port_of(created["listen"])) as sock:
        assert sock.recv(1) == b""


def test_go_style_escaping_in_json_strings(api: httpx.Client) -> None:
    response = api.post("/proxies", json={"name": "esc", "upstream": "a<b>&c:80"})
    assert response.status_code == 201
    assert '"upstream":"a\\u003cb\\u003e\\u0026c:80"' in response.text
    assert response.json()["upstream"] == "a<b>&c:80"


# -- body decoding -------------------------------------------------------------------------


def test_json_keys_match_case_insensitively(api: httpx.Client, echo_server: EchoServer) -> None:
    port = free_port()
    response = api.post(
        "/proxies",
        json={"Name": "cased", "LISTEN": f"127.0.0.1:{port}", "UpStream": echo_server.address, "Enabled": False},
    )
    body = assert_json(response, 201)
    assert body["name"] == "cased"
    assert body["listen"] == f"127.0.0.1:{port}"
    assert body["upstream"] == echo_server.address
    assert body["enabled"] is False


def test_unknown_keys_and_toxics_in_the_body_are_ignored(api: httpx.Client, echo_server: EchoServer) -> None:
    response = api.post(
        "/proxies",
        json={
            "name": "extra",
            "upstream": echo_server.address,
            "colour": "blue",
            "Logger": {},
            "toxics": [{"type": "latency", "attributes": {"latency": 100}}],
        },
    )
    body = assert_json(response, 201)
    assert body["toxics"] == []
    assert api.get("/proxies/extra/toxics").json() == []


def test_null_fields_mean_not_given(api: httpx.Client, echo_server: EchoServer) -> None:
    response = api.post(
        "/proxies",
        json={"name": "nulls", "upstream": echo_server.address, "listen": None, "enabled": None, "protocol": None},
    )
    body = assert_json(response, 201)
    assert body["enabled"] is True
    assert body["protocol"] == "tcp"
    assert_up(port_of(body["listen"]))


def test_protocol_tcp_is_accepted(api: httpx.Client, echo_server: EchoServer) -> None:
    created = create_proxy(api, "tcp", echo_server.address, protocol="tcp")
    assert created["protocol"] == "tcp"


# -- disabled create -----------------------------------------------------------------------


def test_create_disabled_echoes_listen_verbatim_and_does_not_bind(api: httpx.Client, echo_server: EchoServer) -> None:
    port = free_port()
    response = api.post(
        "/proxies",
        json={"name": "off", "listen": f"localhost:{port}", "upstream": echo_server.address, "enabled": False},
    )
    body = assert_json(response, 201)
    assert body["listen"] == f"localhost:{port}"
    assert body["enabled"] is False
    assert body["toxics"] == []
    assert_down(port)
    assert api.get("/proxies/off").json() == body


def test_create_disabled_with_port_zero_echoes_it(api: httpx.Client, echo_server: EchoServer) -> None:
    body = create_proxy(api, "zero", echo_server.address, listen="127.0.0.1:0", enabled=False)
    assert body["listen"] == "127.0.0.1:0"
    assert body["enabled"] is False


# -- conflicts -----------------------------------------------------------------------------


def test_name_conflict_is_409_and_changes_nothing(api: httpx.Client, echo_server: EchoServer) -> None:
    original = create_proxy(api, "dup", echo_server.address)
    port = free_port()
    response = api.post("/proxies", json={"name": "dup", "listen": f"127.0.0.1:{port}", "upstream": "127.0.0.1:1"})
    assert_error(response, 409, "proxy already exists")
    assert all_proxies(api) == {"dup": original}
    assert_down(port)
    assert_empty(api.delete("/proxies/dup"))
    recreated = create_proxy(api, "dup", "127.0.0.1:1")
    assert recreated["upstream"] == "127.0.0.1:1"


def test_missing_upstream_wins_over_a_name_conflict(api: httpx.Client, echo_server: EchoServer) -> None:
    original = create_proxy(api, "taken", echo_server.address)
    assert_error(api.post("/proxies", json={"name": "taken"}), 400, "missing required field: upstream")
    assert all_proxies(api) == {"taken": original}


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_port_conflict_is_409_with_the_go_message(api: httpx.Client, echo_server: EchoServer, host: str) -> None:
    port = free_port()
    first = create_proxy(api, "first", echo_server.address, listen=f"127.0.0.1:{port}")
    response = api.post(
        "/proxies", json={"name": "second", "listen": f"{host}:{port}", "upstream": echo_server.address}
    )
    assert_error(response, 409, f"listen tcp 127.0.0.1:{port}: bind: address already in use")
    assert all_proxies(api) == {"first": first}
    # Deleting the first releases the port for the second.
    assert_empty(api.delete("/proxies/first"))
    second = create_proxy(api, "second", echo_server.address, listen=f"{host}:{port}")
    assert second["listen"] == f"127.0.0.1:{port}"
    with connect(port) as sock:
        echo(sock)


def test_port_held_by_another_program_is_409(api: httpx.Client, echo_server: EchoServer) -> None:
    with held_port() as port:
        response = api.post(
            "/proxies", json={"name": "busy", "listen": f"127.0.0.1:{port}", "upstream": echo_server.address}
        )
        assert_error(response, 409, f"listen tcp 127.0.0.1:{port}: bind: address already in use")
    assert all_proxies(api) == {}


# -- delete --------------------------------------------------------------------------------


def test_delete_proxy(api: httpx.Client, echo_server: EchoServer) -> None:
    created = create_proxy(api, "gone", echo_server.address)
    port = port_of(created["listen"])
    assert_up(port)
    assert_empty(api.delete("/proxies/gone"), 204)
    assert_down(port)
    assert all_proxies(api) == {}
    assert_error(api.get("/proxies/gone"), 404, "proxy not found")
    assert_error(api.delete("/proxies/gone"), 404, "proxy not found")


def test_delete_closes_open_connections(api: httpx.Client, echo_server: EchoServer) -> None:
    created = create_proxy(api, "conn", echo_server.address)
    with connect(port_of(created["listen"])) as sock:
        echo(sock)
        assert_empty(api.delete("/proxies/conn"))
        assert_closed(sock)


def test_delete_drops_toxics_of_a_recreated_proxy(api: httpx.Client, echo_server: EchoServer) -> None:
    create_proxy(api, "again", echo_server.address)
    api.post("/proxies/again/toxics", json={"type": "latency"})
    api.delete("/proxies/again")
    assert create_proxy(api, "again", echo_server.address)["toxics"] == []


# -- validation: 400, a clear message, nothing created, nothing bound ---------------------


@pytest.mark.parametrize(
    ("fields", "mentions"),
    [
        ({"name": "a/b"}, "a/b"),
        ({"name": "/"}, "/"),
        ({"upstream": "http://example.com"}, "http://example.com"),
        ({"upstream": "example.com"}, "example.com"),
        ({"upstream": "127.0.0.1"}, "127.0.0.1"),
        ({"upstream": "127.0.0.1:0"}, "127.0.0.1:0"),
        ({"upstream": "127.0.0.1:70000"}, "70000"),
        ({"protocol": "udp"}, "udp"),
        ({"protocol": "HTTP"}, "HTTP"),
    ],
)
def test_invalid_fields_are_400_and_create_nothing(
    api: httpx.Client, echo_server: EchoServer, fields: dict[str, str], mentions: str
) -> None:
    port = free_port()
    body = {"name": "bad", "listen": f"127.0.0.1:{port}", "upstream": echo_server.address, **fields}
    message = error_message(api.post("/proxies", json=body), 400)
    assert mentions in message, message
    assert all_proxies(api) == {}
    assert_down(port)


@pytest.mark.parametrize("listen", ["local373", "127.0.0.1", "127.0.0.1:99999", "127.0.0.1:abc", "::1:80"])
def test_malformed_listen_is_400_not_500(api: httpx.Client, echo_server: EchoServer, listen: str) -> None:
    response = api.post("/proxies", json={"name": "bad", "listen": listen, "upstream": echo_server.address})
    message = error_message(response, 400)
    assert listen in message, message
    assert all_proxies(api) == {}


@pytest.mark.parametrize("enabled", [True, False])
def test_invalid_upstream_rejected_even_for_disabled(api: httpx.Client, enabled: bool) -> None:
    response = api.post("/proxies", json={"name": "bad", "upstream": "http://x", "enabled": enabled})
    error_message(response, 400)
    assert all_proxies(api) == {}


def test_ipv4_listen_is_reachable_by_a_plain_ipv4_socket(api: httpx.Client, echo_server: EchoServer) -> None:
    created = create_proxy(api, "v4", echo_server.address)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(3)
        assert sock.connect_ex(("127.0.0.1", port_of(created["listen"]))) == 0
