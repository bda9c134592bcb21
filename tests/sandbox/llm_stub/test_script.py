"""The stub's reply planning and wire format: pure, no server."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaos_service.sandbox.llm_stub.script import InvalidRequest, plan_reply, split_tokens
from chaos_service.sandbox.llm_stub.wire import completion_body, stream_chunks


def _request(content: str = "hello world", **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}], **extra}


@given(st.text())
def test_tokens_join_back_to_the_text_without_trailing_space(text: str) -> None:
    assert "".join(split_tokens(text)) == text.rstrip()


def test_default_reply_echoes_the_last_user_message() -> None:
    script = plan_reply(_request("hello world"))
    assert script.tokens == ("Echo:", " hello", " world")
    assert script.finish_reason == "stop"


def test_the_body_script_sets_text_pace_and_finish_reason() -> None:
    script = plan_reply(_request(stub={"text": "a b", "pace_ms": 5, "first_token_ms": 50, "finish_reason": "length"}))
    assert (script.tokens, script.pace_ms, script.first_token_ms) == (("a", " b"), 5, 50)
    assert script.finish_reason == "length"


def test_generated_tokens_are_deterministic() -> None:
    assert plan_reply(_request(stub={"tokens": 3})).tokens == ("The", " quick", " brown")
    assert len(plan_reply(_request(stub={"tokens": 40})).tokens) == 40


def test_a_directive_in_the_message_scripts_the_reply_and_is_not_echoed() -> None:
    script = plan_reply(_request("hi [[stub pace_ms=7]] there"))
    assert script.pace_ms == 7
    assert script.text == "Echo: hi  there"


def test_the_body_script_wins_over_the_directive() -> None:
    assert plan_reply(_request("[[stub tokens=9]]", stub={"tokens": 2})).tokens == ("The", " quick")


def test_tool_calls_until_a_tool_result_arrives() -> None:
    asked = plan_reply(_request("weather? [[stub tool=get_weather]]"))
    assert asked.tokens == ()
    assert [(call.name, call.arguments) for call in asked.tool_calls] == [("get_weather", "{}")]
    assert asked.finish_reason == "tool_calls"
    answered = plan_reply(
        {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "user", "content": "weather? [[stub tool=get_weather]]"},
                {"role": "assistant", "content": None, "tool_calls": []},
                {"role": "tool", "tool_call_id": "call_1", "content": "18 C"},
            ],
        }
    )
    assert answered.tool_calls == ()
    assert answered.text == "Tool result: 18 C"


def test_streamed_tool_arguments_are_json_only_when_joined() -> None:
    script = plan_reply(_request(stub={"tool_calls": [{"name": "lookup", "arguments": {"order": 12345, "x": "yz"}}]}))
    chunks = stream_chunks(script, completion_id="c", created=1, model="m", include_usage=False)
    fragments = [c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"] for c in chunks[1:-1]]
    assert len(fragments) > 1
    assert json.loads("".join(fragments)) == {"order": 12345, "x": "yz"}
    assert chunks[1]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == "lookup"


def test_stream_chunks_are_role_tokens_finish_and_usage() -> None:
    script = plan_reply(_request("hi"))
    chunks = stream_chunks(script, completion_id="chatcmpl-1", created=7, model="gpt-4o-mini", include_usage=True)
    assert [c["choices"][0]["delta"] for c in chunks[:-1]] == [
        {"role": "assistant", "content": "", "refusal": None},
        {"content": "Echo:"},
        {"content": " hi"},
        {},
    ]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    assert all(c["usage"] is None for c in chunks[:-1])
    assert {c["id"] for c in chunks} == {"chatcmpl-1"}


def test_completion_body_carries_the_whole_text() -> None:
    body = completion_body(plan_reply(_request("hi")), completion_id="c", created=1, model="m")
    assert body["choices"][0]["message"]["content"] == "Echo: hi"
    assert body["object"] == "chat.completion"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        (_request(stub={"tokens": -1}), "stub.tokens"),
        (_request(stub={"pace_ms": "fast"}), "stub.pace_ms"),
        (_request(stub={"speed": 1}), "stub"),
        (_request(stub={"finish_reason": "bored"}), "stub.finish_reason"),
        (_request(stub={"tool_calls": [{"arguments": {}}]}), "stub.tool_calls[0]"),
    ],
)
def test_bad_requests_name_the_offending_parameter(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        plan_reply(body)
    assert caught.value.param == param
