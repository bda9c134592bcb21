"""A real LLM stub process for tests (the OpenAI-compatible server in chaos_service.sandbox)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chaos_service.sandbox.llm_stub.process import LlmStubProcess


@pytest.fixture(scope="session")
def llm_stub() -> Iterator[LlmStubProcess]:
    """One stub for the session; its replies depend only on each request."""
    stub = LlmStubProcess(log_level="warning").start()
    yield stub
    stub.stop()
