"""The chaostoxi bridge against a real engine: what chaostoolkit-toxiproxy itself gives, plus its guarantees.

Each mapped function runs twice on the same fresh engine state, once as the real chaostoxi 0.3.1 and
once through `ToxiproxyBridge.call`: the return value, the configuration, the ``<name>_PORT``
variables and the engine's state afterwards (read back over HTTP) must be the same, except that the
bridge's toxics carry its ttl. Then what chaostoxi does not do: `restore` puts the engine back as it
was, a toxic goes away by itself after its ttl, and every call is bounded in time.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import pkgutil
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any

import chaostoxi
import httpx
import pytest
from chaostoxi.proxy import actions as proxy_actions
from chaostoxi.proxy import probes as proxy_probes
from chaostoxi.toxic import actions as toxic_actions

from chaos_service.ctk import toxiproxy
from chaos_service.ctk.toxiproxy import MODULES, ToxiproxyBridge
from chaos_service.sandbox._process import free_port
from tests.compat import bounded_requests
from tests.support.engine import EchoServer, EngineProcess

CHAOSTOXI: dict[str, ModuleType] = {
    "chaostoxi.proxy.actions": proxy_actions,
    "chaostoxi.proxy.probes": proxy_probes,
    "chaostoxi.toxic.actions": toxic_actions,
}
PROXY, TOXIC, PROBE = "chaostoxi.proxy.actions", "chaostoxi.toxic.actions", "chaostoxi.proxy.probes"
TTL = 60.0
#: Stands for the test's fixed listen port in arguments (the port is only known at run time).
LISTEN = "<listen port>"
#: The toxic a setup puts on proxy ``p`` (created without a ttl, as by someone else).
KEPT = {"name": "kept", "type": "latency", "attributes": {"latency": 5, "jitter": 0}}


@dataclass
class Twin:
    """One engine state built twice, for chaostoxi and for the bridge."""

    api: httpx.Client
    echo: EchoServer
    url: str
    listen_port: int

    def config(self) -> dict[str, Any]:
        host, port = self.url.removeprefix("http://").split(":")
        return {"toxiproxy_host": host, "toxiproxy_port": int(port)}

    def prepare(self, setup: str) -> None:
        """``empty``; ``proxy``: proxy ``p`` to the echo server; ``disabled``; ``toxic``: ``p`` with toxic ``kept``."""
        for name in self.api.get("/proxies").json():
            self.api.delete(f"/proxies/{name}")
        for name in ("p_PORT", "made_PORT"):
            os.environ.pop(name, None)
        if setup == "empty":
            return
        body = {"name": "p", "listen": f"127.0.0.1:{self.listen_port}", "upstream": self.echo.address}
        assert self.api.post("/proxies", json={**body, "enabled": setup != "disabled"}).status_code == 201
        if setup == "toxic":
            assert self.api.post("/proxies/p/toxics", json=KEPT).status_code == 200

    def arguments(self, arguments: dict[str, Any]) -> dict[str, Any]:
        return {key: self.listen_port if value == LISTEN else value for key, value in arguments.items()}

    def state(self) -> tuple[dict[str, Any], dict[str, float]]:
        """Every proxy without its toxics' ttl fields, and the ttl of each toxic that has one."""
        proxies = self.api.get("/proxies").json()
        ttls = {}
        for proxy in proxies.values():
            for toxic in proxy["toxics"]:
                expires_in = toxic.pop("expires_in", None)
                if (ttl := toxic.pop("ttl", None)) is not None:
                    assert 0 < expires_in <= ttl
                    ttls[f"{proxy['name']}/{toxic['name']}"] = ttl
        return proxies, ttls


@pytest.fixture
def twin(engine: EngineProcess, api: httpx.Client, echo_server: EchoServer, monkeypatch: pytest.MonkeyPatch) -> Twin:
    bounded_requests(monkeypatch)
    for name in ("p_PORT", "made_PORT"):  # chaostoxi sets them: monkeypatch puts them back after the test
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BRIDGE_UPSTREAM_HOST", "127.0.0.1")
    monkeypatch.setenv("BRIDGE_UPSTREAM_PORT", str(echo_server.port))
    return Twin(api, echo_server, engine.url, free_port())


@pytest.fixture
def bridge(engine: EngineProcess) -> ToxiproxyBridge:
    return ToxiproxyBridge(engine.url, ttl=TTL)


class Recorder:
    """A Toxiproxy look-alike on 127.0.0.1: keeps every JSON body posted and answers it back without ``ttl``."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                recorder.bodies.append(body)
                raw = json.dumps({key: value for key, value in body.items() if key != "ttl"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    yield server
    server.close()


def ports() -> dict[str, str]:
    return {name: os.environ[name] for name in ("p_PORT", "made_PORT") if name in os.environ}


SAME = [
    ("empty", PROXY, "create_proxy", {
        "proxy_name": "made", "upstream_host": "env:BRIDGE_UPSTREAM_HOST", "upstream_port": "env:BRIDGE_UPSTREAM_PORT",
        "listen_host": "127.0.0.1", "listen_port": LISTEN,
    }),
    ("empty", PROXY, "create_proxy", {
        "proxy_name": "made", "upstream_host": "127.0.0.1", "upstream_port": 9, "listen_host": "127.0.0.1",
        "listen_port": LISTEN, "enabled": False,
    }),
    ("proxy", PROXY, "modify_proxy", {"proxy_name": "p", "upstream_address": "127.0.0.1:9", "enabled": False}),
    ("proxy", PROXY, "disable_proxy", {"proxy_name": "p"}),
    ("disabled", PROXY, "enable_proxy", {"proxy_name": "p"}),
    ("toxic", PROXY, "delete_proxy", {"proxy_name": "p"}),
    ("empty", PROXY, "delete_proxy", {"proxy_name": "absent"}),
    ("toxic", PROXY, "reset", {}),
    ("proxy", PROBE, "proxy_exist", {"proxy_name": "p"}),
    ("proxy", PROBE, "proxy_exist", {"proxy_name": "absent"}),
    ("toxic", PROBE, "get_proxy_attribute", {"proxy_name": "p", "attribute": "toxics"}),
    ("disabled", PROBE, "get_proxy_attribute", {"proxy_name": "p", "attribute": "enabled"}),
    ("empty", PROBE, "get_proxy_attribute", {"proxy_name": "absent", "attribute": "upstream"}),
    ("proxy", TOXIC, "create_toxic", {
        "for_proxy": "p", "toxic_name": "rst", "toxic_type": "reset_peer", "stream": "upstream", "toxicity": 0.5,
        "attributes": {"timeout": 10},
    }),
    ("proxy", TOXIC, "create_toxic", {"for_proxy": "p", "toxic_name": "nothing", "toxic_type": "noop"}),
    ("toxic", TOXIC, "create_latency_toxic", {"for_proxy": "p", "toxic_name": "lat", "latency": 100, "jitter": 10}),
    ("proxy", TOXIC, "create_latency_toxic", {"for_proxy": "p", "toxic_name": "lat", "latency": 100}),
    ("proxy", TOXIC, "create_bandwith_degradation_toxic", {"for_proxy": "p", "toxic_name": "bw", "rate": 100}),
    ("proxy", TOXIC, "create_slow_connection_close_toxic", {"for_proxy": "p", "toxic_name": "sc", "delay": 10}),
    ("proxy", TOXIC, "create_timeout_toxic", {"for_proxy": "p", "toxic_name": "to", "timeout": 0}),
    ("proxy", TOXIC, "create_slicer_toxic", {
        "for_proxy": "p", "toxic_name": "sl", "average_size": 10, "size_variation": 2, "delay": 5,
    }),
    ("proxy", TOXIC, "create_limiter_toxic", {"for_proxy": "p", "toxic_name": "lim", "bytes_limit": 100}),
    ("toxic", TOXIC, "delete_toxic", {"for_proxy": "p", "toxic_name": "kept"}),
    ("toxic", TOXIC, "delete_toxic", {"for_proxy": "p", "toxic_name": "absent"}),
]  # fmt: skip


@pytest.mark.parametrize(("setup", "module", "func", "arguments"), SAME, ids=[f"{c[2]}-{c[0]}" for c in SAME])
def test_same_result_and_engine_state_as_chaostoxi(
    twin: Twin, setup: str, module: str, func: str, arguments: dict[str, Any]
) -> None:
    twin.prepare(setup)
    real_config = twin.config()
    expected = getattr(CHAOSTOXI[module], func)(**twin.arguments(arguments), configuration=real_config)
    (expected_state, real_ttls), expected_ports = twin.state(), ports()

    twin.prepare(setup)
    bridge = ToxiproxyBridge("http://127.0.0.1:9", ttl=TTL)  # the configuration names the engine
    our_config = twin.config()
    got = bridge.call(module, func, twin.arguments(arguments), our_config)
    state, ttls = twin.state()

    assert got == expected
    assert state == expected_state
    assert our_config == real_config
    assert ports() == expected_ports
    assert real_ttls == {}
    created = {f"p/{arguments['toxic_name']}"} if func.startswith("create_") and "toxic" in func else set()
    assert ttls == dict.fromkeys(created, TTL)


FAIL_ALIKE = [
    ("proxy", PROXY, "create_proxy", {"proxy_name": "p", "upstream_host": "127.0.0.1", "upstream_port": 9},
     AssertionError, AssertionError, "proxy already exists"),
    ("empty", PROXY, "create_proxy", {"proxy_name": "made", "upstream_host": "env:BRIDGE_UNSET", "upstream_port": 9},
     KeyError, KeyError, "BRIDGE_UNSET is not set"),
    ("empty", PROXY, "disable_proxy", {"proxy_name": "absent"}, AssertionError, AssertionError, "proxy not found"),
    ("proxy", PROBE, "get_proxy_attribute", {"proxy_name": "p", "attribute": "colour"},
     KeyError, KeyError, "no attribute 'colour'"),
    # chaostoxi fails on None["name"]; the bridge says why
    ("empty", TOXIC, "create_latency_toxic", {"for_proxy": "absent", "toxic_name": "lat", "latency": 1},
     TypeError, RuntimeError, "404 proxy not found"),
    ("toxic", TOXIC, "create_toxic", {"for_proxy": "p", "toxic_name": "kept", "toxic_type": "noop"},
     TypeError, RuntimeError, "409 toxic already exists"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("setup", "module", "func", "arguments", "real_error", "our_error", "message"),
    FAIL_ALIKE,
    ids=[f"{c[2]}-{c[0]}" for c in FAIL_ALIKE],
)
def test_fails_where_chaostoxi_fails(
    twin: Twin,
    setup: str,
    module: str,
    func: str,
    arguments: dict[str, Any],
    real_error: type[Exception],
    our_error: type[Exception],
    message: str,
) -> None:
    twin.prepare(setup)
    with pytest.raises(real_error):
        getattr(CHAOSTOXI[module], func)(**arguments, configuration=twin.config())
    expected_state = twin.state()

    twin.prepare(setup)
    bridge = ToxiproxyBridge(twin.url, ttl=TTL)
    with pytest.raises(our_error, match=message):
        bridge.call(module, func, arguments, twin.config())
    assert twin.state() == expected_state
    assert bridge.restore() == []


def test_maps_every_chaostoxi_module_and_function_with_its_signature() -> None:
    modules = {
        info.name
        for info in pkgutil.walk_packages(chaostoxi.__path__, prefix="chaostoxi.")
        if info.name.rsplit(".", 1)[-1] in ("actions", "probes")
    }
    assert modules == MODULES == set(CHAOSTOXI)
    for module, real in CHAOSTOXI.items():
        assert toxiproxy.functions(module) == list(real.__all__)
        for func in real.__all__:
            ours = toxiproxy.function(module, func)
            assert ours is not None
            expected = [(p.name, p.default, p.kind) for p in inspect.signature(getattr(real, func)).parameters.values()]
            assert [(p.name, p.default, p.kind) for p in inspect.signature(ours).parameters.values()] == expected
    assert toxiproxy.function(PROXY, "value_from_environment_if_exists") is None
    assert toxiproxy.function("chaostoxi.toxiproxyapi", "create_proxy") is None
    assert toxiproxy.functions("chaostoxi.toxiproxyapi") == []


def test_an_unknown_function_or_module_is_refused_with_what_exists(bridge: ToxiproxyBridge) -> None:
    with pytest.raises(ValueError, match=r"chaostoxi\.toxic\.actions has no function 'create_down_toxic' \(it has "):
        bridge.call(TOXIC, "create_down_toxic", {}, {})
    with pytest.raises(ValueError, match="create_proxy, disable_proxy"):
        bridge.call(PROXY, "restore", {}, {})
    with pytest.raises(ValueError, match=r"chaostoxi\.toxic\.probes is not a chaostoxi module run here"):
        bridge.call("chaostoxi.toxic.probes", "toxic_exist", {}, {})


def test_restore_puts_the_engine_back_as_it_was(twin: Twin, bridge: ToxiproxyBridge) -> None:
    twin.prepare("toxic")
    q = {"name": "q", "listen": "127.0.0.1:0", "upstream": twin.echo.address}
    assert twin.api.post("/proxies", json=q).status_code == 201
    before = twin.api.get("/proxies").json()

    def call(module: str, func: str, **arguments: Any) -> Any:
        return bridge.call(module, func, arguments, {})

    made = {"upstream_host": "127.0.0.1", "upstream_port": twin.echo.port, "listen_host": "127.0.0.1"}
    assert call(PROXY, "create_proxy", proxy_name="made", **made)
    assert call(TOXIC, "create_latency_toxic", for_proxy="made", toxic_name="lat", latency=100)
    assert call(PROXY, "disable_proxy", proxy_name="p")
    assert call(TOXIC, "create_timeout_toxic", for_proxy="p", toxic_name="hole", timeout=0)
    assert call(PROXY, "modify_proxy", proxy_name="q", upstream_address="127.0.0.1:9")
    assert call(PROXY, "modify_proxy", proxy_name="q", upstream_address="127.0.0.1:10")
    assert call(TOXIC, "create_slicer_toxic", for_proxy="q", toxic_name="sl", average_size=1, size_variation=0, delay=1)
    assert call(TOXIC, "delete_toxic", for_proxy="q", toxic_name="sl")  # already undone: nothing to say
    assert twin.api.get("/proxies").json() != before

    assert bridge.restore() == [
        f"put back proxy 'q' (upstream {twin.echo.address})",
        "removed toxic 'hole' from proxy 'p'",
        "put back proxy 'p' (enabled)",
        "deleted proxy 'made'",
    ]
    assert twin.api.get("/proxies").json() == before
    assert bridge.restore() == []


def test_restore_leaves_alone_what_the_experiment_already_put_back(twin: Twin, bridge: ToxiproxyBridge) -> None:
    twin.prepare("proxy")
    before = twin.api.get("/proxies").json()
    made = {"proxy_name": "made", "upstream_host": "127.0.0.1", "upstream_port": 9, "listen_host": "127.0.0.1"}
    bridge.call(PROXY, "create_proxy", made, {})
    bridge.call(PROXY, "delete_proxy", {"proxy_name": "made"}, {})
    bridge.call(PROXY, "disable_proxy", {"proxy_name": "p"}, {})
    bridge.call(PROXY, "enable_proxy", {"proxy_name": "p"}, {})
    bridge.call(TOXIC, "create_latency_toxic", {"for_proxy": "p", "toxic_name": "lat", "latency": 10}, {})
    bridge.call(PROXY, "disable_proxy", {"proxy_name": "p"}, {})
    assert bridge.call(PROXY, "reset", {}, {}) is True

    assert bridge.restore() == []
    assert twin.api.get("/proxies").json() == before


def test_restore_reports_what_it_could_not_put_back(twin: Twin, recorder: Recorder) -> None:
    twin.prepare("proxy")
    bridge = ToxiproxyBridge(twin.url, ttl=TTL)
    elsewhere = {"toxiproxy_url": recorder.url}
    assert bridge.call(TOXIC, "create_latency_toxic", {"for_proxy": "p", "toxic_name": "lat", "latency": 10}, elsewhere)
    assert bridge.call(PROXY, "disable_proxy", {"proxy_name": "p"}, {})
    recorder.close()  # that Toxiproxy has gone away since

    lines = bridge.restore()

    assert lines[0] == "put back proxy 'p' (enabled)"
    assert lines[1].startswith("could not remove toxic 'lat' from proxy 'p': RuntimeError: Toxiproxy API ")
    assert lines[1].endswith(f" at {recorder.url}")
    assert len(lines) == 2


def test_a_toxic_goes_away_by_itself_after_the_ttl(twin: Twin, engine: EngineProcess) -> None:
    twin.prepare("proxy")
    bridge = ToxiproxyBridge(engine.url, ttl=0.5)
    assert bridge.call(TOXIC, "create_latency_toxic", {"for_proxy": "p", "toxic_name": "lat", "latency": 10}, {})
    assert twin.api.get("/proxies/p/toxics/lat").json()["ttl"] == 0.5

    deadline = time.monotonic() + 5.0
    while twin.api.get("/proxies/p/toxics/lat").status_code == 200:
        assert time.monotonic() < deadline, "the toxic outlived its ttl"
        time.sleep(0.05)
    assert twin.api.get("/proxies/p").json()["toxics"] == []
    assert bridge.restore() == []


@pytest.mark.parametrize(
    ("configuration", "expected"),
    [
        ({}, "http://127.0.0.1:8474"),
        ({"toxiproxy_url": "http://toxiproxy:9000/"}, "http://toxiproxy:9000"),
        ({"toxiproxy_url": "http://a:1", "toxiproxy_host": "b", "toxiproxy_port": 2}, "http://a:1"),
        ({"toxiproxy_host": "toxiproxy"}, "http://toxiproxy:8474"),
        ({"toxiproxy_host": "toxiproxy", "toxiproxy_port": "8666"}, "http://toxiproxy:8666"),
        ({"toxiproxy_port": 8666}, "http://127.0.0.1:8666"),
        ({"toxiproxy_url": "", "toxiproxy_host": None}, "http://127.0.0.1:8474"),
    ],
)
def test_base_url_as_chaostoxi_computes_it_else_the_default(configuration: dict[str, Any], expected: str) -> None:
    assert ToxiproxyBridge("http://127.0.0.1:8474/", ttl=TTL).base_url(configuration) == expected


def test_the_configuration_overrides_the_default_url(twin: Twin, engine: EngineProcess) -> None:
    twin.prepare("proxy")
    nowhere = f"http://127.0.0.1:{free_port()}"
    bridge = ToxiproxyBridge(nowhere, ttl=TTL)
    host_port = twin.config()
    port_only = {"toxiproxy_port": host_port["toxiproxy_port"]}

    assert bridge.call(PROBE, "proxy_exist", {"proxy_name": "p"}, {"toxiproxy_url": engine.url}) is True
    assert bridge.call(PROBE, "proxy_exist", {"proxy_name": "p"}, host_port) is True
    assert bridge.call(PROBE, "proxy_exist", {"proxy_name": "p"}, port_only) is True
    assert bridge.call(PROXY, "disable_proxy", {"proxy_name": "p"}, host_port)
    with pytest.raises(RuntimeError, match=re.escape(f"Toxiproxy API {nowhere} did not answer GET /proxies/p")):
        bridge.call(PROBE, "proxy_exist", {"proxy_name": "p"}, {})

    assert bridge.restore() == [f"put back proxy 'p' (enabled) at {engine.url}"]
    assert twin.api.get("/proxies/p").json()["enabled"] is True


def test_an_unreachable_toxiproxy_fails_quickly_and_clearly(caplog: pytest.LogCaptureFixture) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    bridge = ToxiproxyBridge(nowhere, ttl=TTL)
    started = time.monotonic()
    with pytest.raises(
        RuntimeError, match=re.escape(f"Toxiproxy API {nowhere} did not answer POST /reset: ConnectError")
    ):
        bridge.call(PROXY, "reset", {}, {})
    with pytest.raises(RuntimeError, match="did not answer POST /proxies/p/toxics"):
        bridge.call(TOXIC, "create_timeout_toxic", {"for_proxy": "p", "toxic_name": "t", "timeout": 0}, {})
    with caplog.at_level(logging.WARNING, logger=toxiproxy.__name__):
        assert bridge.call(PROXY, "delete_proxy", {"proxy_name": "p"}, {}) is None  # chaostoxi only logs
    assert time.monotonic() - started < 2.0
    assert "Unable to remove proxy p" in caplog.text
    assert bridge.restore() == []


def test_whole_float_attributes_are_sent_as_integers_with_the_ttl(recorder: Recorder) -> None:
    bridge = ToxiproxyBridge("http://127.0.0.1:9", ttl=TTL)
    configuration = {"toxiproxy_url": recorder.url}
    arguments = {"for_proxy": "p", "toxic_name": "lat", "latency": 1000.0, "jitter": 0.0}
    assert bridge.call(TOXIC, "create_latency_toxic", arguments, configuration) is True
    bw = {"for_proxy": "p", "toxic_name": "half", "toxic_type": "bandwidth", "toxicity": 0.5}
    assert bridge.call(TOXIC, "create_toxic", {**bw, "attributes": {"rate": 10.0, "note": 1.5}}, configuration)

    latency, bandwidth = recorder.bodies
    assert latency == {
        "name": "lat",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
        "attributes": {"latency": 1000, "jitter": 0},
        "ttl": TTL,
    }
    assert [type(value) for value in latency["attributes"].values()] == [int, int]
    assert bandwidth["attributes"] == {"rate": 10, "note": 1.5}
    assert type(bandwidth["attributes"]["rate"]) is int


def test_float_values_work_against_the_engine(twin: Twin, bridge: ToxiproxyBridge) -> None:
    twin.prepare("empty")
    made = {"proxy_name": "made", "upstream_host": "127.0.0.1", "upstream_port": float(twin.echo.port)}
    assert bridge.call(PROXY, "create_proxy", {**made, "listen_host": "127.0.0.1"}, {})
    assert twin.api.get("/proxies/made").json()["upstream"] == twin.echo.address
    assert bridge.call(
        TOXIC, "create_bandwith_degradation_toxic", {"for_proxy": "made", "toxic_name": "bw", "rate": 1e3}, {}
    )
    assert twin.api.get("/proxies/made/toxics/bw").json()["attributes"] == {"rate": 1000}
