"""http_error: answer matching requests with an error instead of calling the upstream.

The body is OpenAI's error JSON with the type, code and wording of the status (429:
``requests``/``rate_limit_exceeded``, 500: ``server_error``, 503: overloaded, 529:
``overloaded_error``…), or a gateway's HTML page for ``html: true``; see `replies`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from chaos_service.http_faults.attributes import MAX_TEXT
from chaos_service.http_faults.base import AnswerToxic
from chaos_service.http_faults.replies import Reply, error_reply
from chaos_service.http_faults.request import RequestInfo
from chaos_service.toxics.attributes import Flag, Integer, Seconds, Text

STATUS = Integer("status", 400, 599, description="HTTP status of the error")
RETRY_AFTER = Seconds("retry_after", description="seconds to send in Retry-After and retry-after-ms (null: none)")


@dataclass(frozen=True, slots=True)
class HttpError(AnswerToxic):
    status: int = 503
    message: str = ""
    retry_after: float | None = None
    should_retry: bool | None = None
    html: bool = False

    type_name = "http_error"
    attributes = (
        STATUS,
        Text("message", MAX_TEXT, description='the error message ("": the usual wording for the status)'),
        RETRY_AFTER,
        Flag("should_retry", "send x-should-retry: true or false (null: no header)"),
        Flag("html", "send a gateway's HTML page instead of JSON (for 502 and 504)"),
    )

    def answer(self, request: RequestInfo, state: Any, rng: random.Random) -> Reply:
        return error_reply(
            self.status,
            rng=rng,
            message=self.message or None,
            retry_after=self.retry_after,
            should_retry=self.should_retry,
            html=self.html,
        )
