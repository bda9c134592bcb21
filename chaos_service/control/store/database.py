"""The store: one async SQLAlchemy engine over SQLite or Postgres, and the operations the control
plane needs that depend on the database's guarantees (a firing claimed once across replicas)."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from chaos_service.control.auth import ROLES
from chaos_service.control.store import migrate
from chaos_service.control.store.tables import applied_faults, audit_log, firings, runs, tokens
from chaos_service.control.store.urls import store_url

TOKEN_PREFIX = "cst_"


@dataclass(frozen=True)
class TokenRecord:
    id: str
    name: str
    role: str


@dataclass(frozen=True)
class FaultRecord:
    id: int
    run_id: str | None
    name: str
    driver: str
    handle: dict[str, Any]
    expires_at: float


def hash_secret(secret: str) -> str:
    """Tokens are 256-bit random strings: one SHA-256 is as hard to reverse as a slow hash."""
    return hashlib.sha256(secret.encode()).hexdigest()


class Store:
    def __init__(self, engine: AsyncEngine, replica: str) -> None:
        self.engine = engine
        self.replica = replica

    async def close(self) -> None:
        await self.engine.dispose()

    # -- runs -----------------------------------------------------------------------------------

    async def create_run(self, run_id: str, experiment: str, started_by: str) -> None:
        """A run this replica is starting (status ``running``)."""
        row = {"id": run_id, "experiment": experiment, "started_by": started_by, "replica": self.replica}
        async with self.engine.begin() as connection:
            await connection.execute(insert(runs).values(**row, status="running", reason="", created_at=time.time()))

    async def finish_run(self, run_id: str, status: str, reason: str = "") -> None:
        async with self.engine.begin() as connection:
            await connection.execute(
                update(runs).where(runs.c.id == run_id).values(status=status, reason=reason, finished_at=time.time())
            )

    async def run_status(self, run_id: str) -> str | None:
        async with self.engine.connect() as connection:
            return (await connection.execute(select(runs.c.status).where(runs.c.id == run_id))).scalar()

    async def interrupt_runs_of_this_replica(self, reason: str) -> list[str]:
        """Mark the runs this replica left ``running`` (it died mid-run) ``interrupted``; their ids."""
        async with self.engine.begin() as connection:
            query = select(runs.c.id).where(runs.c.replica == self.replica, runs.c.status == "running")
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
            return set((await connection.execute(select(runs.c.id).where(runs.c.status == "running"))).scalars())

    # -- schedules ------------------------------------------------------------------------------

    async def claim_firing(self, schedule_id: str, fire_time: float) -> bool:
        """Whether this replica fires ``schedule_id`` at ``fire_time``: true for exactly one caller,
        whichever replica it is, by the table's unique (schedule, fire time) constraint."""
        row = {"schedule_id": schedule_id, "fire_time": fire_time, "replica": self.replica, "claimed_at": time.time()}
        try:
            async with self.engine.begin() as connection:
                await connection.execute(insert(firings).values(**row))
        except IntegrityError:
            return False
        return True

    # -- tokens ---------------------------------------------------------------------------------

    async def create_token(self, name: str, role: str) -> tuple[TokenRecord, str]:
        """A new token and its secret; only the secret's hash is stored, so it is shown once."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        record = TokenRecord(uuid.uuid4().hex[:12], name, role)
        async with self.engine.begin() as connection:
            await connection.execute(
                insert(tokens).values(
                    id=record.id, name=name, role=role, secret_hash=hash_secret(secret), created_at=time.time()
                )
            )
        return record, secret

    async def find_token(self, secret: str) -> TokenRecord | None:
        """The live token with this secret, or None (unknown or revoked)."""
        query = select(tokens.c.id, tokens.c.name, tokens.c.role).where(
            tokens.c.secret_hash == hash_secret(secret), tokens.c.revoked_at.is_(None)
        )
        async with self.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else TokenRecord(row.id, row.name, row.role)

    async def list_tokens(self) -> list[tuple[TokenRecord, float, float | None]]:
        """Every token with when it was created and revoked (never its secret)."""
        query = select(tokens.c.id, tokens.c.name, tokens.c.role, tokens.c.created_at, tokens.c.revoked_at)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query.order_by(tokens.c.created_at))).all()
        return [(TokenRecord(r.id, r.name, r.role), r.created_at, r.revoked_at) for r in rows]

    async def revoke_token(self, token_id: str) -> bool:
        async with self.engine.begin() as connection:
            result = await connection.execute(
                update(tokens)
                .where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            )
        return bool(result.rowcount)

    # -- faults ---------------------------------------------------------------------------------

    async def record_fault(
        self, run_id: str | None, name: str, driver: str, handle: dict[str, Any], expires_at: float
    ) -> int:
        """Record a fault before it is applied; returns its id."""
        row = {"run_id": run_id, "name": name, "driver": driver, "handle": handle}
        async with self.engine.begin() as connection:
            result = await connection.execute(
                insert(applied_faults).values(**row, recorded_at=time.time(), expires_at=expires_at)
            )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    async def fault_removed(self, fault_id: int) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(
                update(applied_faults).where(applied_faults.c.id == fault_id).values(removed_at=time.time())
            )

    async def open_faults(self, now: float | None = None) -> list[FaultRecord]:
        """Faults recorded and not removed whose ttl has not yet passed."""
        now = time.time() if now is None else now
        query = select(applied_faults).where(applied_faults.c.removed_at.is_(None), applied_faults.c.expires_at > now)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query.order_by(applied_faults.c.id))).all()
        return [FaultRecord(r.id, r.run_id, r.name, r.driver, dict(r.handle), r.expires_at) for r in rows]

    # -- audit ----------------------------------------------------------------------------------

    async def audit(self, actor: str, action: str, target: str = "", **detail: Any) -> None:
        row = {"at": time.time(), "actor": actor, "action": action, "target": target, "detail": detail}
        async with self.engine.begin() as connection:
            await connection.execute(insert(audit_log).values(**row))


async def open_store(location: str | Path, replica: str | None = None) -> Store:
    """The store at ``location`` (a file path, ``sqlite:///…`` or ``postgresql://…``), migrated
    to the current schema. Raises `InvalidInput` for a location that cannot be a store."""
    url = store_url(location)
    engine = create_async_engine(url, pool_pre_ping=url.get_backend_name() == "postgresql")
    try:
        await migrate.upgrade(engine)
    except BaseException:
        await engine.dispose()
        raise
    return Store(engine, replica or uuid.uuid4().hex[:8])
