"""Pytest fixtures for private PostgreSQL and Redis servers; registered by tests/conftest.py.

`postgres_server` / `redis_server` are shared by the whole session. When the server binaries are missing
they fall back to an existing server named by CHAOS_TEST_POSTGRES_URL / CHAOS_TEST_REDIS_URL (an
`ExternalServer`: it has `url`, `host` and `port` but cannot be killed), and skip when neither exists.
Tests that kill, pause or restart a server use `private_postgres_server` / `private_redis_server`, which are
always local, fresh for the test, and skip when the binaries are missing.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import asyncpg
import pytest

from chaos_service.sandbox.datastores import (
    DatastoreUnavailable,
    ExternalServer,
    PostgresServer,
    RedisServer,
)

POSTGRES_URL_ENV = "CHAOS_TEST_POSTGRES_URL"
REDIS_URL_ENV = "CHAOS_TEST_REDIS_URL"

_Server = TypeVar("_Server", PostgresServer, RedisServer)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer | ExternalServer]:
    """A PostgreSQL server for the whole session (local if possible, else $CHAOS_TEST_POSTGRES_URL)."""
    yield from _local_or_external(PostgresServer, POSTGRES_URL_ENV, default_port=5432)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer | ExternalServer]:
    """A Redis server for the whole session (local if possible, else $CHAOS_TEST_REDIS_URL)."""
    yield from _local_or_external(RedisServer, REDIS_URL_ENV, default_port=6379)


@pytest.fixture
def private_postgres_server() -> Iterator[PostgresServer]:
    """A fresh local PostgreSQL server that the test may kill, pause and restart."""
    with local_or_skip(PostgresServer) as server:
        yield server


@pytest.fixture
def private_redis_server() -> Iterator[RedisServer]:
    """A fresh local Redis server that the test may kill, pause and restart."""
    with local_or_skip(RedisServer) as server:
        yield server


def require_local(server: _Server | ExternalServer) -> _Server:
    """Skip the calling test unless `server` is one we run (and so may kill or restart)."""
    if isinstance(server, ExternalServer):
        pytest.skip(f"{server.url} is an external server; this test needs to kill or restart it")
    return server


def local_or_skip(factory: Callable[[], _Server]) -> _Server:
    """`factory()`, or skip the calling test when the server binaries are missing."""
    try:
        return factory()
    except DatastoreUnavailable as exc:
        pytest.skip(str(exc))


def _local_or_external(
    factory: Callable[[], _Server], env_var: str, *, default_port: int
) -> Iterator[_Server | ExternalServer]:
    try:
        server = factory()
    except DatastoreUnavailable as exc:
        url = os.environ.get(env_var)
        if not url:
            pytest.skip(f"no local server and {env_var} is not set: {exc}")
        yield ExternalServer.from_url(url, default_port)
        return
    with server:
        yield server


def pg_fetch(url: str, sql: str) -> Any:
    """One value from ``sql`` over a fresh asyncpg connection to ``url``."""

    async def run() -> Any:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return asyncio.run(run())
