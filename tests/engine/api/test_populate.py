"""``POST /populate``: bulk create, keep-if-same, replace-if-different, all-or-nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.engine.api.helpers import (
    PROXY_KEYS,
    add_toxic,
    all_proxies,
    assert_closed,
    assert_down,
    assert_json,
    assert_up,
    compact,
    connect,
    create_proxy,
    echo,
    free_port,
    held_port,
    port_of,
    toxics_of,
)
from tests.support.engine import EchoServer


def envelope_error(response: httpx.Response, status: int) -> tuple[str, Any]:
    """The populate error envelope: ``{"error","status","proxies"}`` as application/json."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error", "status", "proxies"], body
    assert body["status"] == status
    assert isinstance(body["error"], str) and body["error"]
    assert response.text == compact(body)
    return body["error"], body["proxies"]


def assert_validation_error(response: httpx.Response, message: str | None = None) -> str:
    error, proxies = envelope_error(response, 400)
    assert proxies is None
    if message is not None:
        assert error == message
    return error


def test_populate_creates_proxies_in_input_order(api: httpx.Client, echo_server: EchoServer) -> None:
    p1, p2 = free_port(), free_port()
    items = [
        {"name": "zz_one", "listen": f"localhost:{p1}", "upstream": echo_server.address},
        {"name": "aa_two", "listen": f"localhost:{p2}", "upstream": echo_server.address},
    ]
    body = assert_json(api.post("/populate", json=items), 201)
    assert list(body) == ["proxies"]
    proxies = body["proxies"]
    assert [p["name"] for p in proxies] == ["zz_one", "aa_two"]
    for proxy, port in zip(proxies, [p1, p2], strict=True):
        assert list(proxy) == PROXY_KEYS
        assert proxy == {
            "name": proxy["name"],
            "listen": f"127.0.0.1:{port}",
            "upstream": echo_server.address,
            "enabled": True,
            "protocol": "tcp",
            "toxics": [],
        }
        assert api.get(f"/proxies/{proxy['name']}").json() == proxy
        with connect(port) as sock:
            echo(sock)


@pytest.mark.parametrize("extra", ["", ',"enabled":null', ',"listen":null'])
def test_populate_defaults_to_enabled(api: httpx.Client, echo_server: EchoServer, extra: str) -> None:
    raw = f'[{{"name":"test","upstream":"{echo_server.address}"{extra}}}]'
    body = assert_json(api.post("/populate", content=raw), 201)
    proxy = body["proxies"][0]
    assert proxy["enabled"] is True
    assert_up(port_of(proxy["listen"]))
    assert list(all_proxies(api)) == ["test"]


def test_populate_disabled_proxy(api: httpx.Client, echo_server: EchoServer) -> None:
    p1, p2 = free_port(), free_port()
    items = [
        {"name": "one", "listen": f"localhost:{p1}", "upstream": echo_server.address, "enabled": False},
        {"name": "two", "listen": f"localhost:{p2}", "upstream": echo_server.address, "enabled": True},
    ]
    one, two = assert_json(api.post("/populate", json=items), 201)["proxies"]
    assert (one["enabled"], one["listen"]) == (False, f"localhost:{p1}")
    assert (two["enabled"], two["listen"]) == (True, f"127.0.0.1:{p2}")
    assert_down(p1)
    assert_up(p2)


def test_populate_empty_array(api: httpx.Client) -> None:
    response = api.post("/populate", json=[])
    assert_json(response, 201)
    assert response.content == b'{"proxies":[]}'


def test_populate_keys_are_case_insensitive_and_toxics_ignored(api: httpx.Client, echo_server: EchoServer) -> None:
    items = [{"NAME": "ci", "Upstream": echo_server.address, "toxics": [{"type": "latency"}], "extra": 1}]
    proxy = assert_json(api.post("/populate", json=items), 201)["proxies"][0]
    assert proxy["name"] == "ci"
    assert proxy["toxics"] == []
    assert toxics_of(api, "ci") == []


def test_toxic_can_be_added_to_a_populated_proxy(api: httpx.Client, echo_server: EchoServer) -> None:
    api.post("/populate", json=[{"name": "pop", "upstream": echo_server.address}])
    toxic = add_toxic(api, "pop", type="latency", attributes={"latency": 5})
    assert toxics_of(api, "pop") == [toxic]


# -- existing proxies ----------------------------------------------------------------------


def test_populate_keeps_same_and_replaces_different(api: httpx.Client, echo_server: EchoServer) -> None:
    p1, p2, p3 = free_port(), free_port(), free_port()
    create_proxy(api, "one", echo_server.address, listen=f"127.0.0.1:{p1}")
    create_proxy(api, "two", echo_server.address, listen=f"127.0.0.1:{p2}")
    toxic = add_toxic(api, "one", type="latency", attributes={"latency": 1})
    add_toxic(api, "two", type="latency", attributes={"latency": 1})
    with connect(p1) as kept, connect(p2) as replaced:
        echo(kept)
        echo(replaced)
        items = [
            {"name": "one", "listen": f"localhost:{p1}", "upstream": echo_server.address},
            {"name": "two", "listen": f"127.0.0.1:{p3}", "upstream": echo_server.address},
        ]
        one, two = assert_json(api.post("/populate", json=items), 201)["proxies"]
        assert one["listen"] == f"127.0.0.1:{p1}"
        assert two["listen"] == f"127.0.0.1:{p3}"
        assert one["toxics"] == [toxic]
        assert two["toxics"] == []
        echo(kept, b"still open")
        assert_closed(replaced)
    assert toxics_of(api, "one") == [toxic]
    assert toxics_of(api, "two") == []
    assert_up(p1)
    assert_up(p3)
    assert_down(p2)


@pytest.mark.parametrize("existing_enabled", [True, False])
def test_populate_keeps_a_same_proxy_untouched_including_enabled(
    api: httpx.Client, echo_server: EchoServer, existing_enabled: bool
) -> None:
    created = create_proxy(api, "same", echo_server.address)
    port = port_of(created["listen"])
    toxic = add_toxic(api, "same", type="noop")
    if not existing_enabled:
        api.patch("/proxies/same", json={"enabled": False})
    before = api.get("/proxies/same").json()
    items = [
        {
            "name": "same",
            "listen": f"127.0.0.1:{port}",
            "upstream": echo_server.address,
            "enabled": not existing_enabled,
        }
    ]
    proxies = assert_json(api.post("/populate", json=items), 201)["proxies"]
    assert proxies == [before]
    assert before["enabled"] is existing_enabled
    assert before["toxics"] == [toxic]
    (assert_up if existing_enabled else assert_down)(port)


def test_populate_replaces_on_a_new_upstream_on_the_same_port(api: httpx.Client, echo_server: EchoServer) -> None:
    other = EchoServer()
    try:
        created = create_proxy(api, "swap", echo_server.address)
        port = port_of(created["listen"])
        add_toxic(api, "swap", type="noop")
        with connect(port) as old:
            echo(old)
            items = [{"name": "swap", "listen": f"localhost:{port}", "upstream": other.address}]
            (proxy,) = assert_json(api.post("/populate", json=items), 201)["proxies"]
            assert proxy == {**created, "upstream": other.address, "toxics": []}
            assert_closed(old)
        with connect(port) as new:
            echo(new)
        assert other.accepted == 1
    finally:
        other.close()


def test_populate_may_reuse_a_port_freed_by_a_replaced_proxy(api: httpx.Client, echo_server: EchoServer) -> None:
    # Toxiproxy applies items in order: "x" moves from P to Q (freeing P), then "y" binds P.
    p, q = free_port(), free_port()
    create_proxy(api, "x", echo_server.address, listen=f"127.0.0.1:{p}")
    items = [
        {"name": "x", "listen": f"127.0.0.1:{q}", "upstream": echo_server.address},
        {"name": "y", "listen": f"127.0.0.1:{p}", "upstream": echo_server.address},
    ]
    x, y = assert_json(api.post("/populate", json=items), 201)["proxies"]
    assert (x["listen"], y["listen"]) == (f"127.0.0.1:{q}", f"127.0.0.1:{p}")
    with connect(p) as sock:
        echo(sock)
    with connect(q) as sock:
        echo(sock)


# -- all or nothing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("second", "message"),
    [
        ({"name": "", "upstream": "127.0.0.1:1"}, "missing required field: name at proxy 2"),
        ({"upstream": "127.0.0.1:1"}, "missing required field: name at proxy 2"),
        ({"name": "two", "upstream": ""}, "missing required field: upstream at proxy 2"),
        ({"name": "two"}, "missing required field: upstream at proxy 2"),
    ],
)
def test_populate_missing_fields_create_nothing(
    api: httpx.Client, echo_server: EchoServer, second: dict[str, str], message: str
) -> None:
    port = free_port()
    items = [{"name": "one", "listen": f"127.0.0.1:{port}", "upstream": echo_server.address}, second]
    assert_validation_error(api.post("/populate", json=items), message)
    assert all_proxies(api) == {}
    assert_down(port)


@pytest.mark.parametrize(
    ("second", "mentions"),
    [
        ({"name": "two", "listen": "local373", "upstream": "127.0.0.1:1"}, "local373"),
        ({"name": "two", "listen": "127.0.0.1:99999", "upstream": "127.0.0.1:1"}, "99999"),
        ({"name": "two", "upstream": "http://x"}, "http://x"),
        ({"name": "two", "upstream": "127.0.0.1:0"}, "127.0.0.1:0"),
        ({"name": "a/b", "upstream": "127.0.0.1:1"}, "a/b"),
        ({"name": "two", "upstream": "127.0.0.1:1", "protocol": "udp"}, "udp"),
    ],
)
def test_populate_invalid_item_creates_and_replaces_nothing(
    api: httpx.Client, echo_server: EchoServer, second: dict[str, str], mentions: str
) -> None:
    existing = create_proxy(api, "existing", echo_server.address)
    add_toxic(api, "existing", type="noop")
    before = all_proxies(api)
    port = free_port()
    items = [
        {"name": "one", "listen": f"127.0.0.1:{port}", "upstream": echo_server.address},
        {"name": "existing", "upstream": "127.0.0.1:2"},  # would replace it
        second,
    ]
    message = assert_validation_error(api.post("/populate", json=items))
    assert mentions in message, message
    assert "proxy 3" in message, message
    assert all_proxies(api) == before
    assert_down(port)
    assert_up(port_of(existing["listen"]))


def test_populate_duplicate_names_are_400(api: httpx.Client, echo_server: EchoServer) -> None:
    p1, p2 = free_port(), free_port()
    items = [
        {"name": "twin", "listen": f"127.0.0.1:{p1}", "upstream": echo_server.address},
        {"name": "twin", "listen": f"127.0.0.1:{p2}", "upstream": echo_server.address},
    ]
    message = assert_validation_error(api.post("/populate", json=items))
    assert "twin" in message, message
    assert all_proxies(api) == {}
    assert_down(p1)
    assert_down(p2)


def test_populate_bind_failure_is_409_and_changes_nothing(api: httpx.Client, echo_server: EchoServer) -> None:
    existing = create_proxy(api, "existing", echo_server.address)
    toxic = add_toxic(api, "existing", type="noop")
    before = all_proxies(api)
    new_port, moved_port = free_port(), free_port()
    with connect(port_of(existing["listen"])) as sock, held_port() as busy:
        echo(sock)
        items = [
            {"name": "fresh", "listen": f"127.0.0.1:{new_port}", "upstream": echo_server.address},
            {"name": "existing", "listen": f"127.0.0.1:{moved_port}", "upstream": echo_server.address},
            {"name": "blocked", "listen": f"localhost:{busy}", "upstream": echo_server.address},
        ]
        error, proxies = envelope_error(api.post("/populate", json=items), 409)
        assert error == f"listen tcp 127.0.0.1:{busy}: bind: address already in use"
        assert proxies in (None, [])
        assert all_proxies(api) == before
        assert toxics_of(api, "existing") == [toxic]
        echo(sock, b"untouched")
    assert_down(new_port)
    assert_down(moved_port)


def test_populate_bind_failure_after_a_same_port_replacement_changes_nothing(
    api: httpx.Client, echo_server: EchoServer
) -> None:
    existing = create_proxy(api, "existing", echo_server.address)
    port = port_of(existing["listen"])
    toxic = add_toxic(api, "existing", type="noop")
    with connect(port) as sock, held_port() as busy:
        echo(sock)
        items = [
            # Same port, new upstream: would be replaced, taking over the listener.
            {"name": "existing", "listen": f"127.0.0.1:{port}", "upstream": "127.0.0.1:1"},
            {"name": "blocked", "listen": f"127.0.0.1:{busy}", "upstream": echo_server.address},
        ]
        envelope_error(api.post("/populate", json=items), 409)
        assert all_proxies(api) == {"existing": {**existing, "toxics": [toxic]}}
        echo(sock, b"still the old proxy")
    with connect(port) as sock:
        echo(sock)


def test_populate_two_items_on_one_port_is_409_and_creates_nothing(api: httpx.Client, echo_server: EchoServer) -> None:
    port = free_port()
    items = [
        {"name": "a", "listen": f"127.0.0.1:{port}", "upstream": echo_server.address},
        {"name": "b", "listen": f"127.0.0.1:{port}", "upstream": echo_server.address},
    ]
    error, proxies = envelope_error(api.post("/populate", json=items), 409)
    assert error == f"listen tcp 127.0.0.1:{port}: bind: address already in use"
    assert proxies in (None, [])
    assert all_proxies(api) == {}
    assert_down(port)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "bad request body: EOF"),
        (b"[", None),
        (b"{}", None),
        (b'{"name":"x","upstream":"127.0.0.1:1"}', None),
        (b"[1, 2]", None),
        (b'[{"name":"x","upstream":"127.0.0.1:1","enabled":"yes"}]', None),
        (b'[{"name":7,"upstream":"127.0.0.1:1"}]', None),
    ],
)
def test_populate_undecodable_body_is_400(api: httpx.Client, body: bytes, message: str | None) -> None:
    error = assert_validation_error(api.post("/populate", content=body), message)
    assert error.startswith("bad request body: "), error
    assert all_proxies(api) == {}
