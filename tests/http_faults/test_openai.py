"""The real openai client through an http proxy to the LLM stub: what an application sees."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import openai
import pytest

from chaos_service.sandbox.llm_stub.script import split_tokens
from tests.http_faults.upstream import MESSAGES, MODEL, LlmProxy, Streamed, collect, expected_tokens


def test_without_toxics_the_stream_arrives_exactly(llm_proxy: LlmProxy) -> None:
    script = {"tokens": 40}
    result = collect(llm_proxy.stream(script, stream_options={"include_usage": True}))
    assert tuple(result.tokens) == expected_tokens(script)
    assert result.finish == "stop"
    reply = llm_proxy.chat()
    assert reply.choices[0].message.content == "Echo: what is the steady state?"


def test_models_are_listed_through_the_proxy(llm_proxy: LlmProxy) -> None:
    assert "gpt-4o-mini" in [model.id for model in llm_proxy.client().models.list()]


def test_a_429_is_retried_honouring_retry_after(llm_proxy: LlmProxy) -> None:
    llm_proxy.add_toxic("http_error", name="limited", status=429, retry_after=0.2)
    started = time.monotonic()
    with pytest.raises(openai.RateLimitError) as caught:
        llm_proxy.chat(llm_proxy.client(max_retries=2))
    elapsed = time.monotonic() - started
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.response.headers["x-chaos-toxic"] == "limited"
    assert 0.4 <= elapsed < 2.5  # two waits of 0.2 s, not the client's own backoff
    stats = llm_proxy.stats()
    assert stats["upstream"]["messages"] == 3
    assert stats["toxics"]["limited"]["fired"] == 3


def test_a_503_is_retried_then_reported(llm_proxy: LlmProxy) -> None:
    llm_proxy.add_toxic("http_error", name="down", retry_after=0.05)
    with pytest.raises(openai.InternalServerError) as caught:
        llm_proxy.chat(llm_proxy.client(max_retries=1))
    assert caught.value.status_code == 503
    assert llm_proxy.fired("down") == 2


def test_should_retry_false_stops_the_client_retrying(llm_proxy: LlmProxy) -> None:
    llm_proxy.add_toxic("http_error", name="final", status=500, should_retry=False)
    with pytest.raises(openai.InternalServerError):
        llm_proxy.chat(llm_proxy.client(max_retries=2))
    assert llm_proxy.fired("final") == 1


@pytest.mark.parametrize(("max_retries", "succeeds"), [(2, True), (1, False)])
def test_fail_attempts_fails_the_first_attempts_of_each_request(
    llm_proxy: LlmProxy, max_retries: int, succeeds: bool
) -> None:
    llm_proxy.add_toxic("fail_attempts", name="flaky", attempts=2, retry_after=0.05)
    client = llm_proxy.client(max_retries=max_retries)
    if succeeds:
        assert llm_proxy.chat(client).choices[0].message.content.startswith("Echo:")
    else:
        with pytest.raises(openai.InternalServerError):
            llm_proxy.chat(client)
    assert llm_proxy.fired("flaky") == 2
    assert llm_proxy.stats()["upstream"]["messages"] == max_retries + 1


def test_a_clean_cut_ends_the_stream_early_without_error(llm_proxy: LlmProxy) -> None:
    llm_proxy.add_toxic("sse_cut", after=4)
    script = {"tokens": 20}
    result = collect(llm_proxy.stream(script))
    assert tuple(result.tokens) == expected_tokens(script)[:3]  # the role chunk is the first event
    assert result.finish is None


def test_a_reset_cut_raises_a_connection_error(llm_proxy: LlmProxy) -> None:
    llm_proxy.add_toxic("sse_cut", after=4, mode="reset")
    received = Streamed()
    with pytest.raises(openai.APIConnectionError):
        collect(llm_proxy.stream({"tokens": 20}), received)
    assert len(received.tokens) <= 3


def test_an_in_stream_error_raises_api_error(llm_proxy: LlmProxy) -> None:
    llm_proxy.add_toxic("sse_error", after=3, message="the model fell over")
    received = Streamed()
    with pytest.raises(openai.APIError) as caught:
        collect(llm_proxy.stream({"tokens": 20}), received)
    assert caught.value.message == "the model fell over"
    assert len(received.tokens) == 2


def test_a_malformed_event_raises_a_json_error(llm_proxy: LlmProxy) -> None:
    llm_proxy.add_toxic("sse_malformed", after=2)
    received = Streamed()
    with pytest.raises(json.JSONDecodeError):
        collect(llm_proxy.stream({"tokens": 20}), received)
    assert len(received.tokens) == 1


def test_http_delay_holds_the_first_byte(llm_proxy: LlmProxy) -> None:
    llm_proxy.add_toxic("http_delay", delay=300)
    started = time.monotonic()
    stream = llm_proxy.stream({"tokens": 5})
    first = time.monotonic() - started
    result = collect(stream)
    total = time.monotonic() - started
    assert 0.3 <= first < 2
    assert total - first < 0.5  # the stream itself is not slowed
    assert len(result.tokens) == 5
    started = time.monotonic()
    llm_proxy.chat()
    assert 0.3 <= time.monotonic() - started < 2


def test_sse_delay_paces_every_event(llm_proxy: LlmProxy) -> None:
    llm_proxy.add_toxic("sse_delay", delay=25)
    started = time.monotonic()
    result = collect(llm_proxy.stream({"tokens": 10}))
    elapsed = time.monotonic() - started
    assert len(result.tokens) == 10
    assert 13 * 0.025 <= elapsed < 3  # role + 10 tokens + finish + [DONE]


def test_a_stall_with_keepalives_resumes_with_every_token(llm_proxy: LlmProxy) -> None:
    llm_proxy.add_toxic("sse_stall", after=3, duration=400, keepalive=50)
    script = {"tokens": 10}
    started = time.monotonic()
    request = {"model": MODEL, "messages": MESSAGES, "stream": True, "stub": script}
    body = httpx.post(f"{llm_proxy.url}/v1/chat/completions", json=request, timeout=10).content
    assert 0.4 <= time.monotonic() - started < 3
    assert body.count(b": keep-alive\n\n") == 7  # at 50, 100, ... 350 ms
    assert body.endswith(b"data: [DONE]\n\n")
    result = collect(llm_proxy.stream(script))
    assert tuple(result.tokens) == expected_tokens(script)
    assert result.finish == "stop"


def test_a_streaming_request_can_be_refused_before_its_stream(llm_proxy: LlmProxy) -> None:
    llm_proxy.add_toxic("http_error", status=429, should_retry=False)
    with pytest.raises(openai.RateLimitError):
        llm_proxy.stream({"tokens": 3}, llm_proxy.client(max_retries=2))


@pytest.mark.parametrize(("status", "html"), [(529, False), (502, True)])
def test_overload_and_gateway_errors_are_server_errors(llm_proxy: LlmProxy, status: int, html: bool) -> None:
    llm_proxy.add_toxic("http_error", status=status, html=html, retry_after=0.01)
    with pytest.raises(openai.InternalServerError) as caught:
        llm_proxy.chat(llm_proxy.client(max_retries=1))
    assert caught.value.status_code == status
    if html:
        assert "<h1>502 Bad Gateway</h1>" in caught.value.response.text
    else:
        assert caught.value.type == "overloaded_error"


def test_concurrent_streams_each_arrive_exactly(llm_proxy: LlmProxy) -> None:
    async def run() -> list[tuple[str, ...]]:
        client = openai.AsyncOpenAI(base_url=f"{llm_proxy.url}/v1", api_key="test", max_retries=0, timeout=20)

        async def one(index: int) -> tuple[str, ...]:
            stream = await client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": f"stream {index}"}],
                stream=True,
                extra_body={"stub": {"text": f"reply number {index} " * 5, "pace_ms": 2}},
            )
            return tuple([c.choices[0].delta.content async for c in stream if c.choices and c.choices[0].delta.content])

        try:
            return await asyncio.gather(*(one(i) for i in range(50)))
        finally:
            await client.close()

    results = asyncio.run(run())
    assert results == [tuple(split_tokens(f"reply number {i} " * 5)) for i in range(50)]
    assert llm_proxy.stats()["upstream"]["messages"] == 50
