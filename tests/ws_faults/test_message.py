"""Messages and matching: which messages a toxic with ``field``/``value`` acts on."""

from __future__ import annotations

import pytest

from chaos_service.ws_faults.message import Match, Message, render_value


@pytest.mark.parametrize(
    ("data", "field", "value", "expected"),
    [
        ('{"type": "agent_thinking"}', "type", "agent_thinking", True),
        ('{"type": "token"}', "type", "agent_thinking", False),
        ('{"type": "token"}', "type", "", True),
        ('{"kind": "token"}', "type", "", False),
        ('{"data": {"kind": "delta"}}', "data.kind", "delta", True),
        ('{"data": {"kind": "delta"}}', "data.other", "", False),
        ('{"data": "flat"}', "data.kind", "", False),
        ('{"choices": [{"delta": {"content": "hi"}}]}', "choices.0.delta.content", "hi", True),
        ('{"choices": []}', "choices.0", "", False),
        ('{"seq": 3}', "seq", "3", True),
        ('{"final": true}', "final", "true", True),
        ('{"final": true}', "final", "True", False),
        ('{"usage": null}', "usage", "", True),
        ('{"usage": null}', "usage", "null", True),
        ('{"n": 1.5}', "n", "1.5", True),
        ('{"a": {"b": 1}}', "a", '{"b":1}', True),
        ("not json", "type", "", False),
        ('["type"]', "type", "", False),
    ],
)
def test_field_and_value(data: str, field: str, value: str, expected: bool) -> None:
    assert Match(field, value).matches(Message.of(data)) is expected


@pytest.mark.parametrize("data", ["not json", '{"type": "x"}', b"\x00\x01", b'{"type": "x"}'])
def test_an_empty_field_matches_every_message(data: str | bytes) -> None:
    assert Match().matches(Message.of(data))


def test_binary_messages_never_match_a_field() -> None:
    assert not Match("type", "x").matches(Message.of(b'{"type": "x"}'))


def test_invalid_utf8_text_is_not_json() -> None:
    assert not Match("type").matches(Message(b'{"type": "\xff"}', text=True))


def test_a_message_is_parsed_once() -> None:
    message = Message.of('{"type": "x", "seq": 1}')
    assert Match("type", "x").matches(message)
    document = message.document()
    assert Match("seq", "1").matches(message)
    assert message.document() is document


def test_size_is_utf8_bytes() -> None:
    assert Message.of("é").size == 2
    assert Message.of(b"abc").size == 3


def test_render_value() -> None:
    assert [render_value(v) for v in ("s", 1, False, None, [1, "a"])] == ["s", "1", "false", "null", '[1,"a"]']
