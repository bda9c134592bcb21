"""The control plane with a Toxiproxy serving the tcp proxies: faults, halt, health, time limits."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import httpx

from chaos_service.control.api.app import create_app
from chaos_service.control.plane import ControlPlane
from chaos_service.control.runs import RunManager
from chaos_service.control.store import open_store
from chaos_service.experiments.faults import drivers_for
from chaos_service.experiments.plan import FaultPlan
from chaos_service.sandbox.environment import Environment, Proxy
from tests.experiments.faults.support import environment
from tests.support.engine import EchoServer, EngineProcess
from tests.support.toxiproxy import ToxiproxyStandIn


def backend(toxiproxy: ToxiproxyStandIn, engine: EngineProcess, upstream: str, path: Path) -> Environment:
    with toxiproxy.client() as tp:
        created = tp.post("/proxies", json={"name": "db", "upstream": upstream})
        assert created.status_code == 201, created.text
    env = environment(engine.url, {"db": Proxy("tcp", created.json()["listen"], upstream)})
    env = dataclasses.replace(env, toxiproxy=toxiproxy.url)
    env.write(path)
    return env


def toxic_names(toxiproxy: ToxiproxyStandIn) -> list[str]:
    with toxiproxy.client() as tp:
        return sorted(toxic["name"] for toxic in tp.get("/proxies/db/toxics").json())


def test_halt_resets_toxiproxy_and_removes_its_faults_and_health_reports_it(
    toxiproxy: ToxiproxyStandIn, engine: EngineProcess, echo_server: EchoServer, tmp_path: Path
) -> None:
    env = backend(toxiproxy, engine, echo_server.address, tmp_path / "environment.json")
    with toxiproxy.client() as tp:  # a toxic made by someone else, straight on Toxiproxy
        assert tp.post("/proxies/db/toxics", json={"name": "theirs", "type": "latency"}).status_code == 200

    async def scenario() -> tuple[list[str], list[str], list[str], dict[str, object], int]:
        store = await open_store(tmp_path / "control.db", "r1")
        drivers = drivers_for(env)
        runs = RunManager(store, str(tmp_path / "control.db"), tmp_path / "environment.json", drivers)
        plane = ControlPlane(store, env, drivers, runs)
        try:
            plan = FaultPlan(name="slow-db", fault="latency", target="db", at=0, duration=600, attributes={})
            record = await plane.inject(plan, "alice")
            assert record.driver == "toxiproxy"
            during = toxic_names(toxiproxy)
            app = create_app(plane)  # health needs no game days
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
                health = (await client.get("/health")).json()
            report = await plane.halt("bob", "drill")
            return during, report.removed_faults, report.failed, health, len(await store.open_faults())
        finally:
            await plane.close()
            await store.close()

    during, removed, failed, health, still_open = asyncio.run(scenario())
    assert during == ["chaos-slow-db-downstream", "theirs"]
    assert (removed, failed, still_open) == (["ad-hoc fault slow-db"], [], 0)
    assert toxic_names(toxiproxy) == []
    assert (health["engine"], health["toxiproxy"], health["status"]) == ("ok", "ok", "ok")
    assert any(call.method == "POST" and call.path == "/reset" for call in toxiproxy.calls)
    assert toxiproxy.not_plain_v2() == []


def test_every_replica_removes_a_toxiproxy_fault_at_its_time_limit(
    toxiproxy: ToxiproxyStandIn, engine: EngineProcess, echo_server: EchoServer, tmp_path: Path
) -> None:
    """A fault recorded by a replica that is gone, whose watchdog is gone too: the sweep ends it."""
    env = backend(toxiproxy, engine, echo_server.address, tmp_path / "environment.json")
    with toxiproxy.client() as tp:
        assert tp.post("/proxies/db/toxics", json={"name": "left", "type": "latency"}).status_code == 200

    async def scenario() -> float:
        store = await open_store(tmp_path / "control.db", "r2")
        drivers = drivers_for(env)
        plane = ControlPlane(store, env, drivers, RunManager(store, "", tmp_path / "environment.json", drivers))
        try:
            handle = {"proxy": "db", "toxics": ["left"]}
            await store.record_fault(None, "left-behind", "toxiproxy", handle, time.time() + 0.5)
            started = time.monotonic()
            plane.start_expiry_sweep(every=0.1)
            async with asyncio.timeout(10):
                while toxic_names(toxiproxy):
                    await asyncio.sleep(0.05)
            return time.monotonic() - started
        finally:
            await plane.close()
            await store.close()

    took = asyncio.run(scenario())
    assert 0.4 <= took < 5
