"""Game days: schedules that start experiments one after another at cron times, each fire time served
by whichever replica claims it first.

Every replica runs a `GameDays`: an APScheduler `AsyncIOScheduler` holding the enabled schedules,
re-read every ``sync_interval`` seconds so that changes made through any replica are picked up
(`GameDays.sync` makes this replica react at once). At a fire time every replica wakes, works out the
same fire time and claims it in the store; the one that gets it serves the firing:

- control plane halted: ``skipped``;
- ``overlap: forbid`` and another firing of the schedule unfinished, on any replica: ``skipped``;
- otherwise the experiments are started and awaited in order. One that cannot start is recorded as
  ``error`` and the next still runs. The outcome is the worst run status: passed < failed <
  precondition_failed < aborted < interrupted < error (``passed`` when there are no runs).

The firing's detail is ``{"runs": [{"experiment", "run_id", "status", "reason"}, ...], "webhook":
{"status" or "error", "attempts"} or None}``, plus ``"reason"`` when it was skipped, interrupted (by
`GameDays.stop`) or failed itself (``error``). A schedule's webhook hears of every firing this replica
finishes, skipped ones included.

Misfires: with ``misfire: skip`` a fire time not served within ``misfire_grace`` seconds is dropped;
with ``run_once`` a late fire time is still served, once however many were missed, and at start-up the
newest fire time missed while no replica served it (within ``catch_up_window``) is fired at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from apscheduler.jobstores.base import JobLookupError  # type: ignore[import-untyped, unused-ignore]
from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped, unused-ignore]

from chaos_service.control.scheduler.cron import latest_fire_time, missed_fire_time, parse_schedule
from chaos_service.control.scheduler.webhook import notify, payload
from chaos_service.control.store import Store
from chaos_service.control.store.catalog import HALT
from chaos_service.control.store.schedules import ScheduleRow
from chaos_service.errors import ChaosServiceError, InvalidInput

log = logging.getLogger(__name__)

#: Run statuses from best to worst; a firing's outcome is its worst run's.
SEVERITY = ("passed", "failed", "precondition_failed", "aborted", "interrupted", "error")
# Each job only starts a task and returns, so APScheduler's instance limit never decides whether
# firings overlap: the store does, across every replica.
MAX_INSTANCES = 1000


class RunLauncher(Protocol):
    """What starts and follows a game day's runs (the control plane's run manager)."""

    async def start_run(self, experiment: str, started_by: str, schedule_id: str) -> str:
        """Start a run of ``experiment``; its id. Raises a `ChaosServiceError` when it cannot start."""
        ...

    async def wait_run(self, run_id: str) -> tuple[str, str]:
        """The run's (status, reason) once it has ended."""
        ...


def worst(statuses: Iterable[str]) -> str:
    """The outcome of a firing whose runs ended with ``statuses`` (an unknown status counts as error)."""
    outcome = "passed"
    for status in statuses:
        known = status if status in SEVERITY else "error"
        if SEVERITY.index(known) > SEVERITY.index(outcome):
            outcome = known
    return outcome


class GameDays:
    """This replica's share of the game days: its scheduler, its sync loop and the firings it serves."""

    def __init__(
        self,
        store: Store,
        launcher: RunLauncher,
        *,
        sync_interval: float = 5.0,
        misfire_grace: float = 60.0,
        catch_up_window: float = 86400.0,
    ) -> None:
        self.store = store
        self.launcher = launcher
        self.sync_interval = sync_interval
        self.misfire_grace = misfire_grace
        self.catch_up_window = catch_up_window
        self._scheduler: Any = None
        self._loaded: dict[str, tuple[str, str, str]] = {}  # schedule id -> (cron, timezone, misfire) as scheduled
        self._rejected: dict[str, tuple[str, str, str]] = {}  # the same, for rows already logged as invalid
        self._firings: set[asyncio.Task[None]] = set()
        self._sync_task: asyncio.Task[None] | None = None
        self._sync_lock = asyncio.Lock()
        self._stopping = False

    async def start(self) -> None:
        """Mark this replica's leftover firings interrupted, schedule every enabled game day, catch up
        the ``run_once`` ones that missed a fire time, and start re-reading the schedules."""
        if self._scheduler is not None:
            raise RuntimeError("the game-day scheduler is already running")
        self._stopping = False
        if interrupted := await self.store.interrupt_firings_of_this_replica():
            log.warning("marked %d firing(s) this replica left unfinished as interrupted", interrupted)
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._scheduler.start()
        try:
            async with self._sync_lock:
                rows = await self.store.list_schedules()
                self._apply(rows)
            await self._catch_up(rows)
        except BaseException:
            await self.stop()
            raise
        self._sync_task = asyncio.create_task(self._sync_loop(), name="gamedays-sync")
        log.info("game-day scheduler started with %d schedule(s)", len(self._loaded))

    async def sync(self) -> None:
        """Re-read the schedules now (after a change through the API) instead of at the next interval."""
        if self._scheduler is None or self._stopping:
            return
        async with self._sync_lock:
            self._apply(await self.store.list_schedules())

    async def stop(self) -> None:
        """Stop scheduling, and cancel the firings in flight (each finished as ``interrupted``).
        Runs they started go on: they belong to the run manager."""
        self._stopping = True
        if self._sync_task is not None:
            self._sync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sync_task
            self._sync_task = None
        if self._scheduler is not None:
            if self._scheduler.running:
                self._scheduler.shutdown(wait=False)
            self._scheduler = None
        firings = list(self._firings)
        for task in firings:
            task.cancel()
        await asyncio.gather(*firings, return_exceptions=True)
        await asyncio.sleep(0)  # the scheduler's shutdown runs on the loop's next turn
        self._loaded.clear()
        self._rejected.clear()

    async def drain(self) -> None:
        """Wait until no firing is in flight on this replica (a new one may start when its time comes)."""
        while self._firings:
            await asyncio.gather(*list(self._firings), return_exceptions=True)

    def next_run_times(self) -> dict[str, datetime | None]:
        """The schedules this replica has loaded, each with the next time its job wakes."""
        if self._scheduler is None:
            return {}
        return {job.id: job.next_run_time for job in self._scheduler.get_jobs()}

    # -- schedules -> jobs ------------------------------------------------------------------------

    def _apply(self, rows: list[ScheduleRow]) -> None:
        wanted = {row.id: row for row in rows if row.enabled}
        for schedule_id in [known for known in self._loaded if known not in wanted]:
            self._unload(schedule_id)
            log.info("game day %s unscheduled (deleted or disabled)", schedule_id)
        for schedule_id in [known for known in self._rejected if known not in wanted]:
            del self._rejected[schedule_id]
        for row in wanted.values():
            key = (row.cron, row.timezone, row.misfire)
            if key in (self._loaded.get(row.id), self._rejected.get(row.id)):
                continue
            try:
                trigger = parse_schedule(row.cron, row.timezone)
                self._scheduler.add_job(
                    self._job,
                    trigger,
                    args=(row.id,),
                    id=row.id,
                    name=f"game day {row.id}",
                    replace_existing=True,
                    coalesce=True,
                    max_instances=MAX_INSTANCES,
                    misfire_grace_time=None if row.misfire == "run_once" else max(1, round(self.misfire_grace)),
                )
            except Exception as exc:
                log.error("game day %s is not scheduled: %s", row.id, exc)
                self._unload(row.id)
                self._rejected[row.id] = key
                continue
            self._rejected.pop(row.id, None)
            self._loaded[row.id] = key
            log.info("game day %s scheduled: %r in %s", row.id, row.cron, row.timezone)

    def _unload(self, schedule_id: str) -> None:
        self._loaded.pop(schedule_id, None)
        with contextlib.suppress(JobLookupError):
            self._scheduler.remove_job(schedule_id)

    async def _sync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.sync_interval)
            try:
                await self.sync()
            except Exception:
                log.exception("could not re-read the game-day schedules; trying again in %ss", self.sync_interval)

    async def _catch_up(self, rows: list[ScheduleRow]) -> None:
        now = datetime.now(UTC)
        window_start = now - timedelta(seconds=self.catch_up_window)
        for row in rows:
            if not row.enabled or row.misfire != "run_once" or row.id not in self._loaded:
                continue
            last = await self.store.last_fire_time(row.id)
            since = datetime.fromtimestamp(row.created_at if last is None else last, UTC)
            missed = missed_fire_time(parse_schedule(row.cron, row.timezone), max(since, window_start), now)
            if missed is not None:
                log.info("game day %s missed its %s firing; firing it now", row.id, missed.isoformat())
                self._spawn(row.id, missed)

    # -- firings ----------------------------------------------------------------------------------

    async def _job(self, schedule_id: str) -> None:
        if not self._stopping:
            self._spawn(schedule_id, None)

    def _spawn(self, schedule_id: str, fire_time: datetime | None) -> None:
        task = asyncio.create_task(self._fire(schedule_id, fire_time), name=f"gameday-{schedule_id}")
        self._firings.add(task)
        task.add_done_callback(self._firings.discard)

    async def _fire(self, schedule_id: str, fire_time: datetime | None) -> None:
        try:
            row = await self.store.get_schedule(schedule_id)
            if row is None or not row.enabled:
                return
            trigger = parse_schedule(row.cron, row.timezone)
            if fire_time is None:
                grace = self.misfire_grace
                if row.misfire == "run_once":
                    grace = max(grace, self.catch_up_window)
                fire_time = latest_fire_time(trigger, datetime.now(UTC), timedelta(seconds=grace))
                if fire_time is None:
                    log.info("game day %s woke with no fire time in the last %ss; nothing to do", row.id, grace)
                    return
            firing_id = await self.store.claim_firing(row.id, fire_time.timestamp())
        except InvalidInput as exc:
            log.error("game day %s cannot fire: %s", schedule_id, exc)
            return
        except Exception:
            log.exception("game day %s: could not claim its firing", schedule_id)
            return
        if firing_id is None:
            log.debug("game day %s at %s is served by another replica", schedule_id, fire_time.isoformat())
            return
        await self._serve(row, fire_time, firing_id)

    async def _serve(self, row: ScheduleRow, fire_time: datetime, firing_id: int) -> None:
        runs: list[dict[str, Any]] = []
        detail: dict[str, Any] = {"runs": runs, "webhook": None}
        try:
            reason = await self._reason_to_skip(row, firing_id)
            if reason:
                outcome = "skipped"
                detail["reason"] = reason
            else:
                await self._run_experiments(row, runs)
                outcome = worst(run["status"] for run in runs)
            if row.webhook:
                body = payload(row.id, firing_id, fire_time, outcome, runs, reason)
                detail["webhook"] = await notify(row.webhook, body)
            await self.store.finish_firing(firing_id, outcome, detail)
            log.info("game day %s at %s: %s", row.id, fire_time.isoformat(), reason or outcome)
        except asyncio.CancelledError:
            detail["reason"] = "the game-day scheduler stopped before the firing ended"
            await self._finish_anyway(firing_id, "interrupted", detail)
            raise
        except Exception as exc:
            log.exception("game day %s at %s failed", row.id, fire_time.isoformat())
            detail["reason"] = f"the firing failed: {type(exc).__name__}: {exc}"
            await self._finish_anyway(firing_id, "error", detail)

    async def _reason_to_skip(self, row: ScheduleRow, firing_id: int) -> str:
        if (halt := await self.store.get_state(HALT)) is not None:
            return f"halted: {halt.get('reason') or 'no reason given'}"
        if row.overlap == "forbid" and (live := await self.store.live_firings(row.id, firing_id)):
            return f"overlap: {live} other firing(s) of this schedule still running"
        return ""

    async def _run_experiments(self, row: ScheduleRow, runs: list[dict[str, Any]]) -> None:
        for experiment in row.experiments:
            entry: dict[str, Any] = {"experiment": experiment, "run_id": None, "status": "error", "reason": ""}
            runs.append(entry)
            try:
                entry["run_id"] = await self.launcher.start_run(experiment, f"schedule:{row.id}", row.id)
            except ChaosServiceError as exc:  # halted, busy, unknown experiment: refused, not a bug
                entry["reason"] = f"not started: {exc}"
                log.warning("game day %s: %s not started: %s", row.id, experiment, exc)
                continue
            except Exception as exc:
                entry["reason"] = f"not started: {type(exc).__name__}: {exc}"
                log.exception("game day %s: starting %s failed", row.id, experiment)
                continue
            entry["status"] = "running"
            try:
                entry["status"], entry["reason"] = await self.launcher.wait_run(entry["run_id"])
            except Exception as exc:
                entry["status"], entry["reason"] = "error", f"lost track of the run: {type(exc).__name__}: {exc}"
                log.exception("game day %s: following run %s failed", row.id, entry["run_id"])

    async def _finish_anyway(self, firing_id: int, outcome: str, detail: dict[str, Any]) -> None:
        try:
            await self.store.finish_firing(firing_id, outcome, detail)
        except Exception:
            log.exception("firing %d stays open until this replica restarts: not recorded as %s", firing_id, outcome)
