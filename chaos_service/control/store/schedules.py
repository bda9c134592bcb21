"""Game-day schedules and their firings, each claimed once across replicas."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from chaos_service.control.store.tables import firings, schedules


@dataclass(frozen=True)
class ScheduleRow:
    id: str
    cron: str
    timezone: str
    experiments: list[str]
    overlap: str
    misfire: str
    webhook: str | None
    enabled: bool
    created_at: float


@dataclass(frozen=True)
class FiringRow:
    id: int
    schedule_id: str
    fire_time: float
    replica: str
    claimed_at: float
    outcome: str | None
    finished_at: float | None
    detail: dict[str, Any] | None


class ScheduleTables:
    engine: AsyncEngine
    replica: str

    async def put_schedule(self, schedule: ScheduleRow) -> bool:
        """Create or replace a schedule; true when it was new. Past firings are kept."""
        values = {
            "cron": schedule.cron,
            "timezone": schedule.timezone,
            "experiments": list(schedule.experiments),
            "overlap": schedule.overlap,
            "misfire": schedule.misfire,
            "webhook": schedule.webhook,
            "enabled": int(schedule.enabled),
        }
        async with self.engine.begin() as connection:
            result = await connection.execute(update(schedules).where(schedules.c.id == schedule.id).values(**values))
            if result.rowcount:
                return False
            await connection.execute(insert(schedules).values(id=schedule.id, created_at=schedule.created_at, **values))
        return True

    async def get_schedule(self, schedule_id: str) -> ScheduleRow | None:
        async with self.engine.connect() as connection:
            row = (await connection.execute(select(schedules).where(schedules.c.id == schedule_id))).first()
        return None if row is None else _schedule(row)

    async def list_schedules(self) -> list[ScheduleRow]:
        async with self.engine.connect() as connection:
            rows = (await connection.execute(select(schedules).order_by(schedules.c.id))).all()
        return [_schedule(row) for row in rows]

    async def delete_schedule(self, schedule_id: str) -> bool:
        async with self.engine.begin() as connection:
            await connection.execute(delete(firings).where(firings.c.schedule_id == schedule_id))
            result = await connection.execute(delete(schedules).where(schedules.c.id == schedule_id))
        return bool(result.rowcount)

    # -- firings ----------------------------------------------------------------------------------

    async def claim_firing(self, schedule_id: str, fire_time: float) -> int | None:
        """The firing's id if this replica fires ``schedule_id`` at ``fire_time``, else None: exactly
        one caller gets an id, whichever replica it is, by the unique (schedule, fire time) row."""
        row = {"schedule_id": schedule_id, "fire_time": fire_time, "replica": self.replica, "claimed_at": time.time()}
        try:
            async with self.engine.begin() as connection:
                result = await connection.execute(insert(firings).values(**row))
        except IntegrityError:
            return None
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    async def finish_firing(self, firing_id: int, outcome: str, detail: dict[str, Any]) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(
                update(firings)
                .where(firings.c.id == firing_id)
                .values(outcome=outcome, detail=detail, finished_at=time.time())
            )

    async def live_firings(self, schedule_id: str, other_than: int) -> int:
        """How many other firings of the schedule have not finished (for the overlap policy)."""
        query = select(func.count()).where(
            firings.c.schedule_id == schedule_id, firings.c.outcome.is_(None), firings.c.id != other_than
        )
        async with self.engine.connect() as connection:
            return int((await connection.execute(query)).scalar() or 0)

    async def last_fire_time(self, schedule_id: str) -> float | None:
        query = select(func.max(firings.c.fire_time)).where(firings.c.schedule_id == schedule_id)
        async with self.engine.connect() as connection:
            last = (await connection.execute(query)).scalar()
        return None if last is None else float(last)

    async def list_firings(self, schedule_id: str, limit: int = 50) -> list[FiringRow]:
        query = (
            select(firings)
            .where(firings.c.schedule_id == schedule_id)
            .order_by(firings.c.fire_time.desc())
            .limit(limit)
        )
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [
            FiringRow(r.id, r.schedule_id, r.fire_time, r.replica, r.claimed_at, r.outcome, r.finished_at, r.detail)
            for r in rows
        ]

    async def interrupt_firings_of_this_replica(self) -> int:
        """Firings this replica left unfinished when it died: ``interrupted``, so overlap stops waiting."""
        async with self.engine.begin() as connection:
            result = await connection.execute(
                update(firings)
                .where(firings.c.replica == self.replica, firings.c.outcome.is_(None))
                .values(outcome="interrupted", finished_at=time.time())
            )
        return int(result.rowcount)


def _schedule(row: Any) -> ScheduleRow:
    return ScheduleRow(
        row.id,
        row.cron,
        row.timezone,
        list(row.experiments),
        row.overlap,
        row.misfire,
        row.webhook,
        bool(row.enabled),
        row.created_at,
    )
