"""A fault driver that writes every fault to the store before it exists and after it is gone.

Wrapped around the engine and process drivers of a control-plane run, it makes the store's
``applied_faults`` the list that the start-up reconciler and ``POST /halt`` work from: a
fault is recorded (with its expiry) before it is applied, its handle is filled in once the
driver has created it, and it is marked removed when the driver took it away.
"""

from __future__ import annotations

import time

from chaos_service.control.store import Store
from chaos_service.control.store.database import HaltedStore
from chaos_service.experiments.faults.base import AppliedFault, FaultDriver, FaultError
from chaos_service.experiments.plan import FaultPlan


class FaultHalted(FaultError):
    """The fault was not applied: the control plane is halted."""


class RecordingDriver:
    def __init__(self, inner: FaultDriver, store: Store, run_id: str | None) -> None:
        self.inner = inner
        self.store = store
        self.run_id = run_id
        self.name = inner.name
        self.fault_types = inner.fault_types
        self._ids: dict[str, int] = {}

    def fault_id(self, name: str) -> int:
        """The store's id of the applied fault called ``name``."""
        return self._ids[name]

    def handles(self, fault: FaultPlan) -> bool:
        return self.inner.handles(fault)

    async def check(self, fault: FaultPlan) -> None:
        await self.inner.check(fault)

    async def apply(self, fault: FaultPlan, ttl: float) -> AppliedFault:
        intended = {"target": fault.target, "fault": fault.fault, "pending": True}
        try:
            fault_id = await self.store.record_fault(self.run_id, fault.name, self.name, intended, time.time() + ttl)
        except HaltedStore as halt:
            raise FaultHalted(f"fault {fault.name!r}: the control plane is halted ({halt})") from None
        try:
            applied = await self.inner.apply(fault, ttl)
        except BaseException:
            await self.store.fault_removed(fault_id)  # the driver left nothing behind
            raise
        self._ids[fault.name] = fault_id
        wall_expiry = time.time() + (applied.expires_at - time.monotonic())
        await self.store.fault_applied(fault_id, applied.handle, wall_expiry)
        return applied

    async def verify(self, applied: AppliedFault) -> str | None:
        return await self.inner.verify(applied)

    async def remove(self, applied: AppliedFault) -> None:
        await self.inner.remove(applied)
        fault_id = self._ids.pop(applied.name, None)
        if fault_id is not None:
            await self.store.fault_removed(fault_id)


def recording(drivers: list[FaultDriver], store: Store, run_id: str | None) -> list[FaultDriver]:
    return [RecordingDriver(driver, store, run_id) for driver in drivers]
