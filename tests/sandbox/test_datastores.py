"""The sandbox datastore launchers, against real PostgreSQL and Redis servers."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from pathlib import Path

import asyncpg
import pytest
import redis

from chaos_service.errors import ChaosServiceError
from chaos_service.sandbox import datastores
from chaos_service.sandbox._process import free_port
from chaos_service.sandbox.datastores import (
    DatastoreError,
    DatastoreStartFailed,
    DatastoreUnavailable,
    ExternalServer,
    PostgresServer,
    RedisServer,
)
from tests.support.datastores import local_or_skip, pg_fetch

SHARED_PORTS = {5432, 6379}



def comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def processes_inside(directory: Path) -> list[int]:
    """Processes whose working directory is in `directory` (servers chdir into their temp dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.readlink(entry / "cwd").startswith(str(directory)):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_postgres_server_answers_queries(postgres_server: PostgresServer | ExternalServer) -> None:
    assert pg_fetch(postgres_server.url, "SELECT 6 * 7") == 42
    if isinstance(postgres_server, PostgresServer):
        assert postgres_server.host == "127.0.0.1"
        assert postgres_server.port not in SHARED_PORTS
        assert postgres_server.url == f"postgresql://postgres@127.0.0.1:{postgres_server.port}/postgres"
        assert comm(postgres_server.pid) == "postgres"
        assert pg_fetch(postgres_server.url, "SHOW max_connections") == "300"
        assert pg_fetch(postgres_server.url, "SHOW fsync") == "off"


def test_redis_server_sets_and_gets(redis_server: RedisServer | ExternalServer) -> None:
    with redis.Redis.from_url(redis_server.url) as client:
        client.set("chaos:test", "value")
        assert client.get("chaos:test") == b"value"
    if isinstance(redis_server, RedisServer):
        assert redis_server.port not in SHARED_PORTS
        assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
        assert comm(redis_server.pid) == "redis-server"


def test_postgres_comes_back_with_its_data_after_kill_and_restart(
    private_postgres_server: PostgresServer,
) -> None:
    server = private_postgres_server
    port, pid = server.port, server.pid

    async def scenario() -> None:
        conn = await asyncpg.connect(server.url, timeout=10)
        # With the server's synchronous_commit=off a commit may still sit in WAL buffers when killed.
        await conn.execute("SET synchronous_commit = on")
        await conn.execute("CREATE TABLE survivors (name text); INSERT INTO survivors VALUES ('kept')")
        server.kill()
        with pytest.raises(asyncpg.ConnectionDoesNotExistError):
            await conn.fetchval("SELECT 1")
        conn.terminate()
        with pytest.raises(ConnectionRefusedError):
            await asyncpg.connect(server.url, timeout=10)

    asyncio.run(scenario())
    assert not server.running
    server.start()
    assert (server.port, pg_fetch(server.url, "SELECT name FROM survivors")) == (port, "kept")
    assert server.pid != pid
    server.restart()
    assert (server.port, pg_fetch(server.url, "SELECT count(*) FROM survivors")) == (port, 1)


def test_redis_comes_back_empty_after_kill(private_redis_server: RedisServer) -> None:
    server = private_redis_server
    port = server.port
    with redis.Redis.from_url(server.url) as client:
        client.set("chaos:test", "value")
        server.kill()
        with pytest.raises(redis.ConnectionError):
            client.ping()
        server.start()
        assert server.port == port
        assert client.ping()
        assert client.get("chaos:test") is None
        server.restart()
        assert client.ping()


def test_a_paused_server_still_stops(private_redis_server: RedisServer) -> None:
    os.kill(private_redis_server.pid, signal.SIGSTOP)
    private_redis_server.stop()
    assert not private_redis_server.running


@pytest.mark.parametrize("fixture", ["private_postgres_server", "private_redis_server"])
def test_stop_is_idempotent_and_leaves_nothing_behind(fixture: str, request: pytest.FixtureRequest) -> None:
    server: PostgresServer | RedisServer = request.getfixturevalue(fixture)
    tmp_dir, pid = server.tmp_dir, server.pid
    assert tmp_dir is not None and tmp_dir.is_dir()
    assert pid in processes_inside(tmp_dir)
    server.stop()
    server.stop()
    assert not tmp_dir.exists()
    assert server.tmp_dir is None and not server.running
    assert processes_inside(tmp_dir) == []
    with pytest.raises(DatastoreError, match="not running"):
        _ = server.pid


def test_missing_binaries_raise_a_helpful_error(tmp_path: Path) -> None:
    with pytest.raises(DatastoreUnavailable, match="CHAOS_POSTGRES_BIN_DIR") as pg_error:
        PostgresServer(bin_dir=tmp_path / "missing")
    assert "apt-get install postgresql" in str(pg_error.value)
    with pytest.raises(DatastoreUnavailable, match="CHAOS_REDIS_SERVER") as redis_error:
        RedisServer(binary=tmp_path / "redis-server")
    assert "apt-get install redis-server" in str(redis_error.value)
    assert isinstance(redis_error.value, ChaosServiceError)


def test_a_server_that_will_not_start_fails_with_its_log() -> None:
    server = local_or_skip(lambda: PostgresServer(settings={"max_connections": "-5"}))
    with pytest.raises(DatastoreStartFailed, match=r"exited; last log lines:\n.*max_connections"):
        server.start()
    assert server.tmp_dir is None and not server.running


def test_a_taken_port_fails_with_the_server_log() -> None:
    with socket.create_server(("127.0.0.1", 0)) as blocker:
        server = local_or_skip(lambda: RedisServer(port=blocker.getsockname()[1]))
        with pytest.raises(DatastoreStartFailed, match="Address already in use"):
            server.start()
    assert server.tmp_dir is None and not server.running


def test_a_port_taken_meanwhile_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    server = local_or_skip(RedisServer)
    with socket.create_server(("127.0.0.1", 0)) as blocker:
        taken = blocker.getsockname()[1]
        # The first free port handed out is taken before the server binds it.
        ports = iter([taken])
        monkeypatch.setattr(datastores, "free_port", lambda host: next(ports, None) or free_port(host))
        with server:
            assert server.port != taken
            with redis.Redis.from_url(server.url) as client:
                assert client.ping()


def test_external_server_from_url() -> None:
    server = ExternalServer.from_url("redis://cache.internal:6390/1", default_port=6379)
    assert (server.host, server.port, server.url) == ("cache.internal", 6390, "redis://cache.internal:6390/1")
    assert ExternalServer.from_url("postgresql://u@db/app", default_port=5432).port == 5432
