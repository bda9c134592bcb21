"""Fixtures of the http fault tests: an http proxy in front of the LLM stub, a raw upstream."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from chaos_service.sandbox.llm_stub.process import LlmStubProcess
from tests.http_faults.upstream import LlmProxy, RawUpstream, create_http_proxy


@pytest.fixture
def llm_proxy(api: httpx.Client, llm_stub: LlmStubProcess) -> Iterator[LlmProxy]:
    """An http proxy named ``llm`` to the session's LLM stub (deleted after the test)."""
    proxy = LlmProxy(api, "llm", create_http_proxy(api, llm_stub.url.removeprefix("http://"), "llm"))
    yield proxy
    proxy.close()


@pytest.fixture
def raw_upstream() -> Iterator[RawUpstream]:
    server = RawUpstream()
    yield server
    server.close()
