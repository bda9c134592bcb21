"""Game days on real stores (SQLite, and Postgres where replicas race): each fire time served once across
replicas, experiments in order, overlap and halt policies, catch-up at start-up, webhooks."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chaos_service.control.scheduler.cron import next_fire_times, parse_schedule, upcoming
from chaos_service.control.scheduler.gamedays import GameDays, worst
from chaos_service.control.store import Store, open_store
from chaos_service.control.store.catalog import HALT
from chaos_service.control.store.schedules import FiringRow, ScheduleRow
from chaos_service.errors import NotFound
from tests.support.webhook import Receiver

EVERY_SECOND = "* * * * * *"
WAIT = 10.0  # seconds any awaited event may take before the test fails


@pytest.fixture
def location(store_location: str) -> str:
    return store_location


@pytest.fixture
def sqlite(tmp_path: Path) -> str:
    return str(tmp_path / "chaos.db")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


class Watched:
    """Something tests wait on: ``until(predicate)`` returns once the predicate holds after a change."""

    def __init__(self) -> None:
        self.changed = asyncio.Condition()

    async def touch(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def until(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT), self.changed:
            await self.changed.wait_for(predicate)


class Finished(Watched):
    """Every firing finished through the replicas' stores: (firing id, outcome, detail)."""

    def __init__(self) -> None:
        super().__init__()
        self.firings: list[tuple[int, str, dict[str, Any]]] = []

    def outcomes(self) -> list[str]:
        return [outcome for _, outcome, _ in self.firings]


class ObservedStore(Store):
    """A replica's real store that also tells the test when a firing is finished."""

    def __init__(self, store: Store, finished: Finished) -> None:
        super().__init__(store.engine, store.replica)
        self.finished = finished

    async def finish_firing(self, firing_id: int, outcome: str, detail: dict[str, Any]) -> None:
        await super().finish_firing(firing_id, outcome, detail)
        self.finished.firings.append((firing_id, outcome, copy.deepcopy(detail)))
        await self.finished.touch()


class Launcher(Watched):
    """A `RunLauncher` whose runs end as ``results`` says (passed by default) once ``gate`` is set; it
    refuses to start the experiments in ``refuse``, and logs every start and end in order."""

    def __init__(self, results: dict[str, tuple[str, str]] | None = None, refuse: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.results = results or {}
        self.refuse = refuse
        self.gate = asyncio.Event()
        self.gate.set()
        self.calls: list[tuple[str, str, str, str]] = []  # (experiment, started_by, schedule id, run id)
        self.log: list[tuple[str, str]] = []  # ("start" | "end", run id)
        self.live = 0

    async def start_run(self, experiment: str, started_by: str, schedule_id: str) -> str:
        if experiment in self.refuse:
            raise NotFound(f"no experiment named {experiment!r}")
        run_id = f"run-{len(self.calls)}"
        self.calls.append((experiment, started_by, schedule_id, run_id))
        self.log.append(("start", run_id))
        self.live += 1
        await self.touch()
        return run_id

    async def wait_run(self, run_id: str) -> tuple[str, str]:
        await self.gate.wait()
        self.live -= 1
        self.log.append(("end", run_id))
        await self.touch()
        experiment = next(call[0] for call in self.calls if call[3] == run_id)
        return self.results.get(experiment, ("passed", ""))


def schedule(
    schedule_id: str,
    experiments: list[str],
    *,
    cron: str = EVERY_SECOND,
    overlap: str = "allow",
    misfire: str = "skip",
    webhook: str | None = None,
    created_at: float | None = None,
    timezone: str = "Europe/Berlin",
) -> ScheduleRow:
    created = time.time() if created_at is None else created_at
    return ScheduleRow(schedule_id, cron, timezone, experiments, overlap, misfire, webhook, True, created)


@asynccontextmanager
async def replicas(
    location: str, count: int, finished: Finished, launcher: Launcher, **options: Any
) -> AsyncIterator[list[GameDays]]:
    """``count`` replicas on one store, each with its own connection pool, stopped and closed on exit."""
    stores = [ObservedStore(await open_store(location, f"replica-{n}"), finished) for n in range(count)]
    gamedays = [GameDays(store, launcher, **options) for store in stores]
    try:
        yield gamedays
    finally:
        for replica in gamedays:
            await replica.stop()
        for store in stores:
            await store.close()


def run_ids(firing: FiringRow) -> list[str]:
    return [run["run_id"] for run in (firing.detail or {}).get("runs", []) if run["run_id"] is not None]


def missed_two_hours_ago() -> tuple[str, datetime]:
    """A daily cron (in UTC) whose latest fire time was two to three hours ago, and that time."""
    now = datetime.now(UTC)
    cron = f"0 {(now - timedelta(hours=2)).hour} * * *"
    return cron, next_fire_times(parse_schedule(cron, "UTC"), now - timedelta(days=1), 1)[0]


def test_two_replicas_serve_each_fire_time_once_running_the_experiments_in_order(
    location: str, receiver: Receiver
) -> None:
    async def scenario() -> tuple[list[FiringRow], Launcher]:
        finished, launcher = Finished(), Launcher()
        async with replicas(location, 2, finished, launcher, sync_interval=60) as (a, b):
            await a.store.put_schedule(schedule("drill", ["first", "second"], webhook=receiver.url))
            await asyncio.gather(a.start(), b.start())
            await finished.until(lambda: finished.outcomes().count("passed") >= 3)
            await a.stop()
            await b.stop()
            return await a.store.list_firings("drill"), launcher

    firings, launcher = asyncio.run(scenario())
    served = [firing for firing in firings if firing.outcome == "passed"]
    assert len(served) >= 3
    assert len({firing.fire_time for firing in firings}) == len(firings)
    assert all(firing.fire_time == int(firing.fire_time) for firing in firings)
    # Every run the launcher started belongs to exactly one firing: no fire time was served twice.
    recorded = [run_id for firing in firings for run_id in run_ids(firing)]
    assert sorted(recorded) == sorted(call[3] for call in launcher.calls)
    assert {call[1:3] for call in launcher.calls} == {("schedule:drill", "drill")}
    for firing in served:
        assert firing.detail is not None
        runs = firing.detail["runs"]
        assert [(run["experiment"], run["status"]) for run in runs] == [("first", "passed"), ("second", "passed")]
        first, second = (run["run_id"] for run in runs)
        assert launcher.log.index(("end", first)) < launcher.log.index(("start", second))
        assert firing.detail["webhook"] == {"status": 200, "attempts": 1}
    told = {body["firing"]: body for body in receiver.bodies}
    assert len(told) == len(receiver.bodies)  # one POST per firing
    for firing in served:
        assert firing.detail is not None
        assert told[firing.id] == {
            "schedule": "drill",
            "firing": firing.id,
            "fire_time": datetime.fromtimestamp(firing.fire_time, UTC).isoformat(),
            "outcome": "passed",
            "runs": firing.detail["runs"],
        }


def test_with_overlap_forbidden_a_firing_is_skipped_while_another_replica_still_runs_one(sqlite: str) -> None:
    async def scenario() -> tuple[list[FiringRow], Launcher, list[tuple[int, str, dict[str, Any]]]]:
        finished, launcher = Finished(), Launcher()
        launcher.gate.clear()
        async with replicas(sqlite, 2, finished, launcher, sync_interval=60) as (a, b):
            await a.store.put_schedule(schedule("long", ["soak"], overlap="forbid"))
            await asyncio.gather(a.start(), b.start())
            await finished.until(lambda: "skipped" in finished.outcomes())
            assert launcher.live == 1 and len(launcher.calls) == 1
            launcher.gate.set()
            await finished.until(lambda: "passed" in finished.outcomes())
            await a.stop()
            await b.stop()
            return await a.store.list_firings("long"), launcher, finished.firings

    firings, launcher, seen = asyncio.run(scenario())
    [held] = [firing for firing in firings if run_ids(firing) == ["run-0"]]
    assert held.outcome == "passed"
    skipped = [firing for firing in firings if firing.outcome == "skipped"]
    assert skipped and all(firing.fire_time > held.fire_time for firing in skipped)
    assert all(firing.detail and firing.detail["reason"].startswith("overlap: 1 other firing") for firing in skipped)
    assert all(firing.detail and firing.detail["runs"] == [] for firing in skipped)
    assert seen[0][1] == "skipped"  # decided while the first firing was still running
    assert sorted(call[3] for call in launcher.calls) == sorted(r for firing in firings for r in run_ids(firing))


def test_with_overlap_allowed_firings_run_side_by_side_and_stopping_interrupts_them(sqlite: str) -> None:
    async def scenario() -> tuple[list[FiringRow], Launcher]:
        finished, launcher = Finished(), Launcher()
        launcher.gate.clear()
        async with replicas(sqlite, 1, finished, launcher, sync_interval=60) as (gamedays,):
            await gamedays.store.put_schedule(schedule("stacked", ["soak"]))
            await gamedays.start()
            await launcher.until(lambda: launcher.live >= 2)
            await gamedays.stop()
            return await gamedays.store.list_firings("stacked"), launcher

    firings, launcher = asyncio.run(scenario())
    assert len(launcher.calls) >= 2 and launcher.live == len(launcher.calls)
    assert sorted(run_id for firing in firings for run_id in run_ids(firing)) == sorted(c[3] for c in launcher.calls)
    for firing in firings:
        assert firing.outcome == "interrupted" and firing.detail is not None
        assert firing.detail["reason"] == "the game-day scheduler stopped before the firing ended"
        assert all((run["experiment"], run["status"]) == ("soak", "running") for run in firing.detail["runs"])


def test_a_halted_control_plane_skips_the_firing_and_says_so_to_the_webhook(sqlite: str, receiver: Receiver) -> None:
    async def scenario() -> tuple[list[FiringRow], Launcher, int]:
        finished, launcher = Finished(), Launcher()
        async with replicas(sqlite, 1, finished, launcher, sync_interval=60) as (gamedays,):
            await gamedays.store.put_schedule(schedule("drill", ["first"], webhook=receiver.url))
            await gamedays.store.set_state(HALT, {"reason": "incident 42"})
            await gamedays.start()
            await finished.until(lambda: bool(finished.firings))
            await gamedays.stop()
            return await gamedays.store.list_firings("drill"), launcher, finished.firings[0][0]

    firings, launcher, first = asyncio.run(scenario())
    assert launcher.calls == []
    [halted] = [firing for firing in firings if firing.id == first]
    assert halted.outcome == "skipped" and halted.detail is not None
    assert halted.detail == {"runs": [], "reason": "halted: incident 42", "webhook": {"status": 200, "attempts": 1}}
    body = next(body for body in receiver.bodies if body["firing"] == halted.id)
    assert (body["outcome"], body["reason"], body["runs"]) == ("skipped", "halted: incident 42", [])


def test_a_run_once_game_day_missed_while_no_replica_ran_is_fired_once_at_start(location: str) -> None:
    cron, missed = missed_two_hours_ago()
    three_hours_ago = time.time() - 3 * 3600

    async def scenario() -> tuple[dict[str, list[FiringRow]], Launcher]:
        finished, launcher = Finished(), Launcher()
        async with replicas(location, 2, finished, launcher, sync_interval=60) as (a, b):
            rows = [
                schedule(
                    "catch-up", ["a", "b"], cron=cron, misfire="run_once", created_at=three_hours_ago, timezone="UTC"
                ),
                schedule("skip", ["c"], cron=cron, created_at=three_hours_ago, timezone="UTC"),
                schedule(
                    "too-new", ["d"], cron=cron, misfire="run_once", created_at=missed.timestamp() + 1, timezone="UTC"
                ),
                schedule("served", ["e"], cron=cron, misfire="run_once", created_at=three_hours_ago, timezone="UTC"),
            ]
            for row in rows:
                await a.store.put_schedule(row)
            served = await a.store.claim_firing("served", missed.timestamp())
            assert served is not None
            await a.store.finish_firing(served, "passed", {"runs": []})
            await asyncio.gather(a.start(), b.start())
            await asyncio.gather(a.drain(), b.drain())
            return {row.id: await a.store.list_firings(row.id) for row in rows}, launcher

    firings, launcher = asyncio.run(scenario())
    [caught_up] = firings["catch-up"]
    assert caught_up.fire_time == missed.timestamp() and caught_up.outcome == "passed"
    assert [call[0] for call in launcher.calls] == ["a", "b"]
    assert firings["skip"] == [] and firings["too-new"] == []
    assert [firing.outcome for firing in firings["served"]] == ["passed"]


def test_a_run_once_catch_up_is_bounded_by_the_catch_up_window(sqlite: str) -> None:
    cron, _ = missed_two_hours_ago()

    async def scenario() -> list[FiringRow]:
        finished, launcher = Finished(), Launcher()
        async with replicas(sqlite, 1, finished, launcher, sync_interval=60, catch_up_window=3600) as (gamedays,):
            row = schedule(
                "catch-up", ["a"], cron=cron, misfire="run_once", timezone="UTC", created_at=time.time() - 3 * 3600
            )
            await gamedays.store.put_schedule(row)
            await gamedays.start()
            await gamedays.drain()
            return await gamedays.store.list_firings("catch-up")

    assert asyncio.run(scenario()) == []


def test_an_experiment_that_cannot_start_is_recorded_and_the_next_still_runs(sqlite: str, receiver: Receiver) -> None:
    cron, missed = missed_two_hours_ago()
    created = time.time() - 3 * 3600

    async def scenario() -> tuple[list[FiringRow], list[FiringRow]]:
        finished = Finished()
        launcher = Launcher(results={"flaky": ("failed", "p99 above 2s")}, refuse=("missing",))
        async with replicas(sqlite, 1, finished, launcher, sync_interval=60) as (gamedays,):
            for row in (
                schedule("mixed", ["ok", "missing", "flaky"], cron=cron, misfire="run_once", webhook=receiver.url),
                schedule("flaky", ["ok", "flaky"], cron=cron, misfire="run_once"),
            ):
                await gamedays.store.put_schedule(replace(row, created_at=created, timezone="UTC"))
            await gamedays.start()
            await gamedays.drain()
            return await gamedays.store.list_firings("mixed"), await gamedays.store.list_firings("flaky")

    [mixed], [flaky] = asyncio.run(scenario())
    assert (mixed.outcome, flaky.outcome) == ("error", "failed")
    assert mixed.fire_time == missed.timestamp() and mixed.detail is not None
    runs = mixed.detail["runs"]
    assert [(run["experiment"], run["status"], run["reason"]) for run in runs] == [
        ("ok", "passed", ""),
        ("missing", "error", "not started: no experiment named 'missing'"),
        ("flaky", "failed", "p99 above 2s"),
    ]
    assert runs[0]["run_id"] and runs[1]["run_id"] is None and runs[2]["run_id"]
    assert mixed.detail["webhook"] == {"status": 200, "attempts": 1}
    [body] = receiver.bodies
    assert (body["schedule"], body["outcome"], body["runs"]) == ("mixed", "error", runs)


@pytest.mark.parametrize(
    ("statuses", "outcome"),
    [
        ([], "passed"),
        (["passed", "passed"], "passed"),
        (["passed", "failed", "passed"], "failed"),
        (["aborted", "failed"], "aborted"),
        (["precondition_failed", "failed"], "precondition_failed"),
        (["interrupted", "aborted"], "interrupted"),
        (["failed", "error", "aborted"], "error"),
        (["passed", "something-new"], "error"),
    ],
)
def test_a_firings_outcome_is_its_worst_runs(statuses: list[str], outcome: str) -> None:
    assert worst(statuses) == outcome


def test_sync_follows_schedules_changed_through_another_replica_and_skips_bad_rows(sqlite: str) -> None:
    thursdays = ScheduleRow("thursdays", "0 14 * * 4", "Europe/Berlin", ["a"], "forbid", "skip", None, True, 0.0)

    async def scenario() -> list[dict[str, datetime | None]]:
        finished, launcher = Finished(), Launcher()
        other = await open_store(sqlite, "other")
        seen = []
        try:
            async with replicas(sqlite, 1, finished, launcher, sync_interval=3600) as (gamedays,):
                await gamedays.start()
                seen.append(gamedays.next_run_times())
                await other.put_schedule(thursdays)
                await other.put_schedule(replace(thursdays, id="broken", cron="0 25 * * *"))
                await other.put_schedule(replace(thursdays, id="mars", timezone="Mars/Base"))
                await gamedays.sync()
                seen.append(gamedays.next_run_times())
                await other.put_schedule(replace(thursdays, cron="0 15 * * 4"))
                await other.put_schedule(replace(thursdays, id="broken", cron="0 23 * * *"))
                await gamedays.sync()
                seen.append(gamedays.next_run_times())
                await other.put_schedule(replace(thursdays, enabled=False))
                await other.delete_schedule("broken")
                await gamedays.sync()
                seen.append(gamedays.next_run_times())
        finally:
            await other.close()
        return seen

    empty, added, changed, removed = asyncio.run(scenario())
    assert empty == {} and removed == {}
    assert added == {"thursdays": upcoming(thursdays, 1)[0]}
    assert changed == {
        "thursdays": upcoming(replace(thursdays, cron="0 15 * * 4"), 1)[0],
        "broken": upcoming(replace(thursdays, cron="0 23 * * *"), 1)[0],
    }


def test_the_sync_loop_picks_up_a_schedule_created_through_another_replica(sqlite: str) -> None:
    async def scenario() -> Launcher:
        finished, launcher = Finished(), Launcher()
        other = await open_store(sqlite, "other")
        try:
            async with replicas(sqlite, 1, finished, launcher, sync_interval=0.1) as (gamedays,):
                await gamedays.start()
                await other.put_schedule(schedule("late", ["x"]))
                await launcher.until(lambda: bool(launcher.calls))
        finally:
            await other.close()
        return launcher

    assert asyncio.run(scenario()).calls[0] == ("x", "schedule:late", "late", "run-0")
