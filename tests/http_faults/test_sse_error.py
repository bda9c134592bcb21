from __future__ import annotations

import json

from chaos_service.http_faults import SseError
from chaos_service.http_faults.base import FIRED, Finish, Send
from chaos_service.http_faults.sse import parse_event
from tests.http_faults.support import event, ops_for


def test_sends_an_openai_error_event_then_ends() -> None:
    ops = ops_for(SseError(after=1, message="model crashed"), [event(1), event(2)])
    assert ops[:2] == [Send(event(1)), FIRED]
    assert ops[3] == Finish(reset=False)
    sent = ops[2]
    assert isinstance(sent, Send) and sent.event
    data = parse_event(sent.data).data
    assert data is not None and json.loads(data) == {
        "error": {"message": "model crashed", "type": "server_error", "param": None, "code": None}
    }


def test_the_default_message_is_a_generic_server_error() -> None:
    sent = ops_for(SseError(), [])[1]
    assert isinstance(sent, Send) and b"The server had an error" in sent.data
