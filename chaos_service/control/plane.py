"""The control plane's domain core: experiments, runs, ad-hoc faults and the halt switch.

The API layer is a thin shell over `ControlPlane`: it authenticates, validates shapes with
pydantic and maps the errors raised here to status codes. Everything shared between replicas
lives in the store; this object holds only what belongs to this process (its run workers,
the timers of the ad-hoc faults it injected).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from chaos_service.control.errors import Conflict, Halted, Unavailable
from chaos_service.control.reconciler import remove_faults, remove_overdue
from chaos_service.control.recording import FaultHalted, RecordingDriver
from chaos_service.control.runs import RunManager
from chaos_service.control.store import Store
from chaos_service.control.store.catalog import HALT, ExperimentRow
from chaos_service.control.store.database import FaultRecord
from chaos_service.errors import InvalidInput, NotFound
from chaos_service.experiments.faults.base import FaultDriver, driver_for
from chaos_service.experiments.loader import parse_experiment
from chaos_service.experiments.plan import ExperimentPlan, FaultPlan
from chaos_service.sandbox.environment import Environment

log = logging.getLogger(__name__)

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
ENGINE_TIMEOUT = 5.0
#: The longest an ad-hoc fault may last: it is a time limit, not a setting to forget.
MAX_FAULT_SECONDS = 3600.0
#: How often faults past their expiry are looked for (a Toxiproxy toxic has no ttl of its own).
EXPIRY_SWEEP_SECONDS = 1.0


@dataclass
class HaltReport:
    removed_faults: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    aborted_runs: list[str] = field(default_factory=list)
    seconds: float = 0.0


class ControlPlane:
    def __init__(self, store: Store, environment: Environment, drivers: list[FaultDriver], runs: RunManager) -> None:
        self.store = store
        self.environment = environment
        self.drivers = drivers
        self.runs = runs
        #: The data planes a halt resets: the engine, and a Toxiproxy serving the tcp proxies.
        self.engine = httpx.AsyncClient(base_url=environment.engine, timeout=ENGINE_TIMEOUT)
        self.data_planes = {"engine": self.engine}
        if environment.toxiproxy:
            self.data_planes["toxiproxy"] = httpx.AsyncClient(base_url=environment.toxiproxy, timeout=ENGINE_TIMEOUT)
        self._expiries: dict[int, asyncio.Task[None]] = {}
        self._sweeper: asyncio.Task[None] | None = None

    def start_expiry_sweep(self, every: float = EXPIRY_SWEEP_SECONDS) -> None:
        """Remove recorded faults past their expiry from now on, whichever replica applied them."""
        self._sweeper = asyncio.create_task(self._sweep(every))

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.runs.close("the control plane is shutting down")
        for task in self._expiries.values():
            task.cancel()
        for client in self.data_planes.values():
            await client.aclose()

    # -- experiments ------------------------------------------------------------------------------

    def validate(self, name: str, source: str) -> ExperimentPlan:
        """The plan of ``source`` against this environment; raises `InvalidInput` with every problem."""
        if not NAME.match(name):
            raise InvalidInput(
                f"experiment name {name!r}: use 1-100 lower-case letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        return parse_experiment(source, f"{name}.yaml", self.environment)

    async def create_experiment(self, name: str, source: str, by: str) -> ExperimentRow:
        plan = self.validate(name, source)
        if not await self.store.create_experiment(name, plan.title, source, by):
            raise Conflict(f"experiment {name!r} exists already; PUT /experiments/{name} replaces it")
        await self.store.audit(by, "experiment.create", name)
        return await self.experiment(name)

    async def update_experiment(self, name: str, source: str, by: str) -> ExperimentRow:
        plan = self.validate(name, source)
        if not await self.store.update_experiment(name, plan.title, source, by):
            raise NotFound(f"no experiment {name!r}")
        await self.store.audit(by, "experiment.update", name)
        return await self.experiment(name)

    async def experiment(self, name: str) -> ExperimentRow:
        row = await self.store.get_experiment(name)
        if row is None:
            raise NotFound(f"no experiment {name!r}")
        return row

    async def delete_experiment(self, name: str, by: str) -> None:
        if not await self.store.delete_experiment(name):
            raise NotFound(f"no experiment {name!r}")
        await self.store.audit(by, "experiment.delete", name)

    # -- runs -------------------------------------------------------------------------------------

    async def start_run(self, name: str, by: str, *, dry_run: bool = False, schedule_id: str | None = None) -> str:
        experiment = await self.experiment(name)
        self.validate(name, experiment.source)  # the environment may have changed since it was stored
        run_id = await self.runs.start(experiment, by, dry_run=dry_run, schedule_id=schedule_id)
        await self.store.audit(by, "run.start", run_id, experiment=name, dry_run=dry_run)
        return run_id

    async def abort_run(self, run_id: str, by: str) -> None:
        await self.runs.abort(run_id, f"aborted by {by}")
        await self.store.audit(by, "run.abort", run_id)

    # -- ad-hoc faults ----------------------------------------------------------------------------

    async def inject(self, fault: FaultPlan, by: str) -> FaultRecord:
        """Apply ``fault`` now for ``fault.duration`` seconds; the engine enforces that limit too."""
        if not 0 < fault.duration <= MAX_FAULT_SECONDS:
            raise InvalidInput(f"duration must be more than 0 and at most {MAX_FAULT_SECONDS:g} seconds")
        driver = RecordingDriver(driver_for(fault, self.drivers), self.store, None)
        try:  # applying resolves the target first, so a fault that cannot be applied changes nothing
            applied = await driver.apply(fault, fault.duration)
        except FaultHalted as exc:
            raise Halted(f"{exc}; release it first") from None
        fault_id = driver.fault_id(fault.name)
        self._expiries[fault_id] = asyncio.create_task(self._expire(fault_id, fault.duration))
        await self.store.audit(by, "fault.inject", fault.name, proxy=fault.target, fault=fault.fault)
        log.info("ad-hoc fault %s applied by %s: %s", fault.name, by, applied.describe())
        expires_at = time.time() + (applied.expires_at - time.monotonic())
        return FaultRecord(fault_id, None, fault.name, driver.name, applied.handle, expires_at)

    async def faults(self) -> list[FaultRecord]:
        return await self.store.open_faults()

    async def remove_fault(self, fault_id: int, by: str) -> None:
        fault = await self._fault(fault_id)
        if fault.run_id is not None:
            raise Conflict(f"fault {fault_id} belongs to run {fault.run_id}: abort the run to remove it")
        _, failed = await remove_faults(self.store, self.drivers, [fault])
        if failed:
            raise Unavailable(f"could not remove fault {fault_id} now ({failed[0]}); it still ends at its time limit")
        if (task := self._expiries.pop(fault_id, None)) is not None:
            task.cancel()
        await self.store.audit(by, "fault.remove", fault.name)

    async def _fault(self, fault_id: int) -> FaultRecord:
        found = await self.store.open_faults(fault_id=fault_id)
        if not found:
            raise NotFound(f"no active fault {fault_id}")
        return found[0]

    async def _expire(self, fault_id: int, after: float) -> None:
        await asyncio.sleep(after)
        self._expiries.pop(fault_id, None)
        with contextlib.suppress(NotFound):
            await remove_faults(self.store, self.drivers, [await self._fault(fault_id)])

    async def _sweep(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                removed, _ = await remove_overdue(self.store, self.drivers)
            except Exception:  # the store is unreachable for now: next time
                log.exception("could not look for faults past their expiry")
                continue
            if removed:
                log.info("removed faults past their time limit: %s", ", ".join(removed))

    # -- halt -------------------------------------------------------------------------------------

    async def halt(self, by: str, reason: str) -> HaltReport:
        """Remove every fault now and refuse new runs and faults until `release`."""
        started = time.monotonic()
        report = HaltReport()
        await self.store.set_state(HALT, {"by": by, "reason": reason, "at": time.time()})
        why = f"halted by {by}" + (f": {reason}" if reason else "")
        self.runs.abort_local(why)
        # One call per data plane clears every toxic on every proxy, including any not made through here.
        reset: set[str] = set()
        for name, client in self.data_planes.items():
            try:
                (await client.post("/reset")).raise_for_status()
                reset.add(name)
            except httpx.HTTPError as exc:
                report.failed.append(f"{name} reset: {exc}")
        faults = await self.store.open_faults()
        # A Toxiproxy fault still goes through its driver: that stands its watchdog down.
        engine_faults = [fault for fault in faults if fault.driver == "engine" and "engine" in reset]
        await self.store.faults_removed([fault.id for fault in engine_faults])
        report.removed_faults += [fault.name for fault in engine_faults]
        removed, failed = await remove_faults(self.store, self.drivers, [f for f in faults if f not in engine_faults])
        report.removed_faults += removed
        report.failed += failed
        for task in self._expiries.values():
            task.cancel()
        self._expiries.clear()
        report.aborted_runs = await self.store.request_abort_all(why)
        report.seconds = time.monotonic() - started
        await self.store.audit(by, "halt", "", reason=reason, removed=len(report.removed_faults))
        return report

    async def release(self, by: str) -> bool:
        """Lift the halt; false if there was none."""
        if await self.store.get_state(HALT) is None:
            return False
        await self.store.set_state(HALT, None)
        await self.store.audit(by, "halt.release")
        return True

    async def halted(self) -> dict[str, Any] | None:
        return await self.store.get_state(HALT)


def adhoc_name() -> str:
    return f"adhoc-{uuid.uuid4().hex[:8]}"
