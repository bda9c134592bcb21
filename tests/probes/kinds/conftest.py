"""Fixtures for the probe kinds' tests: faults on the shared sandbox that never outlive a test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chaos_service.sandbox.environment import Environment
from chaos_service.sandbox.stack import Sandbox
from tests.probes.kinds.support import Faults
from tests.support.sandbox import wait_until_healthy


@pytest.fixture
def env(sandbox: Sandbox) -> Environment:
    return sandbox.environment


@pytest.fixture
def faults(sandbox: Sandbox, env: Environment) -> Iterator[Faults]:
    """Faults through the sandbox's engine; whatever the test leaves on is removed after it,
    and the sandbox is healthy again before the next test uses it."""
    applied = Faults(env.engine)
    try:
        yield applied
    finally:
        applied.clear()
        wait_until_healthy(sandbox)
