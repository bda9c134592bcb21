"""At restart, a replica marks its interrupted runs and removes the faults they left behind."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from chaos_service.control.reconciler import INTERRUPTED, reconcile
from chaos_service.control.store import open_store
from chaos_service.experiments.faults import EngineFaultDriver
from chaos_service.sandbox.environment import Proxy
from tests.experiments.faults.support import environment, fault
from tests.support.engine import EngineProcess


def toxic_names(api: httpx.Client) -> list[str]:
    return sorted(toxic["name"] for toxic in api.get("/proxies/p/toxics").json())


def test_a_restarted_replica_interrupts_its_runs_and_removes_their_faults(
    tmp_path: Path, engine: EngineProcess, api: httpx.Client
) -> None:
    created = api.post("/proxies", json={"name": "p", "upstream": "127.0.0.1:9"})
    assert created.status_code == 201, created.text
    env = environment(engine.url, {"p": Proxy("tcp", created.json()["listen"], "127.0.0.1:9")})
    location = tmp_path / "control.db"

    async def crash() -> None:
        """Replica r1 and r2 each start a run and apply a fault; then r1 dies without cleaning up."""
        for replica, run_id, name in (("r1", "dead-run", "lat-dead"), ("r2", "live-run", "lat-live")):
            store = await open_store(location, replica)
            driver = EngineFaultDriver(env, run_id=run_id)
            await store.create_run(run_id, "x.yaml", "alice")
            plan = fault("latency", "p", name=name, attributes={"latency": 5})
            applied = await driver.apply(plan, ttl=300)
            await store.record_fault(run_id, name, applied.driver, applied.handle, time.time() + 300)
            await store.close()

    async def restart() -> tuple[list[str], list[str], list[str]]:
        store = await open_store(location, "r1")
        try:
            outcome = await reconcile(store, [EngineFaultDriver(env)])
        finally:
            await store.close()
        return outcome.interrupted_runs, outcome.removed_faults, outcome.failed

    asyncio.run(crash())
    assert len(toxic_names(api)) == 2
    interrupted, removed, failed = asyncio.run(restart())
    assert (interrupted, removed, failed) == (["dead-run"], ["lat-dead of run dead-run"], [])
    assert all("lat-live" in name for name in toxic_names(api))  # the other replica's run goes on

    async def statuses() -> tuple[str | None, str | None, list[str]]:
        store = await open_store(location, "r2")
        try:
            open_names = [f.name for f in await store.open_faults()]
            return await store.run_status("dead-run"), await store.run_status("live-run"), open_names
        finally:
            await store.close()

    assert asyncio.run(statuses()) == ("interrupted", "running", ["lat-live"])
    assert INTERRUPTED.startswith("the control plane stopped")
