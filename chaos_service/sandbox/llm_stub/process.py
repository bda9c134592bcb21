"""Start the LLM stub as a child process (for the sandbox and tests)."""

from __future__ import annotations

from chaos_service.service_process import ServiceProcess


class LlmStubProcess(ServiceProcess):
    """``chaos-service llm-stub``: an OpenAI-compatible endpoint with scripted replies."""

    command = "llm-stub"
