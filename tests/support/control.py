"""A control plane (``chaos-service serve``) in a child process, with a token of each role."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest

from chaos_service.control.store import open_store
from chaos_service.sandbox.datastores import ExternalServer, PostgresServer
from chaos_service.sandbox.stack import Sandbox
from chaos_service.service_process import ServiceProcess

QUICK = """
title: Redis slowed for a moment
settings: {{warmup: 1s, recovery_window: 2s, steady_window: 1s, ttl_margin: 30s}}
probes:
  cache: {{type: redis, endpoint: redis, every: 100ms, deadline: 2s}}
steady_state:
  - {{probe: cache, success_rate: ">= 0.9"}}
method:
  - {{name: slow, at: 0s, fault: latency, proxy: redis, attributes: {{latency: 20}}, duration: {duration}}}
slo:
  success_rate: ">= 0.9"
"""


def quick_experiment(duration: str = "1s") -> str:
    """A valid experiment of a few seconds against the sandbox's Redis."""
    return QUICK.format(duration=duration)


class ServeProcess(ServiceProcess):
    command = "serve"


def new_postgres_store(server_url: str) -> str:
    """The URL of a new, empty database on the Postgres server at ``server_url``."""
    name = f"control_{secrets.token_hex(4)}"

    async def create() -> None:
        connection = await asyncpg.connect(server_url, timeout=10)
        try:
            await connection.execute(f"CREATE DATABASE {name}")
        finally:
            await connection.close()

    asyncio.run(create())
    return server_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", "postgres"])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty control-plane store location of each kind."""
    if request.param == "sqlite":
        return str(tmp_path / "chaos.db")
    server: PostgresServer | ExternalServer = request.getfixturevalue("postgres_server")
    return new_postgres_store(server.url)


def make_tokens(store: str) -> dict[str, str]:
    """A secret per role (and one revoked) in the store at ``store``."""

    async def create() -> dict[str, str]:
        opened = await open_store(store, replica="tests")
        try:
            tokens = {}
            for role in ("viewer", "operator", "admin"):
                tokens[role] = (await opened.create_token(f"test-{role}", role))[1]
            record, tokens["revoked"] = await opened.create_token("test-revoked", "admin")
            await opened.revoke_token(record.id)
            return tokens
        finally:
            await opened.close()

    return asyncio.run(create())


@dataclass
class Control:
    url: str
    store: str
    tokens: dict[str, str]
    process: ServeProcess
    clients: dict[str, httpx.Client] = field(default_factory=dict)

    def as_(self, role: str) -> httpx.Client:
        """A client that sends ``role``'s token."""
        if role not in self.clients:
            headers = {"Authorization": f"Bearer {self.tokens[role]}"}
            self.clients[role] = httpx.Client(base_url=self.url, headers=headers, timeout=30)
        return self.clients[role]

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


def start_control(environment: Path, store: str, replica: str, *extra: str) -> ServeProcess:
    args = ["--environment", str(environment), "--store", store, "--replica", replica, "--log-level", "warning"]
    return ServeProcess(*args, *extra).start(timeout=60)


@pytest.fixture(scope="module")
def control(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Control]:
    """One control plane for a test module, on its own SQLite store, against the shared sandbox."""
    store = str(tmp_path_factory.mktemp("control") / "control.db")
    tokens = make_tokens(store)
    process = start_control(sandbox.environment_path, store, "r1")
    plane = Control(process.url, store, tokens, process)
    try:
        yield plane
    finally:
        plane.close()
        process.stop()
