"""Postgres probe: a new connection and one query per attempt.

Each attempt opens its own connection (so a refused, stalled or reset connect is seen
when it happens, never hidden by a pool), runs one query, optionally compares the
value, and closes the connection.

Details (seconds from the attempt's start): ``connect_s`` (connected and
authenticated), ``query_s`` (the query answered), ``query_time_s`` (the query alone),
``value`` (the first column of the first row, as ``repr`` unless it is JSON-like).
INVALID when the value differs from ``expected`` or the attempt is slower than
``max_latency``; a connection or query failure is an ERROR.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from chaos_service.probes.kinds.base import UNCHECKED, Stopwatch, positive, too_slow, verdict
from chaos_service.probes.records import Observation
from chaos_service.sandbox.environment import Environment

#: How long closing a connection that answered may take before it is dropped instead.
CLOSE_TIMEOUT = 1.0


class PostgresProbe:
    """Connect to ``url`` (a ``postgresql://`` DSN) and run ``query``; each call is one attempt."""

    def __init__(
        self,
        url: str,
        *,
        query: str = "SELECT 1",
        expected: object = UNCHECKED,
        connect_timeout: float = 5.0,
        query_timeout: float = 5.0,
        max_latency: float | None = None,
        name: str = "postgres",
    ) -> None:
        positive(connect_timeout, "connect_timeout")
        positive(query_timeout, "query_timeout")
        positive(max_latency, "max_latency")
        self.name = name
        self.url = url
        self.query = query
        self.expected = expected
        self.connect_timeout = connect_timeout
        self.query_timeout = query_timeout
        self.max_latency = max_latency

    @classmethod
    def from_environment(cls, env: Environment, **options: Any) -> PostgresProbe:
        """A probe of the sandbox's Postgres through its proxy (``SELECT 1`` = 1 unless ``options`` say otherwise)."""
        options.setdefault("expected", 1)
        return cls(env.endpoints["postgres"], **options)

    async def __call__(self) -> Observation:
        clock = Stopwatch()
        connection = await asyncpg.connect(self.url, timeout=self.connect_timeout)
        connected = clock.elapsed()
        try:
            value = await connection.fetchval(self.query, timeout=self.query_timeout)
        except BaseException:
            connection.terminate()  # never wait on a connection that failed (or on a cancelled attempt)
            raise
        answered = clock.elapsed()
        await _close(connection)
        details = {
            "connect_s": connected,
            "query_s": answered,
            "query_time_s": answered - connected,
            "value": _plain(value),
        }
        wrong = None
        if self.expected is not UNCHECKED and value != self.expected:
            wrong = f"query returned {value!r}, expected {self.expected!r}"
        return verdict([wrong, too_slow(answered, self.max_latency)], details)


async def _close(connection: asyncpg.Connection) -> None:
    """Close politely; a connection that does not close in time is dropped (the answer already counted)."""
    try:
        await connection.close(timeout=CLOSE_TIMEOUT)
    except Exception:
        connection.terminate()
    except BaseException:
        connection.terminate()
        raise


def _plain(value: object) -> object:
    """The value as it can be kept in a record: JSON scalars as they are, anything else as its repr."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)
