"""Real PostgreSQL (asyncpg) and Redis (redis-py) clients talking to real servers through the engine.

These tests only ever break the proxy, never the session-scoped servers behind it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from chaos_service.sandbox.datastores import ExternalServer, PostgresServer, RedisServer

T = TypeVar("T")
PG_TIMEOUT = 10.0
#: Errors that mean "the connection broke", as asyncpg reports them (a timeout is not one of them).
PG_CONNECTION_ERRORS = (ConnectionError, asyncpg.ConnectionDoesNotExistError)


def create_proxy(api: httpx.Client, name: str, upstream_host: str, upstream_port: int) -> tuple[str, int]:
    response = api.post(
        "/proxies",
        json={"name": name, "listen": "127.0.0.1:0", "upstream": f"{upstream_host}:{upstream_port}"},
    )
    assert response.status_code == 201, response.text
    host, port = response.json()["listen"].split(":")
    return host, int(port)


def add_toxic(api: httpx.Client, proxy: str, toxic: dict[str, Any]) -> None:
    response = api.post(f"/proxies/{proxy}/toxics", json=toxic)
    assert response.status_code == 200, response.text


def set_enabled(api: httpx.Client, proxy: str, enabled: bool) -> None:
    response = api.post(f"/proxies/{proxy}", json={"enabled": enabled})
    assert response.status_code == 200, response.text
    assert response.json()["enabled"] is enabled


def via(url: str, host: str, port: int) -> str:
    """`url` with its host:port replaced by the proxy's (credentials, database and options kept)."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}:{port}" if userinfo else f"{host}:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def run(coroutine_function: Callable[[], Awaitable[T]]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coroutine_function(), timeout=30)

    return asyncio.run(bounded())


# --- PostgreSQL ------------------------------------------------------------------------------------


@pytest.fixture
def pg_proxy(api: httpx.Client, postgres_server: PostgresServer | ExternalServer) -> str:
    """The server's URL, rewritten to go through a fresh proxy named ``pg``."""
    host, port = create_proxy(api, "pg", postgres_server.host, postgres_server.port)
    return via(postgres_server.url, host, port)


def test_asyncpg_queries_through_a_proxy(pg_proxy: str, api: httpx.Client) -> None:
    async def scenario() -> tuple[int, str]:
        conn = await asyncpg.connect(pg_proxy, timeout=PG_TIMEOUT)
        try:
            answer = await conn.fetchval("SELECT 6 * 7")
            text = await conn.fetchval("SELECT repeat('x', 100000)")
            return answer, text
        finally:
            await conn.close()

    answer, text = run(scenario)

    assert answer == 42
    assert text == "x" * 100000


def test_asyncpg_query_with_300ms_downstream_latency_is_slow_but_succeeds(
    pg_proxy: str, api: httpx.Client
) -> None:
    async def scenario() -> tuple[float, float, int]:
        conn = await asyncpg.connect(pg_proxy, timeout=PG_TIMEOUT)
        try:
            started = time.perf_counter()
            await conn.fetchval("SELECT 1")
            fast = time.perf_counter() - started
            add_toxic(api, "pg", {"type": "latency", "attributes": {"latency": 300}})
            started = time.perf_counter()
            value = await conn.fetchval("SELECT 7")
            return fast, time.perf_counter() - started, value
        finally:
            await conn.close()

    fast, slow, value = run(scenario)

    assert value == 7
    assert fast < 0.25
    assert 0.29 <= slow < 5.0


def test_asyncpg_query_fails_with_a_connection_error_under_reset_peer(pg_proxy: str, api: httpx.Client) -> None:
    async def scenario() -> None:
        conn = await asyncpg.connect(pg_proxy, timeout=PG_TIMEOUT)
        try:
            assert await conn.fetchval("SELECT 1") == 1
            add_toxic(api, "pg", {"type": "reset_peer", "attributes": {"timeout": 10}})
            started = time.perf_counter()
            with pytest.raises(PG_CONNECTION_ERRORS):
                await conn.fetchval("SELECT 2", timeout=PG_TIMEOUT)
            assert time.perf_counter() - started < 3.0
        finally:
            await conn.close(timeout=PG_TIMEOUT)

    run(scenario)


def test_asyncpg_cannot_connect_under_reset_peer(pg_proxy: str, api: httpx.Client) -> None:
    add_toxic(api, "pg", {"type": "reset_peer", "attributes": {"timeout": 10}})

    async def scenario() -> None:
        with pytest.raises(ConnectionError):
            conn = await asyncpg.connect(pg_proxy, timeout=PG_TIMEOUT)
            await conn.close()

    started = time.perf_counter()
    run(scenario)
    assert time.perf_counter() - started < 3.0


def test_asyncpg_connects_only_while_the_proxy_is_enabled(pg_proxy: str, api: httpx.Client) -> None:
    async def query() -> int:
        conn = await asyncpg.connect(pg_proxy, timeout=PG_TIMEOUT)
        try:
            return int(await conn.fetchval("SELECT 5"))
        finally:
            await conn.close()

    async def connect_refused() -> None:
        with pytest.raises(ConnectionRefusedError):
            await asyncpg.connect(pg_proxy, timeout=PG_TIMEOUT)

    assert run(query) == 5
    set_enabled(api, "pg", False)
    run(connect_refused)
    set_enabled(api, "pg", True)
    assert run(query) == 5


# --- Redis -----------------------------------------------------------------------------------------


@pytest.fixture
def redis_proxy(api: httpx.Client, redis_server: RedisServer | ExternalServer) -> str:
    """The server's URL, rewritten to go through a fresh proxy named ``redis``."""
    host, port = create_proxy(api, "redis", redis_server.host, redis_server.port)
    return via(redis_server.url, host, port)


def redis_client(url: str, socket_timeout: float = 5.0) -> redis.Redis:
    """A client with its own connection pool and no automatic retries (redis-py retries by default)."""
    return redis.Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=5.0,
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
    )


def test_redis_ping_set_get_through_a_proxy(redis_proxy: str) -> None:
    with redis_client(redis_proxy) as client:
        assert client.ping() is True
        assert client.set("chaos:engine:through", "proxied value") is True
        assert client.get("chaos:engine:through") == b"proxied value"
        big = b"v" * 200_000
        assert client.set("chaos:engine:big", big) is True
        assert client.get("chaos:engine:big") == big
        client.delete("chaos:engine:through", "chaos:engine:big")


@pytest.mark.parametrize("stream", ["downstream", "upstream"])
def test_redis_command_times_out_under_a_timeout_0_toxic_and_recovers_after_removal(
    redis_proxy: str, api: httpx.Client, stream: str
) -> None:
    with redis_client(redis_proxy, socket_timeout=0.5) as client:
        assert client.ping() is True
        add_toxic(api, "redis", {"name": "black_hole", "type": "timeout", "stream": stream, "attributes": {}})

        started = time.perf_counter()
        with pytest.raises(redis.exceptions.TimeoutError):
            client.ping()
        assert time.perf_counter() - started < 3.0

        response = api.delete("/proxies/redis/toxics/black_hole")
        assert response.status_code == 204

    with redis_client(redis_proxy, socket_timeout=2.0) as fresh:
        assert fresh.ping() is True
        assert fresh.set("chaos:engine:after_timeout", "ok") is True
        assert fresh.get("chaos:engine:after_timeout") == b"ok"
        fresh.delete("chaos:engine:after_timeout")


def test_redis_new_connections_fail_while_disabled_and_work_after_enable(
    redis_proxy: str, api: httpx.Client
) -> None:
    with redis_client(redis_proxy) as client:
        assert client.ping() is True

    set_enabled(api, "redis", False)
    with redis_client(redis_proxy) as client, pytest.raises(redis.exceptions.ConnectionError):
        client.ping()

    set_enabled(api, "redis", True)
    with redis_client(redis_proxy) as client:
        assert client.ping() is True


def test_redis_open_connection_is_cut_when_the_proxy_is_disabled(redis_proxy: str, api: httpx.Client) -> None:
    with redis_client(redis_proxy) as client:
        assert client.ping() is True

        set_enabled(api, "redis", False)

        with pytest.raises(redis.exceptions.ConnectionError):
            client.ping()
