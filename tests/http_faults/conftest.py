"""Fixtures of the http fault tests: an http proxy in front of the LLM stub, a raw upstream."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.http_faults.upstream import RawUpstream


@pytest.fixture
def raw_upstream() -> Iterator[RawUpstream]:
    server = RawUpstream()
    yield server
    server.close()
