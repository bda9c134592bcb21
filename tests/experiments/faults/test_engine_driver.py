"""The engine driver against a real engine: toxics of every protocol, partition, down, ttl, stats."""

from __future__ import annotations

import re
import socket
import time
from typing import Any

import httpx
import pytest

from chaos_service.experiments.faults import EngineFaultDriver, FaultError, FaultTargetError
from chaos_service.experiments.faults.engine import COMPOSITE_FAULTS, PROTOCOL_TOXICS
from chaos_service.sandbox.environment import Environment
from tests.experiments.faults.conftest import ProxyFactory
from tests.experiments.faults.support import environment, fault, run
from tests.support.engine import EchoServer, EngineProcess

#: One valid fault of every toxic type the engine has: (protocol, type, stream, attributes).
EVERY_TOXIC: list[tuple[str, str, str, dict[str, Any]]] = [
    ("tcp", "latency", "downstream", {"latency": 100, "jitter": 10}),
    ("tcp", "latency", "upstream", {"latency": 100}),
    ("tcp", "bandwidth", "downstream", {"rate": 100}),
    ("tcp", "slow_close", "downstream", {"delay": 10}),
    ("tcp", "timeout", "upstream", {"timeout": 100}),
    ("tcp", "reset_peer", "downstream", {"timeout": 10}),
    ("tcp", "slicer", "downstream", {"average_size": 10, "size_variation": 2, "delay": 10}),
    ("tcp", "limit_data", "downstream", {"bytes": 100}),
    ("tcp", "noop", "downstream", {}),
    ("http", "http_error", "downstream", {"status": 429, "retry_after": 2}),
    ("http", "http_delay", "downstream", {"delay": 100}),
    ("http", "sse_delay", "downstream", {"delay": 10}),
    ("http", "sse_cut", "downstream", {"after": 2, "mode": "reset"}),
    ("http", "sse_stall", "downstream", {"after": 1, "duration": 100}),
    ("http", "sse_error", "downstream", {"after": 1}),
    ("http", "sse_malformed", "downstream", {"after": 1}),
    ("http", "fail_attempts", "downstream", {"attempts": 2}),
    ("websocket", "ws_drop", "downstream", {"field": "type", "value": "agent_thinking"}),
    ("websocket", "ws_delay", "upstream", {"delay": 10}),
    ("websocket", "ws_duplicate", "downstream", {"copies": 2}),
    ("websocket", "ws_reorder", "downstream", {"window": 3}),
    ("websocket", "ws_close", "downstream", {"after": 1, "code": 1011}),
    ("websocket", "ws_refuse", "downstream", {"status": 503}),
]


def test_the_table_covers_every_toxic_type_of_every_protocol() -> None:
    covered = {(protocol, kind) for protocol, kind, _, _ in EVERY_TOXIC}
    assert covered == {(protocol, kind) for protocol, kinds in PROTOCOL_TOXICS.items() for kind in kinds}


def _toxics(api: httpx.Client, proxy: str) -> list[dict[str, Any]]:
    response = api.get(f"/proxies/{proxy}/toxics")
    assert response.status_code == 200
    toxics: list[dict[str, Any]] = response.json()
    return toxics


def _driver(engine: EngineProcess, make_proxy: ProxyFactory, upstream: str, protocol: str = "tcp") -> Environment:
    return environment(engine.url, {"p": make_proxy("p", upstream, protocol)})


@pytest.mark.parametrize(("protocol", "kind", "stream", "attributes"), EVERY_TOXIC)
def test_every_toxic_is_applied_with_its_ttl_and_removed(
    api: httpx.Client,
    engine: EngineProcess,
    make_proxy: ProxyFactory,
    echo_server: EchoServer,
    protocol: str,
    kind: str,
    stream: str,
    attributes: dict[str, Any],
) -> None:
    driver = EngineFaultDriver(_driver(engine, make_proxy, echo_server.address, protocol))
    plan = fault(kind, "p", stream=stream, toxicity=0.5, attributes=attributes)
    assert driver.handles(plan)
    run(driver.check(plan))
    assert _toxics(api, "p") == []  # check changes nothing

    applied = run(driver.apply(plan, ttl=30))
    [toxic] = _toxics(api, "p")
    assert toxic["name"] == f"chaos-f1-{stream}" == applied.handle["toxics"][0]
    assert (toxic["type"], toxic["stream"], toxic["toxicity"], toxic["ttl"]) == (kind, stream, 0.5, 30)
    assert toxic["attributes"].items() >= attributes.items()
    assert applied.expires_at - applied.applied_at >= 30
    assert (applied.driver, applied.target, applied.kind) == ("engine", "p", kind)

    run(driver.remove(applied))
    assert _toxics(api, "p") == []


@pytest.mark.parametrize("kind", sorted(COMPOSITE_FAULTS))
def test_partition_and_down_are_toxics_on_both_streams_with_the_ttl(
    api: httpx.Client, engine: EngineProcess, make_proxy: ProxyFactory, echo_server: EchoServer, kind: str
) -> None:
    driver = EngineFaultDriver(_driver(engine, make_proxy, echo_server.address))
    applied = run(driver.apply(fault(kind, "p", name="cut"), ttl=20))
    toxics = {t["stream"]: t for t in _toxics(api, "p")}
    assert set(toxics) == {"upstream", "downstream"}
    expected_type, expected_attributes = COMPOSITE_FAULTS[kind]
    for stream, toxic in toxics.items():
        assert toxic["name"] == f"chaos-cut-{stream}"
        assert (toxic["type"], toxic["attributes"], toxic["ttl"]) == (expected_type, expected_attributes, 20)
    run(driver.remove(applied))
    assert _toxics(api, "p") == []


def _connect(address: str) -> socket.socket:
    host, port = address.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.settimeout(5)
    return sock


def _echoes(sock: socket.socket, data: bytes = b"ping") -> bool:
    sock.sendall(data)
    return sock.recv(100) == data


def test_a_partition_black_holes_traffic_until_it_is_removed(
    engine: EngineProcess, make_proxy: ProxyFactory, echo_server: EchoServer
) -> None:
    env = _driver(engine, make_proxy, echo_server.address)
    listen = env.proxies["p"].listen
    driver = EngineFaultDriver(env)
    with _connect(listen) as before:
        assert _echoes(before)
        applied = run(driver.apply(fault("partition", "p"), ttl=30))
        with _connect(listen) as during:  # accepted, then nothing comes back
            during.sendall(b"lost")
            before.sendall(b"lost too")
            for sock in (during, before):
                sock.settimeout(0.5)
                with pytest.raises(TimeoutError):
                    sock.recv(100)
            evidence = run(driver.verify(applied))
            assert evidence is not None and "chaos-f1-upstream: fired" in evidence
            run(driver.remove(applied))
            for sock in (during, before):  # the black hole closes the connections it held
                sock.settimeout(5)
                assert sock.recv(100) == b""
    with _connect(listen) as after:
        assert _echoes(after)


def test_down_resets_connections_until_it_is_removed(
    engine: EngineProcess, make_proxy: ProxyFactory, echo_server: EchoServer
) -> None:
    env = _driver(engine, make_proxy, echo_server.address)
    driver = EngineFaultDriver(env)
    applied = run(driver.apply(fault("down", "p"), ttl=30))
    with _connect(env.proxies["p"].listen) as sock, pytest.raises(ConnectionResetError):
        sock.sendall(b"hello")
        sock.recv(100)
    assert run(driver.verify(applied)) is not None
    run(driver.remove(applied))
    with _connect(env.proxies["p"].listen) as sock:
        assert _echoes(sock)


def test_verify_reports_fired_counts_after_traffic_and_only_since_the_fault_was_applied(
    engine: EngineProcess, make_proxy: ProxyFactory, echo_server: EchoServer
) -> None:
    env = _driver(engine, make_proxy, echo_server.address)
    driver = EngineFaultDriver(env)
    plan = fault("latency", "p", attributes={"latency": 1})
    applied = run(driver.apply(plan, ttl=30))
    assert run(driver.verify(applied)) is None  # no traffic yet
    for _ in range(2):
        with _connect(env.proxies["p"].listen) as sock:
            assert _echoes(sock)
    assert run(driver.verify(applied)) == "chaos-f1-downstream: fired 2"
    run(driver.remove(applied))

    again = run(driver.apply(plan, ttl=30))  # same toxic name: the engine's count goes on
    assert run(driver.verify(again)) is None
    with _connect(env.proxies["p"].listen) as sock:
        assert _echoes(sock)
    assert run(driver.verify(again)) == "chaos-f1-downstream: fired 1"
    run(driver.remove(again))


def test_verify_reports_http_toxics_firing_on_requests(engine: EngineProcess, make_proxy: ProxyFactory) -> None:
    env = environment(engine.url, {"llm": make_proxy("llm", "127.0.0.1:9", "http")})
    driver = EngineFaultDriver(env, run_id="run 7")
    applied = run(driver.apply(fault("http_error", "llm", attributes={"status": 503}), ttl=30))
    assert applied.handle["toxics"] == ["chaos-run_7-f1-downstream"]
    with httpx.Client(trust_env=False) as client:
        for _ in range(3):
            assert client.get(f"http://{env.proxies['llm'].listen}/v1/models").status_code == 503
    assert run(driver.verify(applied)) == "chaos-run_7-f1-downstream: fired 3"
    run(driver.remove(applied))


def test_a_toxic_disappears_by_itself_when_its_ttl_expires(
    api: httpx.Client, engine: EngineProcess, make_proxy: ProxyFactory, echo_server: EchoServer
) -> None:
    driver = EngineFaultDriver(_driver(engine, make_proxy, echo_server.address))
    applied = run(driver.apply(fault("partition", "p"), ttl=1))
    assert len(_toxics(api, "p")) == 2
    deadline = time.monotonic() + 10
    while _toxics(api, "p"):  # no event to await: the engine's timer
        assert time.monotonic() < deadline, "the partition outlived its ttl"
    assert time.monotonic() >= applied.applied_at + 0.9
    run(driver.remove(applied))  # already gone: fine


def test_removing_twice_or_after_the_proxy_is_gone_is_fine(
    api: httpx.Client, engine: EngineProcess, make_proxy: ProxyFactory, echo_server: EchoServer
) -> None:
    driver = EngineFaultDriver(_driver(engine, make_proxy, echo_server.address))
    applied = run(driver.apply(fault("latency", "p"), ttl=30))
    run(driver.remove(applied))
    run(driver.remove(applied))
    again = run(driver.apply(fault("latency", "p"), ttl=30))
    assert api.delete("/proxies/p").status_code == 204
    run(driver.remove(again))


def test_applying_the_same_fault_twice_is_refused_and_leaves_the_first(
    api: httpx.Client, engine: EngineProcess, make_proxy: ProxyFactory, echo_server: EchoServer
) -> None:
    driver = EngineFaultDriver(_driver(engine, make_proxy, echo_server.address))
    applied = run(driver.apply(fault("partition", "p"), ttl=30))
    with pytest.raises(FaultError, match="already has a toxic named 'chaos-f1-upstream'"):
        run(driver.apply(fault("partition", "p"), ttl=30))
    assert len(_toxics(api, "p")) == 2
    run(driver.remove(applied))


def test_a_half_applied_partition_is_rolled_back_and_leaves_the_other_toxic_alone(
    api: httpx.Client, engine: EngineProcess, make_proxy: ProxyFactory, echo_server: EchoServer
) -> None:
    driver = EngineFaultDriver(_driver(engine, make_proxy, echo_server.address))
    theirs = {"name": "chaos-f1-downstream", "type": "noop", "stream": "downstream"}
    assert api.post("/proxies/p/toxics", json=theirs).status_code == 200
    with pytest.raises(FaultError, match="already has a toxic named 'chaos-f1-downstream'"):
        run(driver.apply(fault("partition", "p"), ttl=30))
    assert [t["name"] for t in _toxics(api, "p")] == ["chaos-f1-downstream"]


@pytest.mark.parametrize(
    ("kind", "protocol", "fields", "message"),
    [
        ("http_error", "tcp", {}, r"http_error is a toxic of http proxies; tcp proxies take bandwidth, .*partition"),
        ("ws_drop", "http", {}, "ws_drop is a toxic of websocket proxies; http proxies take fail_attempts"),
        ("latency", "websocket", {}, "latency is a toxic of tcp proxies"),
        ("partition", "http", {}, "partition works on tcp proxies only"),
        ("down", "websocket", {}, "down works on tcp proxies only"),
        ("sse_delay", "http", {"stream": "upstream"}, "stream 'upstream' is not valid here .*'downstream'"),
        ("latency", "tcp", {"stream": "sideways"}, "stream 'sideways' is not valid"),
        ("latency", "tcp", {"attributes": {"latencyy": 5}}, "latencyy"),
        ("latency", "tcp", {"attributes": {"latency": -1}}, "'latency' of toxic type latency must be an integer >= 0"),
        ("latency", "tcp", {"toxicity": 1.5}, "toxicity must be between 0 and 1"),
        ("partition", "tcp", {"attributes": {"timeout": 5}}, "partition takes no attributes"),
    ],
)
def test_a_fault_that_does_not_fit_its_proxy_is_a_clear_check_error(
    api: httpx.Client,
    engine: EngineProcess,
    make_proxy: ProxyFactory,
    echo_server: EchoServer,
    kind: str,
    protocol: str,
    fields: dict[str, Any],
    message: str,
) -> None:
    driver = EngineFaultDriver(_driver(engine, make_proxy, echo_server.address, protocol))
    plan = fault(kind, "p", **fields)
    with pytest.raises(FaultTargetError, match=message) as error:
        run(driver.check(plan))
    assert f"proxy 'p' ({protocol})" in str(error.value)
    with pytest.raises(FaultTargetError, match=message):
        run(driver.apply(plan, ttl=30))
    assert _toxics(api, "p") == []


def test_unknown_proxies_and_an_unreachable_engine_are_clear_check_errors(
    engine: EngineProcess, make_proxy: ProxyFactory, echo_server: EchoServer
) -> None:
    env = _driver(engine, make_proxy, echo_server.address)
    driver = EngineFaultDriver(env)
    with pytest.raises(FaultTargetError, match=r"unknown proxy 'redis' \(the environment's proxies: p\)"):
        run(driver.check(fault("latency", "redis")))

    stale = environment(engine.url, {**env.proxies, "gone": env.proxies["p"]})
    with pytest.raises(FaultTargetError, match="proxy 'gone' does not exist on the engine"):
        run(EngineFaultDriver(stale).check(fault("latency", "gone")))

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed_port = unused.getsockname()[1]
    nowhere = environment(f"http://127.0.0.1:{closed_port}", env.proxies)
    with pytest.raises(FaultTargetError, match=f"the engine is unreachable at http://127.0.0.1:{closed_port}"):
        run(EngineFaultDriver(nowhere).check(fault("latency", "p")))


def test_evidence_asked_again_after_removal_counts_every_firing(
    engine: EngineProcess, make_proxy: ProxyFactory, echo_server: EchoServer
) -> None:
    env = _driver(engine, make_proxy, echo_server.address)
    driver = EngineFaultDriver(env)
    applied = run(driver.apply(fault("latency", "p", attributes={"latency": 1}, stream="upstream"), ttl=30))
    with _connect(env.proxies["p"].listen) as sock:
        assert _echoes(sock)
    live = run(driver.verify(applied))
    with _connect(env.proxies["p"].listen) as sock:  # the toxic fires again after the live check
        assert _echoes(sock)
    run(driver.remove(applied))
    final = run(driver.verify(applied))
    assert live is not None and final is not None
    assert _fired(final) > _fired(live) >= 1, (live, final)


def _fired(evidence: str) -> int:
    return sum(int(count) for count in re.findall(r"fired (\d+)", evidence))
