from __future__ import annotations

import json

import pytest

from chaos_service.http_faults import SseMalformed
from chaos_service.http_faults.base import FIRED, Send
from chaos_service.http_faults.sse import is_event, parse_event
from chaos_service.http_faults.sse_malformed import MALFORMED_EVENT
from tests.http_faults.support import event, ops_for


def test_inserts_one_truncated_event_and_carries_on() -> None:
    assert ops_for(SseMalformed(after=1), [event(1), event(2), event(3)]) == [
        Send(event(1)),
        FIRED,
        Send(MALFORMED_EVENT),
        Send(event(2)),
        Send(event(3)),
    ]


def test_the_inserted_event_is_an_event_whose_data_is_not_json() -> None:
    assert is_event(MALFORMED_EVENT)
    data = parse_event(MALFORMED_EVENT).data
    assert data == '{"id": "chatcmpl-'
    with pytest.raises(json.JSONDecodeError):
        json.loads(data)
