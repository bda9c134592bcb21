"""Crash safety: what a control-plane replica does first when it starts.

A replica that died mid-run (kill -9, a lost machine) left its runs marked ``running`` and
possibly faults in place. The data plane removes every fault at its ttl anyway; the
reconciler does not wait for that: it marks this replica's leftover runs ``interrupted``
and removes, through their drivers, the recorded faults whose run is no longer running.
Ad-hoc faults (no run) are left to their own time limit, which `remove_overdue` enforces
for every replica while it serves.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from chaos_service.control.store.database import FaultRecord, Store
from chaos_service.errors import ChaosServiceError
from chaos_service.experiments.faults.base import AppliedFault, FaultDriver

log = logging.getLogger(__name__)

INTERRUPTED = "the control plane stopped during the run (found at its restart)"


@dataclass
class Reconciled:
    interrupted_runs: list[str] = field(default_factory=list)
    removed_faults: list[str] = field(default_factory=list)
    #: Faults that could not be removed now: they still go at their ttl.
    failed: list[str] = field(default_factory=list)


async def reconcile(store: Store, drivers: Sequence[FaultDriver]) -> Reconciled:
    outcome = Reconciled(interrupted_runs=await store.interrupt_runs_of_this_replica(INTERRUPTED))
    running = await store.running_run_ids()
    faults = [fault for fault in await store.open_faults() if fault.run_id is not None and fault.run_id not in running]
    outcome.removed_faults, outcome.failed = await remove_faults(store, drivers, faults)
    return outcome


async def remove_overdue(store: Store, drivers: Sequence[FaultDriver]) -> tuple[list[str], list[str]]:
    """Remove the recorded faults past their expiry: (removed, failed) labels.

    The data plane's ttl has removed most of them already (this only marks them removed);
    a toxic on a real Toxiproxy has no ttl, and its watchdog may have died with its machine,
    so for those this is the time limit.
    """
    overdue = await store.overdue_faults()
    # Never confirmed, so never handed to a driver: bounded by their ttl or by the watchdog
    # armed before they were created, they are gone by now.
    await store.faults_removed([fault.id for fault in overdue if fault.handle.get("pending")])
    return await remove_faults(store, drivers, [fault for fault in overdue if not fault.handle.get("pending")])


async def remove_faults_of(store: Store, drivers: Sequence[FaultDriver], run_id: str) -> list[str]:
    """Remove the recorded faults of a run that ended without removing them; what could not go."""
    faults = [fault for fault in await store.open_faults() if fault.run_id == run_id]
    return (await remove_faults(store, drivers, faults))[1]


async def remove_faults(
    store: Store, drivers: Sequence[FaultDriver], faults: Sequence[FaultRecord]
) -> tuple[list[str], list[str]]:
    """Remove ``faults`` through their drivers and mark them removed: (removed, failed) labels."""
    removed: list[str] = []
    failed: list[str] = []
    by_name = {driver.name: driver for driver in drivers}
    for fault in faults:
        driver = by_name.get(fault.driver)
        label = f"{fault.name} of run {fault.run_id}" if fault.run_id else f"ad-hoc fault {fault.name}"
        if driver is None:
            failed.append(f"{label}: no {fault.driver} driver here")
            continue
        if fault.handle.get("pending"):
            # Recorded, but its driver never reported what it created: only its ttl removes it.
            failed.append(f"{label}: its creation was never confirmed; it goes at its ttl")
            continue
        try:
            await driver.remove(_applied(fault))
        except ChaosServiceError as exc:
            log.warning("could not remove %s: %s", label, exc)
            failed.append(f"{label}: {exc}")
            continue
        await store.fault_removed(fault.id)
        removed.append(label)
    return removed, failed


def _applied(fault: FaultRecord) -> AppliedFault:
    """The driver's view of a recorded fault (its handle is all that removal needs)."""
    remaining = max(0.0, fault.expires_at - time.time())
    now = time.monotonic()
    return AppliedFault(fault.name, fault.driver, fault.handle, now, now + remaining, remaining)
