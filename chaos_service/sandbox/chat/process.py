"""Start the chat back-end as a child process (for the sandbox and tests)."""

from __future__ import annotations

from chaos_service.service_process import ServiceProcess


class ChatProcess(ServiceProcess):
    """``chaos-service sandbox-chat``: the sandbox's chat back-end (WebSocket /ws, GET /health)."""

    command = "sandbox-chat"
