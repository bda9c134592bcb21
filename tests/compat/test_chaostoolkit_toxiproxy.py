"""The real chaostoolkit-toxiproxy extension (package ``chaostoxi``) against the engine (spec §5.2).

Every call is checked against what the engine holds afterwards (read back over plain HTTP), not only
against the extension's return value.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from chaostoxi.proxy import actions as proxy_actions
from chaostoxi.proxy import probes
from chaostoxi.toxic import actions as toxic_actions

from chaos_service.sandbox._process import free_port
from tests.compat import accepts, bounded_requests, echo_round_trip, split_listen
from tests.support.engine import EchoServer, EngineProcess

Configuration = dict[str, Any]


@pytest.fixture
def configuration(
    engine: EngineProcess, api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Configuration]:
    """chaostoolkit configuration for the session engine; removes the ``<name>_PORT`` variables it sets."""
    bounded_requests(monkeypatch)
    url = urlsplit(engine.url)
    before = set(os.environ)
    config: Configuration = {"toxiproxy_host": url.hostname, "toxiproxy_port": url.port}
    yield config
    for key in config:
        if key.endswith("_PORT") and key not in before:
            os.environ.pop(key, None)


def make_proxy(configuration: Configuration, echo_server: EchoServer, name: str) -> int:
    """`create_proxy` on 127.0.0.1 (never all interfaces); the listen port it stored."""
    assert proxy_actions.create_proxy(
        proxy_name=name,
        upstream_host="127.0.0.1",
        upstream_port=echo_server.port,
        listen_host="127.0.0.1",
        configuration=configuration,
    )
    return int(configuration[f"{name}_PORT"])


def test_create_proxy_creates_it_and_stores_its_port(
    configuration: Configuration, api: httpx.Client, echo_server: EchoServer
) -> None:
    port = make_proxy(configuration, echo_server, "ctk")

    held = api.get("/proxies/ctk").json()
    assert held["upstream"] == echo_server.address
    assert held["enabled"] is True
    assert split_listen(held["listen"]) == ("127.0.0.1", port)
    assert configuration["ctk_PORT"] == str(port)
    assert os.environ["ctk_PORT"] == str(port)  # noqa: SIM112 - chaostoxi names it <proxy>_PORT
    assert echo_round_trip(port)[0] == b"ping through the proxy"


def test_create_proxy_reads_upstream_from_env_and_honours_a_fixed_listen_port(
    configuration: Configuration,
    api: httpx.Client,
    echo_server: EchoServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CTK_UPSTREAM_HOST", "127.0.0.1")
    monkeypatch.setenv("CTK_UPSTREAM_PORT", str(echo_server.port))
    port = free_port()

    assert proxy_actions.create_proxy(
        proxy_name="ctk_env",
        upstream_host="env:CTK_UPSTREAM_HOST",
        upstream_port="env:CTK_UPSTREAM_PORT",  # type: ignore[arg-type]
        listen_host="127.0.0.1",
        listen_port=port,
        configuration=configuration,
    )

    assert api.get("/proxies/ctk_env").json()["listen"] == f"127.0.0.1:{port}"
    assert api.get("/proxies/ctk_env").json()["upstream"] == echo_server.address
    assert configuration["ctk_env_PORT"] == str(port)


def test_create_proxy_disabled(configuration: Configuration, api: httpx.Client, echo_server: EchoServer) -> None:
    port = free_port()

    assert proxy_actions.create_proxy(
        proxy_name="ctk_off",
        upstream_host="127.0.0.1",
        upstream_port=echo_server.port,
        listen_host="127.0.0.1",
        listen_port=port,
        enabled=False,
        configuration=configuration,
    )

    assert api.get("/proxies/ctk_off").json()["enabled"] is False
    assert not accepts(port)


def test_create_proxy_with_a_taken_name_raises_assertion_error(
    configuration: Configuration, api: httpx.Client, echo_server: EchoServer
) -> None:
    port = make_proxy(configuration, echo_server, "ctk_dup")

    with pytest.raises(AssertionError):
        make_proxy(configuration, echo_server, "ctk_dup")
    assert list(api.get("/proxies").json()) == ["ctk_dup"]
    assert api.get("/proxies/ctk_dup").json()["listen"] == f"127.0.0.1:{port}"


def test_proxy_exist(configuration: Configuration, echo_server: EchoServer) -> None:
    make_proxy(configuration, echo_server, "ctk_exists")

    assert probes.proxy_exist("ctk_exists", configuration=configuration) is True
    assert probes.proxy_exist("ctk_absent", configuration=configuration) is False


def test_get_proxy_attribute(configuration: Configuration, echo_server: EchoServer) -> None:
    port = make_proxy(configuration, echo_server, "ctk_attr")

    assert probes.get_proxy_attribute("ctk_attr", "upstream", configuration=configuration) == echo_server.address
    assert probes.get_proxy_attribute("ctk_attr", "enabled", configuration=configuration) is True
    assert probes.get_proxy_attribute("ctk_attr", "listen", configuration=configuration) == f"127.0.0.1:{port}"
    assert probes.get_proxy_attribute("ctk_attr", "toxics", configuration=configuration) == []
    assert probes.get_proxy_attribute("ctk_absent", "listen", configuration=configuration) is None


def test_modify_proxy_moves_listen_and_upstream(
    configuration: Configuration, api: httpx.Client, echo_server: EchoServer
) -> None:
    old_port = make_proxy(configuration, echo_server, "ctk_mod")
    other = EchoServer()
    try:
        new_port = free_port()

        assert proxy_actions.modify_proxy(
            "ctk_mod",
            listen_address=f"127.0.0.1:{new_port}",
            upstream_address=other.address,
            configuration=configuration,
        )

        held = api.get("/proxies/ctk_mod").json()
        assert held["listen"] == f"127.0.0.1:{new_port}"
        assert held["upstream"] == other.address
        assert held["enabled"] is True
        assert configuration["ctk_mod_PORT"] == str(new_port)
        assert os.environ["ctk_mod_PORT"] == str(new_port)  # noqa: SIM112
        assert not accepts(old_port)
        assert echo_round_trip(new_port)[0] == b"ping through the proxy"
        assert other.accepted == 1
        assert echo_server.accepted == 0
    finally:
        other.close()


def test_modify_unknown_proxy_raises_assertion_error(configuration: Configuration, api: httpx.Client) -> None:
    with pytest.raises(AssertionError):
        proxy_actions.modify_proxy("ctk_nobody", enabled=False, configuration=configuration)
    assert api.get("/proxies").json() == {}


def test_disable_and_enable_proxy_keep_the_port(
    configuration: Configuration, api: httpx.Client, echo_server: EchoServer
) -> None:
    port = make_proxy(configuration, echo_server, "ctk_toggle")

    assert proxy_actions.disable_proxy("ctk_toggle", configuration=configuration) is True
    assert api.get("/proxies/ctk_toggle").json()["enabled"] is False
    assert not accepts(port)
    assert configuration["ctk_toggle_PORT"] == str(port)

    assert proxy_actions.enable_proxy("ctk_toggle", configuration=configuration) is True
    assert api.get("/proxies/ctk_toggle").json()["enabled"] is True
    assert configuration["ctk_toggle_PORT"] == str(port)
    assert echo_round_trip(port)[0] == b"ping through the proxy"


ToxicHelper = Callable[..., Any]

HELPERS: list[tuple[str, ToxicHelper, dict[str, int], str, dict[str, int]]] = [
    ("latency", toxic_actions.create_latency_toxic, {"latency": 150, "jitter": 20}, "latency",
     {"latency": 150, "jitter": 20}),
    ("latency_no_jitter", toxic_actions.create_latency_toxic, {"latency": 75}, "latency",
     {"latency": 75, "jitter": 0}),
    ("bandwidth", toxic_actions.create_bandwith_degradation_toxic, {"rate": 64}, "bandwidth", {"rate": 64}),
    ("slow_close", toxic_actions.create_slow_connection_close_toxic, {"delay": 250}, "slow_close",
     {"delay": 250}),
    ("timeout", toxic_actions.create_timeout_toxic, {"timeout": 500}, "timeout", {"timeout": 500}),
    ("slicer", toxic_actions.create_slicer_toxic, {"average_size": 64, "size_variation": 16, "delay": 10},
     "slicer", {"average_size": 64, "size_variation": 16, "delay": 10}),
    ("limiter", toxic_actions.create_limiter_toxic, {"bytes_limit": 4096}, "limit_data", {"bytes": 4096}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("toxic_name", "helper", "kwargs", "toxic_type", "attributes"),
    HELPERS,
    ids=[entry[0] for entry in HELPERS],
)
def test_toxic_helpers_create_downstream_toxics_with_their_attributes(
    configuration: Configuration,
    api: httpx.Client,
    echo_server: EchoServer,
    toxic_name: str,
    helper: ToxicHelper,
    kwargs: dict[str, int],
    toxic_type: str,
    attributes: dict[str, int],
) -> None:
    make_proxy(configuration, echo_server, "ctk_toxic")

    assert helper(for_proxy="ctk_toxic", toxic_name=toxic_name, configuration=configuration, **kwargs) is True

    held = api.get(f"/proxies/ctk_toxic/toxics/{toxic_name}")
    assert held.status_code == 200
    assert held.json() == {
        "name": toxic_name,
        "type": toxic_type,
        "stream": "downstream",
        "toxicity": 1,
        "attributes": attributes,
    }
    assert [toxic["name"] for toxic in api.get("/proxies/ctk_toxic").json()["toxics"]] == [toxic_name]


def test_create_toxic_accepts_integral_float_attributes(
    configuration: Configuration, api: httpx.Client, echo_server: EchoServer
) -> None:
    """Experiment JSON often says ``1000.0``; real Toxiproxy rejects it, this engine takes integral floats."""
    make_proxy(configuration, echo_server, "ctk_float")

    created = toxic_actions.create_toxic(
        for_proxy="ctk_float",
        toxic_name="slow_requests",
        toxic_type="latency",
        stream="upstream",
        toxicity=0.5,
        attributes={"latency": 1000.0, "jitter": 50.0},
        configuration=configuration,
    )

    assert created is True
    held = api.get("/proxies/ctk_float/toxics/slow_requests").json()
    assert held["type"] == "latency"
    assert held["stream"] == "upstream"
    assert held["toxicity"] == 0.5
    assert held["attributes"] == {"latency": 1000, "jitter": 50}
    assert all(type(value) is int for value in held["attributes"].values())


def test_create_toxic_rejects_non_integral_float_attributes(
    configuration: Configuration, api: httpx.Client, echo_server: EchoServer
) -> None:
    """A 400 makes the extension index ``None`` (spec §5.2): TypeError, and nothing is created."""
    make_proxy(configuration, echo_server, "ctk_frac")

    with pytest.raises(TypeError):
        toxic_actions.create_toxic(
            for_proxy="ctk_frac",
            toxic_name="half",
            toxic_type="latency",
            attributes={"latency": 100.5},
            configuration=configuration,
        )
    assert api.get("/proxies/ctk_frac/toxics").json() == []


def test_create_toxic_with_null_attributes_zero_fills_them(
    configuration: Configuration, api: httpx.Client, echo_server: EchoServer
) -> None:
    make_proxy(configuration, echo_server, "ctk_null")

    assert toxic_actions.create_toxic(
        for_proxy="ctk_null", toxic_name="peer", toxic_type="reset_peer", configuration=configuration
    )

    held = api.get("/proxies/ctk_null/toxics/peer").json()
    assert held["type"] == "reset_peer"
    assert held["attributes"] == {"timeout": 0}


def test_latency_toxic_created_by_the_extension_delays_data(
    configuration: Configuration, echo_server: EchoServer
) -> None:
    port = make_proxy(configuration, echo_server, "ctk_slow")
    assert echo_round_trip(port)[1] < 0.2

    toxic_actions.create_latency_toxic("ctk_slow", "lag", latency=300, configuration=configuration)

    received, elapsed = echo_round_trip(port)
    assert received == b"ping through the proxy"
    assert 0.29 <= elapsed < 3.0


def test_delete_toxic(configuration: Configuration, api: httpx.Client, echo_server: EchoServer) -> None:
    make_proxy(configuration, echo_server, "ctk_detox")
    toxic_actions.create_latency_toxic("ctk_detox", "lag", latency=100, configuration=configuration)
    toxic_actions.create_timeout_toxic("ctk_detox", "hole", timeout=0, configuration=configuration)

    assert toxic_actions.delete_toxic("ctk_detox", "lag", configuration=configuration) is True

    assert api.get("/proxies/ctk_detox/toxics/lag").status_code == 404
    assert [toxic["name"] for toxic in api.get("/proxies/ctk_detox/toxics").json()] == ["hole"]
    assert toxic_actions.delete_toxic("ctk_detox", "lag", configuration=configuration) is False


def test_delete_proxy(configuration: Configuration, api: httpx.Client, echo_server: EchoServer) -> None:
    port = make_proxy(configuration, echo_server, "ctk_gone")

    assert proxy_actions.delete_proxy("ctk_gone", configuration=configuration) is None

    assert api.get("/proxies/ctk_gone").status_code == 404
    assert not accepts(port)
    assert probes.proxy_exist("ctk_gone", configuration=configuration) is False
    # Deleting again only logs a warning.
    assert proxy_actions.delete_proxy("ctk_gone", configuration=configuration) is None


def test_reset_enables_every_proxy_and_drops_every_toxic(
    configuration: Configuration, api: httpx.Client, echo_server: EchoServer
) -> None:
    first = make_proxy(configuration, echo_server, "ctk_reset_a")
    second = make_proxy(configuration, echo_server, "ctk_reset_b")
    toxic_actions.create_latency_toxic("ctk_reset_a", "lag", latency=2000, configuration=configuration)
    toxic_actions.create_limiter_toxic("ctk_reset_b", "cap", bytes_limit=1, configuration=configuration)
    proxy_actions.disable_proxy("ctk_reset_b", configuration=configuration)
    assert not accepts(second)

    assert proxy_actions.reset(configuration=configuration) is True

    held = api.get("/proxies").json()
    assert sorted(held) == ["ctk_reset_a", "ctk_reset_b"]
    assert all(proxy["enabled"] is True and proxy["toxics"] == [] for proxy in held.values())
    assert held["ctk_reset_b"]["listen"] == f"127.0.0.1:{second}"
    for port in (first, second):
        received, elapsed = echo_round_trip(port)
        assert received == b"ping through the proxy"
        assert elapsed < 1.5


def test_toxiproxy_url_takes_precedence_over_host_and_port(
    configuration: Configuration, engine: EngineProcess, api: httpx.Client, echo_server: EchoServer
) -> None:
    configuration.update(toxiproxy_url=engine.url, toxiproxy_port=free_port())

    make_proxy(configuration, echo_server, "ctk_url")

    assert api.get("/proxies/ctk_url").status_code == 200
    assert probes.proxy_exist("ctk_url", configuration=configuration) is True
