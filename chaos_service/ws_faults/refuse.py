"""ws_refuse: new WebSocket handshakes are refused with an HTTP status.

Decided per handshake with probability ``toxicity``; connections already open are not
affected. ``retry_after`` (seconds) adds a ``Retry-After`` header; ``body`` is the
response's text. The stream a ws_refuse toxic is added on does not matter.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaos_service.toxics.attributes import Integer, Text
from chaos_service.ws_faults.attributes import MAX_MS
from chaos_service.ws_faults.base import WsToxic


@dataclass(frozen=True, slots=True)
class Refuse(WsToxic):
    """Refuses handshakes with ``status`` (400-599), optionally ``Retry-After`` and a body."""

    status: int = 503
    retry_after: int | None = None
    body: str = ""

    type_name = "ws_refuse"
    attributes = (
        Integer("status", 400, 599, "HTTP status"),
        Integer("retry_after", 0, MAX_MS, "seconds"),
        Text("body", integers=True),
    )

    def headers(self) -> list[tuple[str, str]]:
        """Headers to add to the refusal (besides the ones every response has)."""
        return [] if self.retry_after is None else [("Retry-After", str(self.retry_after))]
