"""Runs, events and the tool's orders in Postgres (asyncpg), through the postgres proxy.

Every event is stored before it is sent, which is what makes a resume exact. Calls go
through a pool that replaces broken connections, and a call that fails on a broken
connection is retried; with the ``postgres_pool_never_reconnects`` defect there is one
connection, and once it breaks every call fails.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg

from chaos_service.sandbox.chat.config import ChatSettings
from chaos_service.sandbox.chat.events import RunEvent

log = logging.getLogger(__name__)
T = TypeVar("T")

POOL_SIZE = 20
STARTUP_WAIT = 15.0

#: Errors that mean the connection (not the statement) failed: retry on another one.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    ConnectionError,
    OSError,
    TimeoutError,
)

#: A call that ends like this leaves its connection in an unknown state: it is closed, not reused.
ABANDONED: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, asyncio.CancelledError)

SCHEMA = """
CREATE TABLE IF NOT EXISTS chat_runs (
    run_id text PRIMARY KEY,
    user_id text NOT NULL,
    client_msg_id text,
    content text NOT NULL,
    status text NOT NULL DEFAULT 'running',
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS chat_runs_client_msg ON chat_runs (user_id, client_msg_id);
CREATE TABLE IF NOT EXISTS chat_events (
    run_id text NOT NULL,
    seq integer NOT NULL,
    type text NOT NULL,
    wire text NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS chat_orders (
    user_id text PRIMARY KEY,
    order_id text NOT NULL,
    status text NOT NULL,
    lookups integer NOT NULL DEFAULT 0,
    last_lookup timestamptz
);
"""


class StoreUnavailable(Exception):
    """Postgres could not be reached, after the retries."""


class _Connections:
    """Hands out a connection for one call; `broken` is told when a call failed on it."""

    async def open(self, settings: ChatSettings) -> None:
        raise NotImplementedError

    def acquire(self) -> Any:  # an async context manager yielding an asyncpg connection
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class _Pool(_Connections):
    def __init__(self) -> None:
        self._pool: asyncpg.Pool | None = None

    async def open(self, settings: ChatSettings) -> None:
        self._pool = await asyncpg.create_pool(
            settings.postgres_url,
            min_size=1,
            max_size=POOL_SIZE,
            timeout=settings.db_timeout,
            command_timeout=settings.db_timeout,
        )
        self._timeout = settings.db_timeout

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        assert self._pool is not None
        async with self._pool.acquire(timeout=self._timeout) as connection:
            try:
                yield connection
            except ABANDONED:
                # The pool opens a fresh one next time. Terminating also spares the release a
                # reset round trip, which would hang on a connection that no longer answers.
                connection.terminate()
                raise

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()


class _SingleConnection(_Connections):
    """The ``postgres_pool_never_reconnects`` defect: one connection for the process's life."""

    def __init__(self) -> None:
        self._connection: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self, settings: ChatSettings) -> None:
        self._connection = await asyncpg.connect(
            settings.postgres_url, timeout=settings.db_timeout, command_timeout=settings.db_timeout
        )

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        assert self._connection is not None
        async with self._lock:
            yield self._connection

    async def close(self) -> None:
        if self._connection is not None:
            self._connection.terminate()


class ChatStore:
    """The back-end's Postgres calls, each retried on a broken connection."""

    def __init__(self, settings: ChatSettings) -> None:
        self.settings = settings
        never_reconnects = settings.has("postgres_pool_never_reconnects")
        self._connections: _Connections = _SingleConnection() if never_reconnects else _Pool()

    async def open(self) -> None:
        """Connect and create the schema, waiting up to `STARTUP_WAIT` s for Postgres to answer."""
        deadline = time.monotonic() + STARTUP_WAIT
        while True:
            try:
                await self._connections.open(self.settings)
                break
            except CONNECTION_ERRORS as exc:
                if time.monotonic() > deadline:
                    raise StoreUnavailable(f"cannot reach Postgres at {self.settings.postgres_url}: {exc}") from exc
                await asyncio.sleep(0.2)
            except asyncpg.PostgresError as exc:  # it answers, and refuses: a wrong database or role
                raise StoreUnavailable(f"Postgres at {self.settings.postgres_url} refused: {exc}") from exc
        await self._call(lambda connection: connection.execute(SCHEMA))

    async def close(self) -> None:
        await self._connections.close()

    async def _call(self, operation: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        attempts = self.settings.db_attempts
        for attempt in range(1, attempts + 1):
            try:
                async with self._connections.acquire() as connection:
                    return await operation(connection)
            except CONNECTION_ERRORS as exc:
                log.warning("postgres call failed (attempt %d/%d): %r", attempt, attempts, exc)
                if attempt == attempts:
                    raise StoreUnavailable(f"postgres: {exc!r}") from exc
        raise AssertionError("unreachable")

    async def ping(self) -> float:
        """Round trip of ``SELECT 1`` in ms (one attempt: this is a health check)."""
        started = time.perf_counter()
        async with self._connections.acquire() as connection:
            await connection.fetchval("SELECT 1", timeout=self.settings.health_timeout)
        return (time.perf_counter() - started) * 1000

    async def create_run(self, run_id: str, user_id: str, client_msg_id: str | None, content: str) -> str:
        """Record a new run; with a ``client_msg_id`` already used by this user, the earlier run's id."""
        row = await self._call(
            lambda c: c.fetchrow(
                "INSERT INTO chat_runs (run_id, user_id, client_msg_id, content) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (user_id, client_msg_id) DO NOTHING RETURNING run_id",
                run_id,
                user_id,
                client_msg_id,
                content,
            )
        )
        if row is not None:
            return run_id
        existing = await self.run_for_message(user_id, client_msg_id or "")
        return existing or run_id

    async def finish_run(self, run_id: str, status: str) -> None:
        await self._call(
            lambda c: c.execute(
                "UPDATE chat_runs SET status = $2, finished_at = now() WHERE run_id = $1", run_id, status
            )
        )

    async def append_event(self, event: RunEvent) -> None:
        # ON CONFLICT: a retry after a lost reply must not fail on the row the first attempt wrote.
        await self._call(
            lambda c: c.execute(
                "INSERT INTO chat_events (run_id, seq, type, wire) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                event.run_id,
                event.seq,
                event.type,
                event.wire,
            )
        )

    async def run_owner(self, run_id: str) -> str | None:
        owner = await self._call(lambda c: c.fetchval("SELECT user_id FROM chat_runs WHERE run_id = $1", run_id))
        return None if owner is None else str(owner)

    async def run_for_message(self, user_id: str, client_msg_id: str) -> str | None:
        run_id = await self._call(
            lambda c: c.fetchval(
                "SELECT run_id FROM chat_runs WHERE user_id = $1 AND client_msg_id = $2", user_id, client_msg_id
            )
        )
        return None if run_id is None else str(run_id)

    async def events_after(self, run_id: str, after_seq: int, last: int | None = None) -> list[RunEvent]:
        """The run's stored events with ``after_seq < seq <= last``, in order."""
        rows = await self._call(
            lambda c: c.fetch(
                "SELECT wire FROM chat_events WHERE run_id = $1 AND seq > $2 AND ($3::integer IS NULL OR seq <= $3)"
                " ORDER BY seq",
                run_id,
                after_seq,
                last,
            )
        )
        return [RunEvent.from_wire(row["wire"]) for row in rows]

    async def lookup_order(self, user_id: str) -> dict[str, Any]:
        """The user's order (created on first use), recording the lookup."""

        async def lookup(connection: asyncpg.Connection) -> dict[str, Any]:
            async with connection.transaction():
                row = await connection.fetchrow(
                    "INSERT INTO chat_orders (user_id, order_id, status, lookups, last_lookup)"
                    " VALUES ($1, 'ord-' || substr(md5($1), 1, 8), 'shipped', 1, now())"
                    " ON CONFLICT (user_id) DO UPDATE SET lookups = chat_orders.lookups + 1, last_lookup = now()"
                    " RETURNING order_id, status, lookups",
                    user_id,
                )
            return {"order_id": row["order_id"], "status": row["status"], "lookups": row["lookups"]}

        return await self._call(lookup)
