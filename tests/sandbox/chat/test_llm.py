"""The chat back-end's LLM client against the real LLM stub, through a real engine http proxy.

Each test puts an ``llm`` http proxy in front of the session's stub, adds the toxics
it needs, and streams through it with a client whose backoff is short (except where
``Retry-After`` is what is measured). Expected streams come from ``plan_reply``.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest

from chaos_service.sandbox.chat.config import ChatSettings
from chaos_service.sandbox.chat.llm import LlmClient, LlmError, LlmReply, ToolCall, request_body
from chaos_service.sandbox.llm_stub.process import LlmStubProcess
from chaos_service.sandbox.llm_stub.script import plan_reply
from tests.http_faults.upstream import LlmProxy, create_http_proxy

T = TypeVar("T")
TEST_TIMEOUT = 30.0
QUESTION = "what is the steady state? [[stub tokens=12]]"
LOOKUP_ORDER = {
    "type": "function",
    "function": {
        "name": "lookup_order",
        "description": "Look up the user's order",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
    },
}


def user(content: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": content}]


def chat_settings(llm_url: str, *defects: str, **overrides: Any) -> ChatSettings:
    fast: dict[str, Any] = {"llm_backoff": 0.01, "llm_backoff_max": 0.02, "llm_read_timeout": 5.0}
    return ChatSettings(
        postgres_url="postgresql://unused",
        redis_url="redis://unused",
        llm_url=llm_url,
        jwt_secret="secret",
        defects=frozenset(defects),
        **{**fast, **overrides},
    )


def run(coroutine_function: Callable[[], Awaitable[T]]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coroutine_function(), timeout=TEST_TIMEOUT)

    return asyncio.run(bounded())


class Call:
    """One `LlmClient.stream` call, with the tokens it passed on (even when it failed)."""

    def __init__(self, settings: ChatSettings) -> None:
        self.settings = settings
        self.tokens: list[str] = []

    async def on_token(self, token: str) -> None:
        self.tokens.append(token)

    def stream(self, messages: list[dict[str, Any]], **kwargs: Any) -> LlmReply:
        async def go() -> LlmReply:
            client = LlmClient(self.settings)
            try:
                return await client.stream(messages, self.on_token, **kwargs)
            finally:
                await client.aclose()

        return run(go)

    def fails(self, messages: list[dict[str, Any]], **kwargs: Any) -> LlmError:
        with pytest.raises(LlmError) as caught:
            self.stream(messages, **kwargs)
        return caught.value

    def planned(self, messages: list[dict[str, Any]], **kwargs: Any) -> Any:
        """The stub's planned reply to the request this call sends."""
        return plan_reply(request_body(self.settings, messages, **kwargs))


@pytest.fixture
def call(llm_proxy: LlmProxy) -> Call:
    return Call(chat_settings(f"{llm_proxy.url}/v1"))


def with_settings(proxy: LlmProxy, *defects: str, **overrides: Any) -> Call:
    return Call(chat_settings(f"{proxy.url}/v1", *defects, **overrides))


# --- streaming -------------------------------------------------------------------------


def test_tokens_are_passed_on_in_order_exactly_as_planned(call: Call) -> None:
    expected = call.planned(user(QUESTION))
    reply = call.stream(user(QUESTION))
    assert call.tokens == list(expected.tokens) and len(call.tokens) == 12
    assert reply == LlmReply(text=expected.text, tool_calls=[], finish_reason="stop", attempts=1)


def test_an_unscripted_message_is_echoed(call: Call) -> None:
    reply = call.stream(user("hello there"))
    assert call.tokens == ["Echo:", " hello", " there"]
    assert reply.text == "Echo: hello there"


def test_a_tool_call_is_parsed(call: Call) -> None:
    messages = user("Where is my order? [[stub tool=lookup_order]]")
    planned = call.planned(messages, tools=[LOOKUP_ORDER])
    reply = call.stream(messages, tools=[LOOKUP_ORDER])
    assert call.tokens == []
    assert reply.tool_calls == [ToolCall(planned.tool_calls[0].id, "lookup_order", {})]
    assert reply.finish_reason == "tool_calls" and reply.attempts == 1


def test_tool_call_arguments_streamed_in_fragments_are_joined(call: Call) -> None:
    arguments = {"order_id": "A-12345678", "note": "deliver to the back door, please"}
    script = {"stub": {"tool_calls": [{"name": "lookup_order", "arguments": arguments}, {"name": "other"}]}}
    planned = call.planned(user("where?"), tools=[LOOKUP_ORDER], extra_body=script)
    reply = call.stream(user("where?"), tools=[LOOKUP_ORDER], extra_body=script)
    assert reply.tool_calls == [
        ToolCall(planned.tool_calls[0].id, "lookup_order", arguments),
        ToolCall(planned.tool_calls[1].id, "other", {}),
    ]


def test_a_tool_result_gets_a_text_reply(call: Call) -> None:
    messages = [
        *user("Where is my order? [[stub tool=lookup_order]]"),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "lookup_order", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": '{"status": "shipped"}'},
    ]
    reply = call.stream(messages, tools=[LOOKUP_ORDER])
    assert reply.text == 'Tool result: {"status": "shipped"}' and reply.tool_calls == []
    assert "".join(call.tokens) == reply.text


def test_consecutive_calls_reuse_one_connection(llm_proxy: LlmProxy) -> None:
    settings = chat_settings(f"{llm_proxy.url}/v1")

    async def go() -> list[LlmReply]:
        client = LlmClient(settings)

        async def ignore(token: str) -> None:
            return None

        try:
            return [await client.stream(user(f"call {n} [[stub tokens=5]]"), ignore) for n in range(5)]
        finally:
            await client.aclose()

    assert [reply.text for reply in run(go)] == ["The quick brown fox jumps"] * 5
    assert llm_proxy.stats()["connections"]["total"] == 1


def test_concurrent_runs_each_get_their_own_reply_and_retries(llm_proxy: LlmProxy) -> None:
    llm_proxy.add_toxic("fail_attempts", attempts=1, status=503)
    settings = chat_settings(f"{llm_proxy.url}/v1")
    runs = 200

    async def go() -> list[tuple[list[str], LlmReply]]:
        client = LlmClient(settings)

        async def one(n: int) -> tuple[list[str], LlmReply]:
            tokens: list[str] = []

            async def on_token(token: str) -> None:
                tokens.append(token)

            # runs send identical requests in pairs: each is still retried on its own
            return tokens, await client.stream(user(f"run {n % 100} [[stub tokens=8]]"), on_token)

        try:
            return await asyncio.gather(*(one(n) for n in range(runs)))
        finally:
            await client.aclose()

    results = run(go)
    assert len(results) == runs
    for tokens, reply in results:
        assert reply.attempts == 2 and len(tokens) == 8 and "".join(tokens) == reply.text


# --- failures before the first token: retried ---------------------------------------------


def test_two_503s_then_success_takes_three_attempts(llm_proxy: LlmProxy, call: Call) -> None:
    toxic = llm_proxy.add_toxic("fail_attempts", attempts=2, status=503)
    reply = call.stream(user(QUESTION))
    assert reply.attempts == 3
    assert call.tokens == list(call.planned(user(QUESTION)).tokens)  # nothing twice
    assert llm_proxy.fired(toxic) == 2


def test_retry_after_is_honoured(llm_proxy: LlmProxy) -> None:
    llm_proxy.add_toxic("http_error", status=429, retry_after=1)
    call = with_settings(llm_proxy, llm_attempts=2)
    started = time.monotonic()
    error = call.fails(user(QUESTION))
    elapsed = time.monotonic() - started
    assert (error.reason, error.attempts) == ("status_429", 2)
    assert elapsed >= 0.95, elapsed  # retry-after-ms: 1000, not the 0.01 s backoff


def test_a_lasting_503_fails_after_four_attempts(llm_proxy: LlmProxy, call: Call) -> None:
    toxic = llm_proxy.add_toxic("http_error", status=503, message="the model is overloaded today")
    error = call.fails(user(QUESTION))
    assert (error.reason, error.attempts) == ("status_503", 4)
    assert "503" in error.message and "the model is overloaded today" in error.message
    assert llm_proxy.fired(toxic) == 4 and call.tokens == []


def test_with_the_defect_a_503_is_final(llm_proxy: LlmProxy) -> None:
    llm_proxy.add_toxic("http_error", status=503)
    error = with_settings(llm_proxy, "no_retry_on_llm_503").fails(user(QUESTION))
    assert (error.reason, error.attempts) == ("status_503", 1)


def test_with_the_defect_a_429_is_still_retried(llm_proxy: LlmProxy) -> None:
    llm_proxy.add_toxic("fail_attempts", attempts=2, status=429)
    reply = with_settings(llm_proxy, "no_retry_on_llm_503").stream(user(QUESTION))
    assert reply.attempts == 3


def test_a_502_from_the_proxy_when_the_upstream_is_down_is_retried(api: httpx.Client, llm_stub: LlmStubProcess) -> None:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        closed_port = sock.getsockname()[1]
    proxy = LlmProxy(api, "llm", create_http_proxy(api, f"127.0.0.1:{closed_port}", "llm"))
    error = with_settings(proxy).fails(user(QUESTION))
    assert (error.reason, error.attempts) == ("status_502", 4)


def test_an_unreachable_llm_is_retried_then_a_connect_error(api: httpx.Client, llm_proxy: LlmProxy) -> None:
    assert api.post("/proxies/llm", json={"enabled": False}).status_code == 200
    call = with_settings(llm_proxy)
    error = call.fails(user(QUESTION))
    assert (error.reason, error.attempts) == ("connect", 4)


def test_a_stream_cut_before_any_token_is_retried(llm_proxy: LlmProxy, call: Call) -> None:
    toxic = llm_proxy.add_toxic("sse_cut", after=1)  # the role chunk only
    error = call.fails(user(QUESTION))
    assert (error.reason, error.attempts) == ("stream_broken", 4)
    assert llm_proxy.fired(toxic) == 4 and call.tokens == []


def test_an_error_event_before_any_token_is_retried(llm_proxy: LlmProxy, call: Call) -> None:
    llm_proxy.add_toxic("sse_error", after=0, message="upstream exploded")
    error = call.fails(user(QUESTION))
    assert (error.reason, error.attempts) == ("stream_error", 4)
    assert "upstream exploded" in error.message


def test_a_stream_silent_before_any_token_times_out_and_is_retried(llm_proxy: LlmProxy) -> None:
    llm_proxy.add_toxic("sse_stall", after=0, keepalive=50)
    error = with_settings(llm_proxy, llm_read_timeout=0.3, llm_attempts=2).fails(user(QUESTION))
    assert (error.reason, error.attempts) == ("timeout", 2)


def test_late_response_headers_time_out_and_are_retried(llm_proxy: LlmProxy) -> None:
    llm_proxy.add_toxic("http_delay", delay=5000)
    error = with_settings(llm_proxy, llm_read_timeout=0.3, llm_attempts=2).fails(user(QUESTION))
    assert (error.reason, error.attempts) == ("timeout", 2)


# --- failures that are not retried ----------------------------------------------------


@pytest.mark.parametrize("mode", ["clean", "reset"])
def test_a_stream_cut_after_tokens_is_not_retried(llm_proxy: LlmProxy, call: Call, mode: str) -> None:
    toxic = llm_proxy.add_toxic("sse_cut", after=4, mode=mode)  # the role chunk and three tokens
    error = call.fails(user(QUESTION))
    assert (error.reason, error.attempts) == ("stream_broken", 1)
    assert call.tokens == list(call.planned(user(QUESTION)).tokens[:3])
    assert llm_proxy.fired(toxic) == 1


def test_an_error_event_after_tokens_is_not_retried(llm_proxy: LlmProxy, call: Call) -> None:
    llm_proxy.add_toxic("sse_error", after=3, message="the model crashed")
    error = call.fails(user(QUESTION))
    assert (error.reason, error.attempts) == ("stream_error", 1)
    assert "the model crashed" in error.message and len(call.tokens) == 2


def test_a_stall_after_tokens_times_out_despite_keepalives(llm_proxy: LlmProxy) -> None:
    llm_proxy.add_toxic("sse_stall", after=3, keepalive=50)
    call = with_settings(llm_proxy, llm_read_timeout=1.0)
    error = call.fails(user(QUESTION))
    assert (error.reason, error.attempts) == ("timeout", 1)
    assert len(call.tokens) == 2


def test_a_malformed_event_is_a_bad_response(llm_proxy: LlmProxy, call: Call) -> None:
    llm_proxy.add_toxic("sse_malformed", after=0)
    error = call.fails(user(QUESTION))
    assert (error.reason, error.attempts) == ("bad_response", 1)


def test_a_rejected_request_is_not_retried(call: Call) -> None:
    error = call.fails([{"role": "robot", "content": "hi"}])
    assert (error.reason, error.attempts) == ("status_400", 1)
    assert "messages[0].role" in error.message


def test_an_exception_from_on_token_propagates(llm_proxy: LlmProxy) -> None:
    settings = chat_settings(f"{llm_proxy.url}/v1")

    async def go() -> None:
        async def refuse(token: str) -> None:
            raise RuntimeError(f"client gone at {token!r}")

        client = LlmClient(settings)
        try:
            await client.stream(user(QUESTION), refuse)
        finally:
            await client.aclose()

    with pytest.raises(RuntimeError, match="client gone at 'The'"):
        run(go)


# --- health ---------------------------------------------------------------------------


def check(settings: ChatSettings) -> float:
    async def go() -> float:
        client = LlmClient(settings)
        try:
            return await client.check()
        finally:
            await client.aclose()

    return run(go)


def test_check_measures_the_latency(llm_proxy: LlmProxy) -> None:
    latency = check(chat_settings(f"{llm_proxy.url}/v1"))
    assert 0.0 < latency < 2000.0


def test_check_reports_an_error_status(llm_proxy: LlmProxy) -> None:
    llm_proxy.add_toxic("http_error", status=503, path="/v1/models")
    with pytest.raises(LlmError) as caught:
        check(chat_settings(f"{llm_proxy.url}/v1"))
    assert caught.value.reason == "status_503"


def test_check_reports_an_unreachable_llm(api: httpx.Client, llm_proxy: LlmProxy) -> None:
    assert api.post("/proxies/llm", json={"enabled": False}).status_code == 200
    with pytest.raises(LlmError) as caught:
        check(chat_settings(f"{llm_proxy.url}/v1"))
    assert caught.value.reason == "connect"


def test_check_times_out(llm_proxy: LlmProxy) -> None:
    llm_proxy.add_toxic("http_delay", delay=5000, path="/v1/models")
    with pytest.raises(LlmError) as caught:
        check(chat_settings(f"{llm_proxy.url}/v1", health_timeout=0.3))
    assert caught.value.reason == "timeout"
