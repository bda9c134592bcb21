"""Start ``chaos-service engine`` as a child process (for the demo, the sandbox and tests)."""

from __future__ import annotations

from chaos_service.service_process import ServiceProcess


class EngineProcess(ServiceProcess):
    """``chaos-service engine``: the fault proxy engine and its Toxiproxy API."""

    command = "engine"
