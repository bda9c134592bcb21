"""Faults on ``tcp`` proxies served by a real Toxiproxy (``toxiproxy`` in the environment).

The same toxics, ``partition`` and ``down`` as the engine driver, through Toxiproxy's plain v2
API only: ``GET /proxies/{proxy}``, ``POST /proxies/{proxy}/toxics``, ``GET`` and ``DELETE``
``/proxies/{proxy}/toxics[/{toxic}]``. So an experiment runs unchanged on either backend.

Toxiproxy has no toxic ``ttl``: a toxic stays until someone deletes it. Here the time limit
is enforced from outside Toxiproxy, twice over:

* before the first toxic is created, a detached restore watchdog is armed to delete the
  fault's toxics at its deadline — it outlives a runner killed with SIGKILL — and removing
  the fault stands it down;
* the control plane deletes every recorded fault that is past its expiry
  (`chaos_service.control.reconciler.remove_overdue`), which covers a watchdog that died with
  its machine or container.

Toxiproxy keeps no per-toxic counters, so the evidence a fault took effect is that its
toxics are on the proxy.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

import httpx

from chaos_service.experiments.faults.base import AppliedFault, FaultError
from chaos_service.experiments.faults.engine import (
    COMPOSITE_FAULTS,
    PROTOCOL_TOXICS,
    VERIFY_TIMEOUT,
    EngineFaultDriver,
)
from chaos_service.experiments.faults.watchdogs import RESTORE_WATCHDOG, Watchdogs
from chaos_service.experiments.plan import FaultPlan
from chaos_service.sandbox.environment import Environment

TCP = "tcp"


class ToxiproxyFaultDriver(EngineFaultDriver):
    """Applies faults on the environment's ``tcp`` proxies as toxics on a real Toxiproxy."""

    name = "toxiproxy"
    fault_types: tuple[str, ...] = tuple(sorted({*COMPOSITE_FAULTS, *PROTOCOL_TOXICS[TCP]}))

    def __init__(self, environment: Environment, *, run_id: str = "") -> None:
        super().__init__(environment, run_id=run_id, require_ttl=False)
        self.url = environment.toxiproxy.rstrip("/")
        self._watchdogs = Watchdogs()

    def handles(self, fault: FaultPlan) -> bool:
        proxy = self.environment.proxies.get(fault.target)
        return fault.fault in self.fault_types and proxy is not None and proxy.protocol == TCP

    async def apply(self, fault: FaultPlan, ttl: float) -> AppliedFault:
        if not ttl > 0:
            raise FaultError(f"fault {fault.name!r}: ttl must be greater than 0 seconds, got {ttl}")
        deadline = time.monotonic() + ttl
        deletes = [
            {"method": "DELETE", "base": self.url, "path": f"/proxies/{fault.target}/toxics/{body['name']}"}
            for body in self._toxic_bodies(fault, ttl)
        ]
        watchdog = await self._watchdogs.start(
            RESTORE_WATCHDOG, [repr(deadline)], f"fault {fault.name!r}", stdin=json.dumps(deletes).encode()
        )
        try:
            applied = await super().apply(fault, ttl)
        except BaseException:
            await self._watchdogs.stand_down(watchdog)
            raise
        return replace(applied, handle=applied.handle | watchdog, expires_at=deadline)

    async def verify(self, applied: AppliedFault) -> str | None:
        """``chaos-x-upstream, chaos-x-downstream on toxiproxy``; None once they are gone."""
        proxy, names = applied.handle.get("proxy"), applied.handle.get("toxics") or []
        try:
            async with self._client(VERIFY_TIMEOUT) as client:
                response = await client.get(f"/proxies/{proxy}/toxics")
            toxics = response.json() if response.status_code == 200 else []
        except (httpx.HTTPError, ValueError):
            return None
        present = (
            {str(toxic.get("name")) for toxic in toxics if isinstance(toxic, dict)}
            if isinstance(toxics, list)
            else set()
        )
        live = [name for name in names if name in present]
        return f"{', '.join(live)} on toxiproxy" if live else None

    async def remove(self, applied: AppliedFault) -> None:
        """Delete the toxics, then stand the watchdog down (if deleting fails it still deletes them)."""
        await super().remove(applied)
        await self._watchdogs.stand_down(applied.handle)

    def _toxic_bodies(self, fault: FaultPlan, ttl: float) -> list[dict[str, Any]]:
        bodies = super()._toxic_bodies(fault, ttl)
        for body in bodies:
            del body["ttl"]  # not Toxiproxy's: the watchdog and the control plane bound the fault
        return bodies

    async def _fired(self, client: httpx.AsyncClient, proxy: str) -> dict[str, int]:
        return {}  # Toxiproxy keeps no per-toxic counters
