"""A real LLM stub process for tests (the OpenAI-compatible server in chaos_service.sandbox)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from chaos_service.sandbox.llm_stub.process import LlmStubProcess
from tests.http_faults.upstream import LlmProxy, create_http_proxy


@pytest.fixture(scope="session")
def llm_stub() -> Iterator[LlmStubProcess]:
    """One stub for the session; its replies depend only on each request."""
    stub = LlmStubProcess(log_level="warning").start()
    yield stub
    stub.stop()


@pytest.fixture
def llm_proxy(api: httpx.Client, llm_stub: LlmStubProcess) -> Iterator[LlmProxy]:
    """An http proxy named ``llm`` to the session's LLM stub (deleted after the test)."""
    proxy = LlmProxy(api, "llm", create_http_proxy(api, llm_stub.url.removeprefix("http://"), "llm"))
    yield proxy
    proxy.close()
