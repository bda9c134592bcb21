"""The one table from domain errors to HTTP status codes, and Toxiproxy's error body."""

from __future__ import annotations

from starlette.responses import Response

from chaos_service.engine.api.render import dumps
from chaos_service.errors import (
    AlreadyExists,
    ChaosServiceError,
    InvalidInput,
    ListenFailed,
    NotFound,
)

STATUS_BY_ERROR: tuple[tuple[type[ChaosServiceError], int], ...] = (
    (InvalidInput, 400),
    (NotFound, 404),
    (AlreadyExists, 409),
    (ListenFailed, 409),
)


def status_for(error: ChaosServiceError) -> int:
    for error_type, status in STATUS_BY_ERROR:
        if isinstance(error, error_type):
            return status
    return 500


def error_response(message: str, status: int) -> Response:
    """Go's ``http.Error``: text/plain, nosniff, ``{"error":…,"status":…}`` and a newline."""
    return Response(
        dumps({"error": message, "status": status}) + b"\n",
        status_code=status,
        media_type="text/plain; charset=utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )
