"""Stored experiments and the switches every replica shares (halt)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from chaos_service.control.store.tables import control_state, experiments

HALT = "halt"


@dataclass(frozen=True)
class ExperimentRow:
    name: str
    title: str
    source: str
    created_at: float
    updated_at: float
    updated_by: str


class CatalogTables:
    engine: AsyncEngine

    async def create_experiment(self, name: str, title: str, source: str, by: str) -> bool:
        """Store a new experiment; false when the name is taken (nothing changed)."""
        now = time.time()
        row = {"name": name, "title": title, "source": source, "updated_by": by}
        try:
            async with self.engine.begin() as connection:
                await connection.execute(insert(experiments).values(**row, created_at=now, updated_at=now))
        except IntegrityError:
            return False
        return True

    async def update_experiment(self, name: str, title: str, source: str, by: str) -> bool:
        async with self.engine.begin() as connection:
            result = await connection.execute(
                update(experiments)
                .where(experiments.c.name == name)
                .values(title=title, source=source, updated_by=by, updated_at=time.time())
            )
        return bool(result.rowcount)

    async def get_experiment(self, name: str) -> ExperimentRow | None:
        async with self.engine.connect() as connection:
            row = (await connection.execute(select(experiments).where(experiments.c.name == name))).first()
        return None if row is None else _experiment(row)

    async def list_experiments(self) -> list[ExperimentRow]:
        async with self.engine.connect() as connection:
            rows = (await connection.execute(select(experiments).order_by(experiments.c.name))).all()
        return [_experiment(row) for row in rows]

    async def delete_experiment(self, name: str) -> bool:
        async with self.engine.begin() as connection:
            result = await connection.execute(delete(experiments).where(experiments.c.name == name))
        return bool(result.rowcount)

    # -- shared switches --------------------------------------------------------------------------

    async def set_state(self, key: str, value: dict[str, Any] | None) -> None:
        """Set (or clear, with None) a switch every replica reads."""
        async with self.engine.begin() as connection:
            await connection.execute(delete(control_state).where(control_state.c.key == key))
            if value is not None:
                await connection.execute(insert(control_state).values(key=key, value=value, updated_at=time.time()))

    async def get_state(self, key: str) -> dict[str, Any] | None:
        async with self.engine.connect() as connection:
            value = (await connection.execute(select(control_state.c.value).where(control_state.c.key == key))).scalar()
        return None if value is None else dict(value)


def _experiment(row: Any) -> ExperimentRow:
    return ExperimentRow(row.name, row.title, row.source, row.created_at, row.updated_at, row.updated_by)
