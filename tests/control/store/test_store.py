"""The control plane's store on SQLite and on Postgres: migrations, firings claimed once, tokens, faults."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import insert, inspect, select

from chaos_service.control.store import Store, open_store, store_url
from chaos_service.control.store.migrate import current_version, head
from chaos_service.control.store.tables import metadata, schedules, tokens
from chaos_service.errors import InvalidInput


@pytest.fixture
def location(store_location: str) -> str:
    return store_location


async def opened(location: str, replica: str = "a") -> Store:
    return await open_store(location, replica)


def test_a_new_store_gets_every_table_and_the_newest_version(location: str) -> None:
    async def check() -> tuple[set[str], str | None]:
        store = await opened(location)
        try:
            async with store.engine.connect() as connection:
                names = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
            return names, await current_version(store.engine)
        finally:
            await store.close()

    names, version = asyncio.run(check())
    assert set(metadata.tables) <= names and "alembic_version" in names
    assert version == head()


def test_reopening_keeps_the_data_and_replicas_starting_together_both_open(location: str) -> None:
    async def check() -> str:
        first = await opened(location)
        _, secret = await first.create_token("ci", "operator")
        await first.close()
        again, other = await asyncio.gather(opened(location, "b"), opened(location, "c"))
        try:
            found = await again.find_token(secret)
            assert found is not None
            return found.role
        finally:
            await again.close()
            await other.close()

    assert asyncio.run(check()) == "operator"


def test_a_firing_is_claimed_by_exactly_one_replica(location: str) -> None:
    async def check() -> list[bool]:
        replicas = [await opened(location, f"r{n}") for n in range(3)]
        try:
            async with replicas[0].engine.begin() as connection:
                await connection.execute(
                    insert(schedules).values(
                        id="thursday", cron="0 14 * * THU", timezone="Europe/Berlin", experiments=["x.yaml"],
                        overlap="forbid", misfire="skip", enabled=1, created_at=time.time(),
                    )
                )  # fmt: skip
            fire_time = 1_800_000_000.0
            claims = [store.claim_firing("thursday", fire_time) for store in replicas for _ in range(4)]
            results = await asyncio.gather(*claims)
            assert await replicas[1].claim_firing("thursday", fire_time + 604_800) is not None  # next week's is new
            return results
        finally:
            for store in replicas:
                await store.close()

    results = asyncio.run(check())
    claimed = [firing_id for firing_id in results if firing_id is not None]
    assert len(claimed) == 1 and len(results) == 12


def test_tokens_are_stored_hashed_found_by_secret_and_revocable(location: str) -> None:
    async def check() -> None:
        store = await opened(location)
        try:
            record, secret = await store.create_token("alice", "admin")
            assert secret.startswith("cst_") and len(secret) > 40
            async with store.engine.connect() as connection:
                stored = (await connection.execute(select(tokens))).mappings().one()
            assert secret not in {str(value) for value in stored.values()}
            assert await store.find_token(secret) == record
            assert await store.find_token(secret + "x") is None
            assert await store.revoke_token(record.id) and not await store.revoke_token(record.id)
            assert await store.find_token(secret) is None
            with pytest.raises(ValueError, match="role must be one of viewer, operator, admin"):
                await store.create_token("bob", "root")
        finally:
            await store.close()

    asyncio.run(check())


def test_open_faults_are_those_neither_removed_nor_expired(location: str) -> None:
    async def check() -> list[str]:
        store = await opened(location)
        try:
            now = time.time()
            handle = {"proxy": "redis", "toxics": ["chaos-x-upstream"]}
            kept = await store.record_fault("run1", "kept", "engine", handle, now + 60)
            removed = await store.record_fault("run1", "removed", "engine", handle, now + 60)
            await store.record_fault(None, "expired", "engine", handle, now - 1)
            await store.fault_removed(removed)
            faults = await store.open_faults(now)
            assert [fault.id for fault in faults] == [kept] and faults[0].handle == handle
            return [fault.name for fault in faults]
        finally:
            await store.close()

    assert asyncio.run(check()) == ["kept"]


def test_store_locations() -> None:
    assert str(store_url("/var/lib/chaos.db")) == "sqlite+aiosqlite:////var/lib/chaos.db"
    assert store_url("sqlite:///x.db").drivername == "sqlite+aiosqlite"
    assert store_url("postgresql://u@db/chaos").drivername == "postgresql+asyncpg"
    assert store_url("postgres://u@db/chaos").drivername == "postgresql+asyncpg"
    for bad, message in (
        ("mysql://u@db/chaos", "must be SQLite or Postgres"),
        ("sqlite://", "needs a file"),
        ("postgresql://u@db:notaport/x", "does not parse"),
    ):
        with pytest.raises(InvalidInput, match=message):
            store_url(bad)
