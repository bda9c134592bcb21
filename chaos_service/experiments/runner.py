"""Running one experiment: probes from start to end, the steady state, the fault timeline, the verdict.

Timeline (seconds from the run's start, ``t0``)::

    0 ── warm-up ── method start ── faults … ── last fault ends ── recovery window ── end
         steady state before ▲                                 steady state after ▲ (last steady_window s)

Every fault is recorded before it is applied, applied with a ``ttl`` (its duration plus
a margin, so the data plane removes it even if this process dies), verified from the
engine's counters, and removed in every outcome: at its end, or at once when a guardrail
trips, the run is interrupted (`interrupt`) or the run fails with an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from chaos_service.errors import ChaosServiceError
from chaos_service.experiments import evaluation
from chaos_service.experiments.faults.base import AppliedFault, FaultDriver, driver_for, drivers_for
from chaos_service.experiments.plan import ExperimentPlan, FaultPlan
from chaos_service.experiments.probe_factory import ScheduledProbe, build_probes
from chaos_service.experiments.record import CheckResult, FaultWindow, RunOutcome, RunRecord
from chaos_service.probes.checkers.delivery import DeliveryReport
from chaos_service.probes.kinds.chat import ChatVirtualUser
from chaos_service.probes.records import ProbeResult
from chaos_service.probes.schedule import OpenLoopRunner
from chaos_service.sandbox.environment import Environment

GUARD_INTERVAL = 0.25
ROLLBACK_TIMEOUT = 10.0
Notify = Callable[[str], None]


class ExperimentRunner:
    def __init__(
        self,
        plan: ExperimentPlan,
        environment: Environment | None,
        *,
        drivers: list[FaultDriver] | None = None,
        dry_run: bool = False,
        notify: Notify | None = None,
    ) -> None:
        self.plan = plan
        self.environment = environment
        self.dry_run = dry_run
        self.notify: Notify = notify or (lambda message: None)
        self.run_id = uuid.uuid4().hex[:12]
        self.drivers = drivers if drivers is not None else ([] if environment is None else drivers_for(environment))
        self.results: dict[str, list[ProbeResult]] = {probe.name: [] for probe in plan.probes}
        self.active: dict[str, AppliedFault] = {}
        self.phase = "starting"
        self.t0 = 0.0
        self.t_end = 0.0
        self._halted = asyncio.Event()
        self._halt_reason = ""
        self._error = ""

    # -- control ------------------------------------------------------------------------------

    def interrupt(self, reason: str) -> None:
        """Stop the run now (Ctrl-C, SIGTERM, a halt): faults are removed, the verdict is ``aborted``."""
        if not self._halted.is_set():
            self._halt_reason = reason
            self._halted.set()

    def _fail(self, message: str) -> None:
        if not self._error:
            self._error = message
        self._halted.set()

    # -- the run ------------------------------------------------------------------------------

    async def run(self) -> RunRecord:
        plan, settings = self.plan, self.plan.settings
        record = RunRecord(
            self.run_id, plan.title, plan.path, list(plan.tags), _now(), dry_run=self.dry_run, catches=plan.catches
        )
        self.t0 = time.monotonic()
        record.t0 = self.t0
        try:
            probes = self._prepare()
            await self._check_targets()
        except (ChaosServiceError, ValueError, OSError, httpx.HTTPError) as exc:
            return self._finish(record, RunOutcome.ERROR, f"cannot start: {exc}", [], [])
        t_method = self.t0 + settings.warmup
        tail = settings.steady_window if self.dry_run or not plan.method else plan.method_end + settings.recovery_window
        self.t_end = t_method + tail
        probes_done = asyncio.Event()
        probing = asyncio.create_task(self._probe(probes, probes_done))
        outcome, reason = RunOutcome.PASSED, ""
        try:
            self.phase = "warm-up"
            self.notify(f"warm-up: {len(probes)} probes for {settings.warmup:g} s")
            await self._until(t_method)
            before = evaluation.steady_state("steady_state_before", plan.steady_state, self.results, self.t0, t_method)
            record.checks += before
            if not self._halted.is_set() and not all(check.passed for check in before):
                outcome, reason = RunOutcome.PRECONDITION_FAILED, _failed(before)
            elif not self._halted.is_set() and not self.dry_run and plan.method:
                await self._method(record, t_method)
            elif not self._halted.is_set():
                self.phase = "observing"
                await self._until(self.t_end)
        finally:
            await self._remove_all(record)
            probes_done.set()
            await probing
        if not self.dry_run:
            record.rollbacks = await self._rollbacks()
        reports = self._delivery_reports(probes)
        await self._close(probes)
        if self._error:
            outcome, reason = RunOutcome.ERROR, self._error
        elif self._halt_reason:
            outcome, reason = RunOutcome.ABORTED, self._halt_reason
        return self._finish(record, outcome, reason, probes, reports)

    def _prepare(self) -> list[ScheduledProbe]:
        probes = []
        for probe_plan in self.plan.probes:
            probes += build_probes(probe_plan, self.environment)
        return probes

    async def _check_targets(self) -> None:
        for fault in self.plan.method:
            await driver_for(fault, self.drivers).check(fault)

    async def _probe(self, probes: Sequence[ScheduledProbe], done: asyncio.Event) -> None:
        """Every probe open-loop until the end, or until ``done`` (a precondition failure, an abort)."""

        runners = [OpenLoopRunner(p.probe, p.schedule, on_result=self.results[p.plan.name].append) for p in probes]
        stop = asyncio.Event()

        async def stop_early() -> None:
            await done.wait()
            stop.set()

        stopper = asyncio.create_task(stop_early())
        try:
            await asyncio.gather(*(runner.run(self.t0, self.t_end, stop) for runner in runners))
        finally:
            stopper.cancel()

    async def _method(self, record: RunRecord, t_method: float) -> None:
        self.phase = "method"
        self.notify(f"method: {len(self.plan.method)} faults over {self.plan.method_end:g} s")
        faults = [asyncio.create_task(self._fault(fault, t_method, record)) for fault in self.plan.method]
        guard = asyncio.create_task(self._guard(record, t_method))
        try:
            await self._until(t_method + self.plan.method_end)
            if not self._halted.is_set():
                await asyncio.gather(*faults)
                self.phase = "recovery"
                self.notify(f"recovery: observing for {self.plan.settings.recovery_window:g} s")
                await self._until(self.t_end)
        finally:
            for task in faults:
                task.cancel()
            await asyncio.gather(*faults, return_exceptions=True)
            guard.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await guard
        if not self._halted.is_set():
            after_since = self.t_end - self.plan.settings.steady_window
            record.checks += evaluation.steady_state(
                "steady_state_after", self.plan.steady_state, self.results, after_since, self.t_end
            )

    async def _fault(self, fault: FaultPlan, t_method: float, record: RunRecord) -> None:
        driver = driver_for(fault, self.drivers)
        ttl = fault.duration + self.plan.settings.ttl_margin
        window = FaultWindow(fault.name, fault.fault, fault.target, t_method + fault.at - self.t0, fault.duration, ttl)
        record.faults.append(window)  # recorded before it is applied
        await self._until(t_method + fault.at)
        if self._halted.is_set():
            return
        try:
            applied = await driver.apply(fault, ttl)
        except ChaosServiceError as exc:
            window.error = str(exc)
            self._fail(f"fault {fault.name}: {exc}")
            return
        self.active[fault.name] = applied
        window.applied_at = time.monotonic() - self.t0
        self.notify(f"fault {fault.name} applied: {fault.fault} on {fault.target} for {fault.duration:g} s")
        try:
            await self._until(t_method + fault.end)
            window.evidence = await driver.verify(applied)
        finally:
            await self._remove(fault.name, driver, window)

    async def _remove(self, name: str, driver: FaultDriver, window: FaultWindow) -> None:
        applied = self.active.pop(name, None)
        if applied is None:
            return
        try:
            await asyncio.shield(driver.remove(applied))
        except ChaosServiceError as exc:
            window.error = f"removal failed (the ttl removes it): {exc}"
        window.removed_at = time.monotonic() - self.t0
        self.notify(f"fault {name} removed")
        if window.error is None:
            # Counters that outlive the fault give the whole count only now; a live check
            # (a paused process) has nothing left to show, and keeps what it saw before.
            window.evidence = await driver.verify(applied) or window.evidence

    async def _remove_all(self, record: RunRecord) -> None:
        windows = {window.name: window for window in record.faults}
        for name in list(self.active):
            fault = next(f for f in self.plan.method if f.name == name)
            await self._remove(name, driver_for(fault, self.drivers), windows[name])

    async def _guard(self, record: RunRecord, t_method: float) -> None:
        while not self._halted.is_set():
            now = time.monotonic()
            for guardrail in self.plan.abort_when:
                if now - t_method < guardrail.for_:
                    continue
                window = [r for r in self.results.get(guardrail.probe, ()) if now - guardrail.for_ <= r.scheduled]
                observed = evaluation.probe_metric(window, guardrail.check.metric)
                if observed is not None and guardrail.check.holds(observed):
                    check = evaluation.check("guardrail", guardrail.probe, guardrail.check, observed)
                    record.checks.append(check)
                    self.interrupt(f"guardrail tripped: {check.name} over {guardrail.for_:g} s ({check.observed})")
                    return
            await asyncio.sleep(GUARD_INTERVAL)

    async def _until(self, instant: float) -> None:
        """Sleep until ``instant`` (monotonic) or until the run is halted."""
        remaining = instant - time.monotonic()
        if remaining > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._halted.wait()

    async def _rollbacks(self) -> list[dict[str, Any]]:
        """The file's own rollback actions, in order, in every outcome; a failure is recorded, not raised."""
        done: list[dict[str, Any]] = []
        async with httpx.AsyncClient(timeout=ROLLBACK_TIMEOUT) as client:
            for rollback in self.plan.rollbacks:
                entry: dict[str, Any] = {"name": rollback.name, "method": rollback.method, "url": rollback.url}
                try:
                    response = await client.request(rollback.method, rollback.url, json=rollback.body)
                    entry["status"] = response.status_code
                except httpx.HTTPError as exc:
                    entry["error"] = f"{type(exc).__name__}: {exc}"
                self.notify(f"rollback {rollback.name}: {entry.get('status', entry.get('error'))}")
                done.append(entry)
        return done

    # -- the verdict --------------------------------------------------------------------------

    def _delivery_reports(self, probes: Sequence[ScheduledProbe]) -> list[DeliveryReport]:
        return [p.probe.delivery_report() for p in probes if isinstance(p.probe, ChatVirtualUser)]

    async def _close(self, probes: Sequence[ScheduledProbe]) -> None:
        users = [p.probe for p in probes if isinstance(p.probe, ChatVirtualUser)]
        await asyncio.gather(*(user.close() for user in users), return_exceptions=True)

    def _finish(
        self,
        record: RunRecord,
        outcome: RunOutcome,
        reason: str,
        probes: Sequence[ScheduledProbe],
        reports: Sequence[DeliveryReport],
    ) -> RunRecord:
        applied = [w for w in record.faults if w.applied_at is not None]
        span = evaluation.FaultSpan(
            injected=min((self.t0 + w.applied_at for w in applied if w.applied_at is not None), default=None),
            cleared=max((self.t0 + w.removed_at for w in applied if w.removed_at is not None), default=None),
        )
        probers: dict[str, int] = {}
        for scheduled in probes:
            probers[scheduled.plan.name] = scheduled.probers
        record.probes = [
            evaluation.summarize(
                plan,
                self.results.get(plan.name, []),
                span=span,
                window_end=self.t_end or time.monotonic(),
                probers=probers.get(plan.name, 1),
                k=self.plan.settings.k,
            )
            for plan in self.plan.probes
        ]
        record.metrics = evaluation.run_metrics(record.probes, reports, span)
        if outcome is RunOutcome.PASSED and not self.dry_run and self.plan.method:
            record.checks += evaluation.slo_checks(self.plan.slo, record.metrics)
            failed = [check for check in record.checks if not check.passed]
            if failed:
                outcome, reason = RunOutcome.FAILED, _failed(failed)
        record.outcome, record.reason = outcome, reason
        record.ended = _now()
        record.duration = time.monotonic() - self.t0
        if self.environment is not None:
            record.environment = _environment(self.environment)
        return record


def _failed(checks: Sequence[CheckResult]) -> str:
    return "; ".join(f"{check.name} (observed {check.observed})" for check in checks if not check.passed)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _environment(environment: Environment) -> dict[str, Any]:
    return {
        "engine": environment.engine,
        "endpoints": dict(environment.endpoints),
        "proxies": {name: proxy.listen for name, proxy in environment.proxies.items()},
        "auth": {"algorithm": environment.auth.algorithm, "secret": environment.auth.secret},
    }
