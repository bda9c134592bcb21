"""Client messages: valid ones parse, every invalid one gets a one-line reason."""

from __future__ import annotations

import pytest

from chaos_service.sandbox.chat.protocol import Ping, Resume, UserMessage, parse_client_message


def test_valid_messages_parse() -> None:
    assert parse_client_message('{"type":"ping"}') == Ping(type="ping")
    assert parse_client_message('{"type":"message","content":"hi","client_msg_id":"m-1"}') == UserMessage(
        type="message", content="hi", client_msg_id="m-1"
    )
    assert parse_client_message('{"type":"resume","run_id":"r","after_seq":4}') == Resume(
        type="resume", run_id="r", after_seq=4
    )
    resume = parse_client_message('{"type":"resume","client_msg_id":"m-1"}')
    assert isinstance(resume, Resume) and resume.after_seq == -1


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", "messages must be JSON objects"),
        ("[1]", "messages must be JSON objects"),
        ("{}", "type must be one of message, resume, ping"),
        ('{"type":"shout"}', "type must be one of message, resume, ping"),
        ('{"type":"message"}', "content: Field required"),
        ('{"type":"message","content":""}', "content: String should have at least 1 character"),
        ('{"type":"resume","after_seq":1}', "give either run_id or client_msg_id"),
        ('{"type":"resume","run_id":"r","client_msg_id":"m"}', "give either run_id or client_msg_id"),
        ('{"type":"resume","run_id":"r","after_seq":-2}', "after_seq: Input should be greater than or equal to -1"),
        ('{"type":"ping","extra":1}', "extra: Extra inputs are not permitted"),
    ],
)
def test_invalid_messages_say_what_is_wrong(text: str, reason: str) -> None:
    assert parse_client_message(text) == reason
