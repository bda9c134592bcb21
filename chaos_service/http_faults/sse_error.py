"""sse_error: after some events, send an in-stream error event and end the stream.

The event is OpenAI's: ``data: {"error": {"message", "type": "server_error", "param":
null, "code": null}}``; the OpenAI client raises ``APIError`` on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaos_service.http_faults.attributes import MAX_TEXT
from chaos_service.http_faults.base import AFTER, AfterEvents, Finish, Op, Send
from chaos_service.http_faults.sse import error_event
from chaos_service.toxics.attributes import Text

DEFAULT_MESSAGE = "The server had an error while processing your request. Sorry about that!"


@dataclass(frozen=True, slots=True)
class SseError(AfterEvents):
    message: str = ""

    type_name = "sse_error"
    attributes = (AFTER, Text("message", MAX_TEXT, description='the error message ("": a generic server error)'))

    def act(self) -> list[Op]:
        return [Send(error_event(self.message or DEFAULT_MESSAGE)), Finish()]
