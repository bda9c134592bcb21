"""A running sandbox for tests: the whole stack on free ports in a temporary directory.

Registered by tests/conftest.py. The `sandbox` fixture is shared by the whole session; it uses
private Postgres and Redis servers, or the ones named by CHAOS_TEST_POSTGRES_URL /
CHAOS_TEST_REDIS_URL when the server binaries are missing, and skips when neither exists.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from chaos_service.sandbox.datastores import DatastoreUnavailable, PostgresServer, RedisServer
from chaos_service.sandbox.stack import Sandbox
from tests.support.datastores import POSTGRES_URL_ENV, REDIS_URL_ENV


def child_pids(parent: int | None = None) -> set[int]:
    """The live (non-zombie) child processes of ``parent`` (default: this process)."""
    parent = os.getpid() if parent is None else parent
    children = set()
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 1 and fields[0] != "Z" and int(fields[1]) == parent:
            children.add(int(entry.name))
    return children


def datastore_urls() -> dict[str, str]:
    """``postgres_url`` / ``redis_url`` for the servers that cannot run locally; skips if one has no URL."""
    urls = {}
    for option, factory, variable in (
        ("postgres_url", PostgresServer, POSTGRES_URL_ENV),
        ("redis_url", RedisServer, REDIS_URL_ENV),
    ):
        try:
            factory()
        except DatastoreUnavailable as exc:
            url = os.environ.get(variable)
            if not url:
                pytest.skip(f"no local server and {variable} is not set: {exc}")
            urls[option] = url
    return urls


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """The sandbox stack (``--ports auto``, engine seed 1), started once for the session."""
    directory = tmp_path_factory.mktemp("sandbox")
    urls = datastore_urls()
    with (directory / "servers.log").open("w") as log_to:
        stack = Sandbox(directory, ports="auto", seed=1, log_to=log_to, **urls)
        stack.start()
        yield stack
        stack.stop()


def wait_until_healthy(sandbox: Sandbox, timeout: float = 15.0) -> None:
    """Until the shared sandbox's /health says ``ok`` again after a test's faults were removed.

    The back-end notices a healed dependency on its own schedule (a Redis subscription is
    re-established within a fraction of a second); there is no event to wait on from here.
    """
    url = sandbox.environment.endpoints["health"]
    deadline = time.monotonic() + timeout
    while True:
        try:
            report = httpx.get(url, timeout=5).json()
        except (httpx.HTTPError, ValueError) as exc:
            report = {"status": repr(exc)}
        if report.get("status") == "ok":
            return
        assert time.monotonic() < deadline, f"the sandbox stayed unhealthy: {report}"
        time.sleep(0.05)


@pytest.fixture
def sandbox_with(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Sandbox]]:
    """A factory: ``sandbox_with("no_retry_on_llm_503")`` starts a sandbox of its own with those defects."""
    started: list[Sandbox] = []
    logs = []

    def start(*defects: str) -> Sandbox:
        directory = tmp_path_factory.mktemp("sandbox-" + ("-".join(defects) or "healthy"))
        log_to = (directory / "servers.log").open("w")
        logs.append(log_to)
        stack = Sandbox(directory / "stack", ports="auto", defects=defects, log_to=log_to, **datastore_urls())
        started.append(stack.start())
        return stack

    yield start
    for stack in started:
        stack.stop()
    for log_to in logs:
        log_to.close()
