"""Redis probe: PING, then SET a unique key and GET it back, on a fresh connection.

Each attempt opens its own connection with retries switched off, so a refused,
stalled or reset connection is seen on the attempt it happens to, never hidden by a
retry or a pooled connection. The key is unique to the attempt and expires after
``key_ttl`` seconds.

Details (seconds from the attempt's start): ``connect_s`` (connected), ``ping_s``
(PONG), ``set_s`` (SET answered), ``get_s`` (GET answered), ``key``. INVALID when
PING is not answered with PONG, SET is not acknowledged, GET returns another value,
or the attempt is slower than ``max_latency``; a connection failure is an ERROR.
"""

from __future__ import annotations

import secrets
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from chaos_service.probes.kinds.base import Stopwatch, positive, too_slow, verdict
from chaos_service.probes.records import Observation
from chaos_service.sandbox.environment import Environment


class RedisProbe:
    """PING, SET and GET against ``url`` (a ``redis://`` URL); each call is one attempt."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        key_prefix: str = "chaos:probe:",
        key_ttl: int = 60,
        max_latency: float | None = None,
        name: str = "redis",
    ) -> None:
        positive(timeout, "timeout")
        positive(max_latency, "max_latency")
        positive(key_ttl, "key_ttl")
        self.name = name
        self.url = url
        self.timeout = timeout
        self.key_prefix = key_prefix
        self.key_ttl = key_ttl
        self.max_latency = max_latency

    @classmethod
    def from_environment(cls, env: Environment, **options: Any) -> RedisProbe:
        """A probe of the sandbox's Redis through its proxy."""
        return cls(env.endpoints["redis"], **options)

    def _client(self) -> aioredis.Redis:
        return aioredis.Redis.from_url(
            self.url,
            single_connection_client=True,
            socket_timeout=self.timeout,
            socket_connect_timeout=self.timeout,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
            health_check_interval=0,
        )

    async def __call__(self) -> Observation:
        clock = Stopwatch()
        key = f"{self.key_prefix}{secrets.token_hex(8)}"
        value = secrets.token_hex(8).encode()
        client = self._client()
        try:
            await client.initialize()  # connects the client's one connection
            connected = clock.elapsed()
            pong = await client.ping()
            pinged = clock.elapsed()
            stored = await client.set(key, value, ex=self.key_ttl)
            was_set = clock.elapsed()
            read = await client.get(key)
            got = clock.elapsed()
        except BaseException:
            if client.connection is not None:  # drop it at once: a failed or cancelled attempt never waits
                await client.connection.disconnect(nowait=True)
            await client.aclose()
            raise
        await client.aclose()
        details = {"connect_s": connected, "ping_s": pinged, "set_s": was_set, "get_s": got, "key": key}
        reasons = [
            None if pong is True else f"PING answered {pong!r}",
            None if stored is True else f"SET answered {stored!r}",
            None if read == value else f"GET returned {read!r}, expected {value!r}",
            too_slow(got, self.max_latency),
        ]
        return verdict(reasons, details)
