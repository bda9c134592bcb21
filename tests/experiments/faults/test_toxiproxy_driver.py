"""tcp faults through a real Toxiproxy: routed by proxy, plain v2 API only, bounded without a ttl.

A second engine stands in for Toxiproxy (see `tests.support.toxiproxy`); the driver sends it no
``ttl``, so every toxic there stays until this service removes it — by `remove`, by the watchdog
at the deadline, or by the control plane's expiry sweep.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chaos_service.control.reconciler import remove_overdue
from chaos_service.control.store import open_store
from chaos_service.experiments.faults import FaultTargetError, driver_for, drivers_for
from chaos_service.experiments.faults.toxiproxy import ToxiproxyFaultDriver
from chaos_service.experiments.loader import parse_experiment
from chaos_service.experiments.runner import ExperimentRunner
from chaos_service.sandbox.datastores import RedisServer
from chaos_service.sandbox.environment import Environment, Proxy
from tests.experiments.faults.support import environment, fault, live_restore_watchdogs, run
from tests.support.datastores import ExternalServer
from tests.support.engine import EchoServer, EngineProcess
from tests.support.toxiproxy import ToxiproxyStandIn

WAIT = 10.0


@pytest.fixture
def tp(toxiproxy: ToxiproxyStandIn) -> Iterator[httpx.Client]:
    """A client for the stand-in's engine itself (its calls are not recorded)."""
    with toxiproxy.client() as client:
        yield client


def on_toxiproxy(tp: httpx.Client, engine_url: str, toxiproxy_url: str, upstream: str) -> Environment:
    """An environment whose tcp proxy ``p`` is on the stand-in."""
    created = tp.post("/proxies", json={"name": "p", "upstream": upstream})
    assert created.status_code == 201, created.text
    env = environment(engine_url, {"p": Proxy("tcp", created.json()["listen"], upstream)})
    return dataclasses.replace(env, toxiproxy=toxiproxy_url)


def toxics(tp: httpx.Client, proxy: str = "p") -> list[dict[str, object]]:
    return list(tp.get(f"/proxies/{proxy}/toxics").json())


def round_trip(address: str) -> float:
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.settimeout(5)
        started = time.monotonic()
        sock.sendall(b"ping")
        assert sock.recv(100) == b"ping"
        return time.monotonic() - started


def test_tcp_proxy_faults_go_to_toxiproxy_and_layer_7_faults_to_the_engine() -> None:
    env = dataclasses.replace(
        environment(
            "http://127.0.0.1:9",
            {"db": Proxy("tcp", "127.0.0.1:1", "127.0.0.1:2"), "llm": Proxy("http", "127.0.0.1:3", "127.0.0.1:4")},
        ),
        toxiproxy="http://127.0.0.1:8",
    )
    drivers = drivers_for(env, run_id="r1")
    assert [driver.name for driver in drivers] == ["toxiproxy", "engine", "process"]
    for kind, target, expected in [
        ("latency", "db", "toxiproxy"),
        ("partition", "db", "toxiproxy"),
        ("down", "db", "toxiproxy"),
        ("http_error", "llm", "engine"),
        ("latency", "llm", "engine"),  # not a tcp proxy: the engine's check says what fits
    ]:
        assert driver_for(fault(kind, target), drivers).name == expected, (kind, target)
    assert [driver.name for driver in drivers_for(dataclasses.replace(env, toxiproxy=""))] == ["engine", "process"]


def test_a_fault_on_toxiproxy_takes_effect_is_removed_and_uses_the_plain_v2_api_only(
    toxiproxy: ToxiproxyStandIn, tp: httpx.Client, engine: EngineProcess, echo_server: EchoServer
) -> None:
    env = on_toxiproxy(tp, engine.url, toxiproxy.url, echo_server.address)
    driver = ToxiproxyFaultDriver(env, run_id="r1")
    plan = fault("latency", "p", name="slow", attributes={"latency": 300})
    applied = run(driver.apply(plan, ttl=60))
    try:
        (toxic,) = toxics(tp)
        assert (toxic["name"], toxic["type"], toxic.get("ttl")) == ("chaos-r1-slow-downstream", "latency", None)
        assert round_trip(env.proxies["p"].listen) >= 0.29
        assert run(driver.verify(applied)) == "chaos-r1-slow-downstream on toxiproxy"
        assert live_restore_watchdogs() == [applied.handle["watchdog_pid"]]
    finally:
        run(driver.remove(applied))
    assert toxics(tp) == []
    assert live_restore_watchdogs() == []
    assert round_trip(env.proxies["p"].listen) < 0.25
    assert run(driver.verify(applied)) is None
    run(driver.remove(applied))  # twice is fine
    assert toxiproxy.calls, "the driver went somewhere else"
    assert toxiproxy.not_plain_v2() == []


def test_partition_and_down_are_the_same_toxics_on_toxiproxy(
    toxiproxy: ToxiproxyStandIn, tp: httpx.Client, engine: EngineProcess, echo_server: EchoServer
) -> None:
    env = on_toxiproxy(tp, engine.url, toxiproxy.url, echo_server.address)
    driver = ToxiproxyFaultDriver(env)
    for kind, toxic_type in [("partition", "timeout"), ("down", "reset_peer")]:
        applied = run(driver.apply(fault(kind, "p", name=kind), ttl=60))
        found = {(t["name"], t["type"], t["stream"], str(t["attributes"])) for t in toxics(tp)}
        assert found == {
            (f"chaos-{kind}-{stream}", toxic_type, stream, "{'timeout': 0}") for stream in ("upstream", "downstream")
        }
        run(driver.remove(applied))
        assert toxics(tp) == []
    assert toxiproxy.not_plain_v2() == []


def test_when_the_runner_is_killed_the_watchdog_removes_the_toxics_at_the_deadline(
    toxiproxy: ToxiproxyStandIn, tp: httpx.Client, engine: EngineProcess, echo_server: EchoServer, tmp_path: Path
) -> None:
    env = on_toxiproxy(tp, engine.url, toxiproxy.url, echo_server.address)
    env_file = tmp_path / "environment.json"
    env.write(env_file)
    ttl = 2.0
    runner = textwrap.dedent(f"""
        import asyncio, os, signal, sys
        from pathlib import Path
        from chaos_service.experiments.faults.toxiproxy import ToxiproxyFaultDriver
        from chaos_service.experiments.plan import FaultPlan
        from chaos_service.sandbox.environment import Environment

        env = Environment.load(Path({str(env_file)!r}))
        plan = FaultPlan(name="cut", fault="partition", target="p", at=0.0, duration=1.0)
        asyncio.run(ToxiproxyFaultDriver(env).apply(plan, {ttl}))
        print("applied", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    started = time.monotonic()
    killed = subprocess.run([sys.executable, "-c", runner], capture_output=True, text=True, timeout=30)
    assert killed.returncode == -9, killed.stderr
    assert killed.stdout.strip() == "applied"
    assert len(toxics(tp)) == 2 and time.monotonic() - started < ttl  # still there: Toxiproxy keeps them
    while toxics(tp) and time.monotonic() - started < ttl + WAIT:
        time.sleep(0.05)
    assert toxics(tp) == [], "the watchdog did not remove the toxics"
    assert time.monotonic() - started >= ttl - 0.1  # not before the deadline
    assert toxiproxy.not_plain_v2() == []


def test_a_fault_that_cannot_be_applied_leaves_no_toxic_and_no_watchdog(
    toxiproxy: ToxiproxyStandIn, tp: httpx.Client, engine: EngineProcess, echo_server: EchoServer
) -> None:
    env = on_toxiproxy(tp, engine.url, toxiproxy.url, echo_server.address)
    env = dataclasses.replace(env, proxies={**env.proxies, "gone": Proxy("tcp", "127.0.0.1:1", "127.0.0.1:2")})
    driver = ToxiproxyFaultDriver(env)
    with pytest.raises(FaultTargetError, match="proxy 'gone' does not exist"):
        run(driver.apply(fault("latency", "gone", attributes={"latency": 10}), ttl=60))
    with pytest.raises(FaultTargetError, match="unknown attribute"):
        run(driver.apply(fault("latency", "p", attributes={"speed": 10}), ttl=60))
    assert toxics(tp) == []
    assert live_restore_watchdogs() == []
    unreachable = ToxiproxyFaultDriver(dataclasses.replace(env, toxiproxy="http://127.0.0.1:9"))
    with pytest.raises(FaultTargetError, match=r"unreachable at http://127\.0\.0\.1:9"):
        run(unreachable.check(fault("latency", "p", attributes={"latency": 10})))


def test_the_control_plane_removes_a_toxiproxy_fault_past_its_expiry_whose_watchdog_died(
    toxiproxy: ToxiproxyStandIn, tp: httpx.Client, engine: EngineProcess, echo_server: EchoServer, tmp_path: Path
) -> None:
    env = on_toxiproxy(tp, engine.url, toxiproxy.url, echo_server.address)
    driver = ToxiproxyFaultDriver(env)

    async def scenario() -> tuple[list[str], list[str], int]:
        store = await open_store(tmp_path / "control.db", "r1")
        try:
            applied = await driver.apply(fault("latency", "p", name="adhoc", attributes={"latency": 5}), ttl=60)
            await driver._watchdogs.stand_down(applied.handle)  # as if it died with its container
            await store.record_fault(None, "adhoc", driver.name, applied.handle, time.time() + 60)
            not_yet = await remove_overdue(store, [driver])
            assert not_yet == ([], []) and len(toxics(tp)) == 1
            await store.record_fault(None, "adhoc-old", driver.name, applied.handle, time.time() - 1)
            removed, failed = await remove_overdue(store, [driver])
            return removed, failed, len(await store.open_faults())
        finally:
            await store.close()

    removed, failed, still_open = asyncio.run(scenario())
    assert (removed, failed, still_open) == (["ad-hoc fault adhoc-old"], [], 1)
    assert toxics(tp) == []


EXPERIMENT = """
title: Redis down, on either backend
settings: {warmup: 1s, recovery_window: 3s, steady_window: 1s, k: 2}
probes:
  cache: {type: redis, endpoint: redis, every: 100ms, deadline: 500ms}
steady_state:
  - {probe: cache, success_rate: ">= 0.95"}
method:
  - {name: cache-down, at: 0s, fault: down, proxy: redis, duration: 1500ms}
slo:
  recovery_time: "<= 2s"
"""


@pytest.mark.slow
def test_an_experiment_runs_unchanged_on_the_engine_and_on_toxiproxy(
    toxiproxy: ToxiproxyStandIn,
    tp: httpx.Client,
    engine: EngineProcess,
    api: httpx.Client,
    redis_server: RedisServer | ExternalServer,
) -> None:
    upstream = f"{redis_server.host}:{redis_server.port}"
    outcomes = {}
    for backend, client in [("engine", api), ("toxiproxy", tp)]:
        created = client.post("/proxies", json={"name": "redis", "upstream": upstream})
        assert created.status_code == 201, created.text
        listen = created.json()["listen"]
        env = dataclasses.replace(
            environment(engine.url, {"redis": Proxy("tcp", listen, upstream)}),
            endpoints={"redis": f"redis://{listen}/0"},
            toxiproxy=toxiproxy.url if backend == "toxiproxy" else "",
        )
        plan = parse_experiment(EXPERIMENT, "redis-down.yaml", env)
        record = asyncio.run(ExperimentRunner(plan, env).run())
        outcomes[backend] = record
        client.delete("/proxies/redis")
    for backend, record in outcomes.items():
        (window,) = record.faults
        assert record.outcome.value == "passed", (backend, record.reason, [c for c in record.checks if not c.passed])
        assert window.error is None and window.applied_at is not None and window.removed_at is not None, backend
        (cache,) = record.probes
        assert cache.ok < cache.attempts, f"{backend}: the fault never showed in the probe"
    assert "fired" in (outcomes["engine"].faults[0].evidence or "")
    assert "on toxiproxy" in (outcomes["toxiproxy"].faults[0].evidence or "")
    assert any(call.method == "POST" and call.path == "/proxies/redis/toxics" for call in toxiproxy.calls)
    assert toxiproxy.not_plain_v2() == []
