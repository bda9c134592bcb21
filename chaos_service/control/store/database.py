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

from sqlalchemy import event, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from chaos_service.control.auth import ROLES
from chaos_service.control.store import migrate
from chaos_service.control.store.catalog import HALT, CatalogTables
from chaos_service.control.store.runs import RunTables
from chaos_service.control.store.schedules import ScheduleTables
from chaos_service.control.store.tables import applied_faults, audit_log, control_state, tokens
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


class HaltedStore(Exception):
    """A fault was not recorded: the control plane is halted (the message is the halt's reason)."""


@dataclass(frozen=True)
class AuditEntry:
    at: float
    actor: str
    action: str
    target: str
    detail: dict[str, Any]


def hash_secret(secret: str) -> str:
    """Tokens are 256-bit random strings: one SHA-256 is as hard to reverse as a slow hash."""
    return hashlib.sha256(secret.encode()).hexdigest()


class Store(RunTables, CatalogTables, ScheduleTables):
    """Every table the control plane keeps, for one replica (``replica`` names it in rows it owns)."""

    def __init__(self, engine: AsyncEngine, replica: str) -> None:
        self.engine = engine
        self.replica = replica

    async def close(self) -> None:
        await self.engine.dispose()

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
        """Record a fault before it is applied; returns its id.

        Raises:
            HaltedStore: the control plane is halted (checked in the same transaction); nothing recorded.
        """
        row = {"run_id": run_id, "name": name, "driver": driver, "handle": handle}
        async with self.engine.begin() as connection:
            halt = (await connection.execute(select(control_state.c.value).where(control_state.c.key == HALT))).scalar()
            if halt is not None:
                raise HaltedStore(str(dict(halt).get("reason") or "no reason given"))
            result = await connection.execute(
                insert(applied_faults).values(**row, recorded_at=time.time(), expires_at=expires_at)
            )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    async def fault_applied(self, fault_id: int, handle: dict[str, Any], expires_at: float) -> None:
        """What the driver created for a recorded fault, so that another process can remove it."""
        async with self.engine.begin() as connection:
            await connection.execute(
                update(applied_faults)
                .where(applied_faults.c.id == fault_id)
                .values(handle=handle, expires_at=expires_at)
            )

    async def faults_removed(self, fault_ids: list[int]) -> None:
        if fault_ids:
            async with self.engine.begin() as connection:
                await connection.execute(
                    update(applied_faults).where(applied_faults.c.id.in_(fault_ids)).values(removed_at=time.time())
                )

    async def fault_removed(self, fault_id: int) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(
                update(applied_faults).where(applied_faults.c.id == fault_id).values(removed_at=time.time())
            )

    async def open_faults(self, now: float | None = None, *, fault_id: int | None = None) -> list[FaultRecord]:
        """Faults recorded and not removed whose ttl has not yet passed (only ``fault_id``, if given)."""
        now = time.time() if now is None else now
        query = select(applied_faults).where(applied_faults.c.removed_at.is_(None), applied_faults.c.expires_at > now)
        if fault_id is not None:
            query = query.where(applied_faults.c.id == fault_id)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query.order_by(applied_faults.c.id))).all()
        return [FaultRecord(r.id, r.run_id, r.name, r.driver, dict(r.handle), r.expires_at) for r in rows]

    async def overdue_faults(self, now: float | None = None) -> list[FaultRecord]:
        """Faults recorded and not removed whose ttl has passed: gone from an engine, not from a Toxiproxy."""
        now = time.time() if now is None else now
        query = select(applied_faults).where(applied_faults.c.removed_at.is_(None), applied_faults.c.expires_at <= now)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query.order_by(applied_faults.c.id))).all()
        return [FaultRecord(r.id, r.run_id, r.name, r.driver, dict(r.handle), r.expires_at) for r in rows]

    # -- audit ----------------------------------------------------------------------------------

    async def audit(self, actor: str, action: str, target: str = "", **detail: Any) -> None:
        row = {"at": time.time(), "actor": actor, "action": action, "target": target, "detail": detail}
        async with self.engine.begin() as connection:
            await connection.execute(insert(audit_log).values(**row))

    async def audit_entries(self, limit: int = 100) -> list[AuditEntry]:
        """Newest first."""
        query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [AuditEntry(r.at, r.actor, r.action, r.target, dict(r.detail)) for r in rows]


async def open_store(location: str | Path, replica: str | None = None) -> Store:
    """The store at ``location`` (a file path, ``sqlite:///…`` or ``postgresql://…``), migrated
    to the current schema. Raises `InvalidInput` for a location that cannot be a store."""
    url = store_url(location)
    engine = create_async_engine(url, pool_pre_ping=url.get_backend_name() == "postgresql")
    if url.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_for_several_processes)
    try:
        await migrate.upgrade(engine)
    except BaseException:
        await engine.dispose()
        raise
    return Store(engine, replica or uuid.uuid4().hex[:8])


def _sqlite_for_several_processes(connection: Any, _record: Any) -> None:
    # A serving process and its run workers write one file: WAL lets readers go on while one
    # writes, and a busy timeout makes a writer wait its turn instead of failing. In WAL mode,
    # synchronous=NORMAL keeps every commit through a process crash (only a power loss can take
    # the last ones) and spares each commit an fsync: a fault is recorded in well under a ms.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()
