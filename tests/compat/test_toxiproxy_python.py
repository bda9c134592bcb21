"""The real toxiproxy-python client (package ``toxiproxy``) against the engine (spec §5.1)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from toxiproxy import Proxy, Toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from chaos_service.sandbox._process import free_port
from tests.compat import accepts, bounded_requests, connection_fails, echo_round_trip, split_listen
from tests.support.engine import EchoServer, EngineProcess


@pytest.fixture
def server(engine: EngineProcess, api: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> Iterator[Toxiproxy]:
    """A toxiproxy-python server facade pointed at the session engine (class-level URL restored after)."""
    bounded_requests(monkeypatch)
    monkeypatch.setattr(APIConsumer, "host", APIConsumer.host)
    monkeypatch.setattr(APIConsumer, "port", APIConsumer.port)
    url = urlsplit(engine.url)
    assert url.hostname is not None and url.port is not None
    toxiproxy = Toxiproxy()
    toxiproxy.update_api_consumer(url.hostname, url.port)
    yield toxiproxy


def test_update_api_consumer_points_the_class_level_url_at_the_engine(
    server: Toxiproxy, engine: EngineProcess, api: httpx.Client
) -> None:
    assert (APIConsumer.host, APIConsumer.port) == ("127.0.0.1", urlsplit(engine.url).port)
    api.post("/proxies", json={"name": "seen_by_client", "upstream": "127.0.0.1:1", "enabled": False})
    assert sorted(server.proxies()) == sorted(api.get("/proxies").json())
    assert "seen_by_client" in server.proxies()


def test_create_without_listen_binds_an_ephemeral_ipv4_port(server: Toxiproxy, echo_server: EchoServer) -> None:
    proxy = server.create(upstream=echo_server.address, name="no_listen")

    assert isinstance(proxy, Proxy)
    assert proxy.name == "no_listen"
    assert proxy.upstream == echo_server.address
    assert proxy.enabled is True
    host, port = split_listen(proxy.listen)
    assert host == "127.0.0.1"
    assert port > 0
    assert accepts(port)


def test_create_with_listen_uses_that_address(server: Toxiproxy, echo_server: EchoServer) -> None:
    port = free_port()
    proxy = server.create(upstream=echo_server.address, name="with_listen", listen=f"127.0.0.1:{port}")

    assert proxy.listen == f"127.0.0.1:{port}"
    assert accepts(port)


def test_create_disabled_echoes_listen_and_enabled_false(server: Toxiproxy, api: httpx.Client) -> None:
    port = free_port()
    proxy = server.create(upstream="127.0.0.1:20001", name="disabled", listen=f"127.0.0.1:{port}", enabled=False)

    assert proxy.listen == f"127.0.0.1:{port}"
    assert proxy.enabled is False
    assert api.get("/proxies/disabled").json()["enabled"] is False
    assert not accepts(port)


def test_proxies_and_get_proxy_list_what_the_engine_holds(server: Toxiproxy, echo_server: EchoServer) -> None:
    server.create(upstream=echo_server.address, name="one")
    off_port = free_port()
    server.create(upstream="127.0.0.1:20002", name="two", listen=f"127.0.0.1:{off_port}", enabled=False)

    proxies = server.proxies()

    assert sorted(proxies) == ["one", "two"]
    assert all(isinstance(proxy, Proxy) for proxy in proxies.values())
    assert proxies["one"].upstream == echo_server.address
    assert proxies["one"].enabled is True
    assert proxies["two"].listen == f"127.0.0.1:{off_port}"
    assert proxies["two"].enabled is False
    found = server.get_proxy("two")
    assert found is not None
    assert found.upstream == "127.0.0.1:20002"
    assert server.get_proxy("three") is None


def test_duplicate_create_raises_proxy_exists(server: Toxiproxy, echo_server: EchoServer) -> None:
    server.create(upstream=echo_server.address, name="dup")

    with pytest.raises(ProxyExists):
        server.create(upstream=echo_server.address, name="dup")


def test_server_side_conflict_is_a_409_that_surfaces_as_proxy_exists(
    server: Toxiproxy, echo_server: EchoServer
) -> None:
    """toxiproxy_api_test.py: a second raw POST /proxies with the same name (no listen) → 409."""
    body = {"name": "raw_dup", "upstream": echo_server.address}
    APIConsumer.post("/proxies", json=body)

    with pytest.raises(ProxyExists):
        APIConsumer.post("/proxies", json=body)


def test_unknown_path_raises_not_found(server: Toxiproxy) -> None:
    with pytest.raises(NotFound):
        APIConsumer.get("/not_found")


def test_latency_toxic_attributes_round_trip(server: Toxiproxy, echo_server: EchoServer) -> None:
    proxy = server.create(upstream=echo_server.address, name="latent")

    assert proxy.add_toxic(type="latency", attributes={"latency": 123}) is None

    toxics = proxy.toxics()
    assert list(toxics) == ["latency_downstream"]
    toxic = toxics["latency_downstream"]
    assert toxic.type == "latency"
    assert toxic.stream == "downstream"
    assert toxic.toxicity == 1
    assert toxic.attributes["latency"] == 123
    assert toxic.attributes["jitter"] == 0
    fetched = proxy.get_toxic("latency_downstream")
    assert fetched is not None
    assert fetched.attributes["latency"] == 123
    assert proxy.get_toxic("missing") is None


def test_named_upstream_toxic_with_toxicity(server: Toxiproxy, echo_server: EchoServer) -> None:
    proxy = server.create(upstream=echo_server.address, name="named")

    proxy.add_toxic(name="slow", type="bandwidth", stream="upstream", toxicity=0.5, attributes={"rate": 100})

    toxic = proxy.toxics()["slow"]
    assert (toxic.type, toxic.stream, toxic.toxicity) == ("bandwidth", "upstream", 0.5)
    assert toxic.attributes == {"rate": 100}


def test_invalid_stream_raises_invalid_toxic(server: Toxiproxy, echo_server: EchoServer) -> None:
    proxy = server.create(upstream=echo_server.address, name="bad_stream")

    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="latency", stream="walrustream", attributes={"latency": 10})
    assert proxy.toxics() == {}


def test_duplicate_toxic_surfaces_as_proxy_exists(server: Toxiproxy, echo_server: EchoServer) -> None:
    """Spec §5.1 hazard 3: the 409 for a duplicate toxic is mapped to ProxyExists by this client."""
    proxy = server.create(upstream=echo_server.address, name="dup_toxic")
    proxy.add_toxic(type="latency", attributes={"latency": 10})

    with pytest.raises(ProxyExists):
        proxy.add_toxic(type="latency", attributes={"latency": 20})
    assert proxy.toxics()["latency_downstream"].attributes["latency"] == 10


def test_destroy_toxic(server: Toxiproxy, echo_server: EchoServer) -> None:
    proxy = server.create(upstream=echo_server.address, name="detox")
    proxy.add_toxic(type="latency", attributes={"latency": 50})
    proxy.add_toxic(type="slow_close", attributes={"delay": 10})

    assert proxy.destroy_toxic("latency_downstream") is True

    assert list(proxy.toxics()) == ["slow_close_downstream"]
    with pytest.raises(NotFound):
        proxy.destroy_toxic("latency_downstream")


def test_disable_refuses_and_enable_accepts_on_the_same_port(
    server: Toxiproxy, echo_server: EchoServer, api: httpx.Client
) -> None:
    proxy = server.create(upstream=echo_server.address, name="toggle")
    listen = proxy.listen
    _, port = split_listen(listen)
    assert accepts(port)

    proxy.disable()
    assert proxy.enabled is False
    assert api.get("/proxies/toggle").json()["enabled"] is False
    assert not accepts(port)

    proxy.enable()
    assert proxy.enabled is True
    assert accepts(port)
    assert server.proxies()["toggle"].listen == listen
    assert echo_round_trip(port)[0] == b"ping through the proxy"


def test_down_context_manager_breaks_connections_only_inside(
    server: Toxiproxy, echo_server: EchoServer
) -> None:
    proxy = server.create(upstream=echo_server.address, name="downed")
    _, port = split_listen(proxy.listen)
    assert echo_round_trip(port)[0] == b"ping through the proxy"

    with proxy.down() as inside:
        assert inside is proxy
        assert proxy.enabled is False
        assert connection_fails(port)

    assert proxy.enabled is True
    assert echo_round_trip(port)[0] == b"ping through the proxy"


def test_reset_reenables_on_the_same_port_and_removes_toxics(
    server: Toxiproxy, echo_server: EchoServer, api: httpx.Client
) -> None:
    proxy = server.create(upstream=echo_server.address, name="resettable")
    _, port = split_listen(proxy.listen)
    proxy.add_toxic(type="latency", attributes={"latency": 2000})
    proxy.add_toxic(type="timeout", stream="upstream", attributes={"timeout": 0})
    proxy.disable()
    assert not accepts(port)

    assert server.reset() is True

    assert proxy.toxics() == {}
    after = server.proxies()["resettable"]
    assert after.enabled is True
    assert after.listen == proxy.listen
    assert api.get("/proxies/resettable").json()["toxics"] == []
    received, elapsed = echo_round_trip(port)
    assert received == b"ping through the proxy"
    assert elapsed < 1.5


def test_version_returns_the_body_bytes(server: Toxiproxy) -> None:
    assert server.version() == b'{"version": "2.12.0"}\n'


def test_running_is_a_plain_ipv4_connect(server: Toxiproxy) -> None:
    assert server.running() is True

    server.update_api_consumer("127.0.0.1", free_port())
    assert server.running() is False
    assert server.version() is None


def test_populate_with_localhost_reports_a_splittable_ipv4_listen(
    server: Toxiproxy, echo_server: EchoServer
) -> None:
    port = free_port()

    created = server.populate([{"name": "populated", "upstream": echo_server.address, "listen": f"localhost:{port}"}])

    assert [proxy.name for proxy in created] == ["populated"]
    host, listen_port = split_listen(created[0].listen)
    assert (host, listen_port) == ("127.0.0.1", port)
    assert echo_round_trip(port)[0] == b"ping through the proxy"
    assert server.get_proxy("populated") is not None


def test_populate_keeps_an_identical_proxy_and_replaces_a_changed_one(
    server: Toxiproxy, echo_server: EchoServer
) -> None:
    first = server.create(upstream=echo_server.address, name="kept")
    first.add_toxic(type="latency", attributes={"latency": 5})
    changed = server.create(upstream="127.0.0.1:20003", name="changed")

    created = server.populate(
        [
            {"name": "kept", "upstream": echo_server.address, "listen": first.listen},
            {"name": "changed", "upstream": echo_server.address, "listen": changed.listen},
        ]
    )

    assert [proxy.name for proxy in created] == ["changed"]
    assert server.proxies()["changed"].upstream == echo_server.address
    assert list(server.proxies()["kept"].toxics()) == ["latency_downstream"]


def test_destroy(server: Toxiproxy, echo_server: EchoServer) -> None:
    proxy = server.create(upstream=echo_server.address, name="doomed")
    _, port = split_listen(proxy.listen)

    assert server.destroy(proxy) is True

    assert server.get_proxy("doomed") is None
    assert not accepts(port)
    assert server.destroy("doomed") is False
    with pytest.raises(NotFound):
        proxy.destroy()


def test_destroy_all(server: Toxiproxy, echo_server: EchoServer, api: httpx.Client) -> None:
    ports = [split_listen(server.create(upstream=echo_server.address, name=f"all_{i}").listen)[1] for i in range(3)]
    server.create(upstream=echo_server.address, name="all_off", listen=f"127.0.0.1:{free_port()}", enabled=False)

    server.destroy_all()

    assert server.proxies() == {}
    assert api.get("/proxies").json() == {}
    assert not any(accepts(port) for port in ports)


def test_data_round_trips_through_a_client_created_proxy(server: Toxiproxy, echo_server: EchoServer) -> None:
    proxy = server.create(upstream=echo_server.address, name="flow")
    _, port = split_listen(proxy.listen)
    payload = bytes(range(256)) * 256

    received, _ = echo_round_trip(port, payload)

    assert received == payload
    assert echo_server.accepted == 1


def test_latency_toxic_added_by_the_client_delays_the_round_trip(
    server: Toxiproxy, echo_server: EchoServer
) -> None:
    proxy = server.create(upstream=echo_server.address, name="delayed")
    _, port = split_listen(proxy.listen)
    _, baseline = echo_round_trip(port)
    assert baseline < 0.2

    proxy.add_toxic(type="latency", attributes={"latency": 300})
    received, delayed = echo_round_trip(port)
    assert received == b"ping through the proxy"
    assert 0.29 <= delayed < 3.0

    proxy.destroy_toxic("latency_downstream")
    _, restored = echo_round_trip(port)
    assert restored < 0.2


def test_existing_connection_is_closed_when_the_proxy_is_disabled(
    server: Toxiproxy, echo_server: EchoServer
) -> None:
    proxy = server.create(upstream=echo_server.address, name="cut")
    _, port = split_listen(proxy.listen)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"hi")
        assert sock.recv(2) == b"hi"

        proxy.disable()

        try:
            closed = sock.recv(1) == b""
        except ConnectionResetError:
            closed = True
        assert closed
