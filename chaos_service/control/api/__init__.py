"""The control plane's HTTP API (FastAPI): a thin layer over `chaos_service.control.plane`."""

from chaos_service.control.api.app import create_app

__all__ = ["create_app"]
