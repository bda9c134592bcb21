"""sse_malformed: after some events, insert one event whose data is truncated JSON.

The stream then carries on. A client that parses each event as JSON (the OpenAI client
does) fails on it with a JSON decode error.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaos_service.http_faults.base import AFTER, AfterEvents, Op, Send

#: The inserted event: the start of a chat completion chunk, cut off.
MALFORMED_EVENT = b'data: {"id": "chatcmpl-\n\n'


@dataclass(frozen=True, slots=True)
class SseMalformed(AfterEvents):
    type_name = "sse_malformed"
    attributes = (AFTER,)

    def act(self) -> list[Op]:
        return [Send(MALFORMED_EVENT)]
