"""Runs, their event stream and their reports, as the store keeps them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from chaos_service.control.store.tables import run_events, run_reports, runs

#: Statuses of a run that has not ended.
LIVE = ("pending", "running")
REPORT_KINDS = ("journal", "junit", "html")


@dataclass(frozen=True)
class RunRow:
    id: str
    experiment: str
    status: str
    reason: str
    started_by: str
    replica: str
    created_at: float
    finished_at: float | None
    dry_run: bool
    abort_requested: str | None
    schedule_id: str | None


@dataclass(frozen=True)
class RunEvent:
    seq: int
    at: float
    kind: str
    data: dict[str, Any]


class RunTables:
    engine: AsyncEngine
    replica: str

    async def create_run(
        self,
        run_id: str,
        experiment: str,
        started_by: str,
        *,
        dry_run: bool = False,
        schedule_id: str | None = None,
        status: str = "running",
    ) -> None:
        """A run this replica starts."""
        row = {"id": run_id, "experiment": experiment, "started_by": started_by, "replica": self.replica}
        values = {**row, "status": status, "reason": "", "created_at": time.time(), "dry_run": int(dry_run)}
        async with self.engine.begin() as connection:
            await connection.execute(insert(runs).values(**values, schedule_id=schedule_id))

    async def set_run_status(self, run_id: str, status: str) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(update(runs).where(runs.c.id == run_id).values(status=status))

    async def finish_run(self, run_id: str, status: str, reason: str = "") -> bool:
        """Mark a live run ended; false when it had ended already (the first verdict stands)."""
        async with self.engine.begin() as connection:
            result = await connection.execute(
                update(runs)
                .where(runs.c.id == run_id, runs.c.status.in_(LIVE))
                .values(status=status, reason=reason, finished_at=time.time())
            )
        return bool(result.rowcount)

    async def run_status(self, run_id: str) -> str | None:
        async with self.engine.connect() as connection:
            return (await connection.execute(select(runs.c.status).where(runs.c.id == run_id))).scalar()

    async def get_run(self, run_id: str) -> RunRow | None:
        async with self.engine.connect() as connection:
            row = (await connection.execute(select(*_RUN_COLUMNS).where(runs.c.id == run_id))).first()
        return None if row is None else _run(row)

    async def list_runs(
        self,
        *,
        status: str | None = None,
        experiment: str | None = None,
        schedule_id: str | None = None,
        limit: int = 100,
        before: float | None = None,
    ) -> list[RunRow]:
        """Newest first; ``before`` pages on with the last ``created_at`` seen."""
        query = select(*_RUN_COLUMNS)
        if status is not None:
            query = query.where(runs.c.status == status)
        if experiment is not None:
            query = query.where(runs.c.experiment == experiment)
        if schedule_id is not None:
            query = query.where(runs.c.schedule_id == schedule_id)
        if before is not None:
            query = query.where(runs.c.created_at < before)
        query = query.order_by(runs.c.created_at.desc()).limit(limit)
        async with self.engine.connect() as connection:
            return [_run(row) for row in (await connection.execute(query)).all()]

    async def count_runs_by_status(self) -> dict[str, int]:
        query = select(runs.c.status, func.count()).group_by(runs.c.status)
        async with self.engine.connect() as connection:
            return {status: count for status, count in (await connection.execute(query)).all()}

    async def request_abort(self, run_id: str, reason: str) -> bool:
        """Ask whichever replica runs ``run_id`` to abort it; false when it is not live."""
        async with self.engine.begin() as connection:
            result = await connection.execute(
                update(runs)
                .where(runs.c.id == run_id, runs.c.status.in_(LIVE), runs.c.abort_requested.is_(None))
                .values(abort_requested=reason)
            )
        return bool(result.rowcount)

    async def request_abort_all(self, reason: str) -> list[str]:
        """Ask for every live run not yet asked to be aborted (a halt); their ids."""
        unasked = (runs.c.status.in_(LIVE), runs.c.abort_requested.is_(None))
        async with self.engine.begin() as connection:
            ids = list((await connection.execute(select(runs.c.id).where(*unasked))).scalars())
            if ids:
                await connection.execute(update(runs).where(runs.c.id.in_(ids)).values(abort_requested=reason))
        return ids

    async def abort_requests(self) -> dict[str, str]:
        """This replica's live runs that someone asked to abort, with the reason."""
        query = select(runs.c.id, runs.c.abort_requested).where(
            runs.c.replica == self.replica, runs.c.status.in_(LIVE), runs.c.abort_requested.is_not(None)
        )
        async with self.engine.connect() as connection:
            return {row.id: row.abort_requested for row in (await connection.execute(query)).all()}

    async def interrupt_runs_of_this_replica(self, reason: str) -> list[str]:
        """Mark the runs this replica left live (it died mid-run) ``interrupted``; their ids."""
        async with self.engine.begin() as connection:
            query = select(runs.c.id).where(runs.c.replica == self.replica, runs.c.status.in_(LIVE))
            ids = list((await connection.execute(query)).scalars())
            if ids:
                await connection.execute(
                    update(runs)
                    .where(runs.c.id.in_(ids))
                    .values(status="interrupted", reason=reason, finished_at=time.time())
                )
        return ids

    async def running_run_ids(self) -> set[str]:
        async with self.engine.connect() as connection:
            return set((await connection.execute(select(runs.c.id).where(runs.c.status.in_(LIVE)))).scalars())

    # -- events and reports ----------------------------------------------------------------------

    async def add_event(self, run_id: str, kind: str, data: dict[str, Any]) -> int:
        """Append to the run's event stream (one writer per run: the process running it); its seq."""
        async with self.engine.begin() as connection:
            last = (
                await connection.execute(select(func.max(run_events.c.seq)).where(run_events.c.run_id == run_id))
            ).scalar()
            seq = (last or 0) + 1
            await connection.execute(
                insert(run_events).values(run_id=run_id, seq=seq, at=time.time(), kind=kind, data=data)
            )
        return seq

    async def events_after(self, run_id: str, seq: int = 0, limit: int = 500) -> list[RunEvent]:
        query = (
            select(run_events.c.seq, run_events.c.at, run_events.c.kind, run_events.c.data)
            .where(run_events.c.run_id == run_id, run_events.c.seq > seq)
            .order_by(run_events.c.seq)
            .limit(limit)
        )
        async with self.engine.connect() as connection:
            return [RunEvent(r.seq, r.at, r.kind, dict(r.data)) for r in (await connection.execute(query)).all()]

    async def latest_event(self, run_id: str, kind: str) -> RunEvent | None:
        query = (
            select(run_events.c.seq, run_events.c.at, run_events.c.kind, run_events.c.data)
            .where(run_events.c.run_id == run_id, run_events.c.kind == kind)
            .order_by(run_events.c.seq.desc())
            .limit(1)
        )
        async with self.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else RunEvent(row.seq, row.at, row.kind, dict(row.data))

    async def save_report(self, run_id: str, kind: str, content: str) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(insert(run_reports).values(run_id=run_id, kind=kind, content=content))

    async def report(self, run_id: str, kind: str) -> str | None:
        query = select(run_reports.c.content).where(run_reports.c.run_id == run_id, run_reports.c.kind == kind)
        async with self.engine.connect() as connection:
            return (await connection.execute(query)).scalar()


_RUN_COLUMNS = (
    runs.c.id,
    runs.c.experiment,
    runs.c.status,
    runs.c.reason,
    runs.c.started_by,
    runs.c.replica,
    runs.c.created_at,
    runs.c.finished_at,
    runs.c.dry_run,
    runs.c.abort_requested,
    runs.c.schedule_id,
)


def _run(row: Any) -> RunRow:
    return RunRow(
        row.id,
        row.experiment,
        row.status,
        row.reason,
        row.started_by,
        row.replica,
        row.created_at,
        row.finished_at,
        bool(row.dry_run),
        row.abort_requested,
        row.schedule_id,
    )
