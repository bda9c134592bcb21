"""The stub over HTTP, through the real openai client: what an application would see."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from chaos_service.sandbox.llm_stub.process import LlmStubProcess
from chaos_service.sandbox.llm_stub.script import plan_reply

MESSAGES = [{"role": "user", "content": "what is the steady state?"}]


@pytest.fixture
def client(llm_stub: LlmStubProcess) -> Iterator[openai.OpenAI]:
    """A client whose pooled connections are closed after the test, not whenever it is collected."""
    with openai.OpenAI(base_url=f"{llm_stub.url}/v1", api_key="test", max_retries=0, timeout=10) as opened:
        yield opened


def test_a_completion_echoes_the_question(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
    assert reply.choices[0].message.content == "Echo: what is the steady state?"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.completion_tokens == 6


def test_a_stream_delivers_exactly_the_planned_tokens(client: openai.OpenAI) -> None:
    script = {"tokens": 30}
    expected = plan_reply({"model": "gpt-4o-mini", "messages": MESSAGES, "stub": script}).tokens
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"stub": script},
    )
    tokens, finish, usage = [], None, None
    for chunk in stream:
        if chunk.choices:
            if chunk.choices[0].delta.content:
                tokens.append(chunk.choices[0].delta.content)
            finish = chunk.choices[0].finish_reason or finish
        else:
            usage = chunk.usage
    assert tuple(tokens) == expected
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens == 30


def test_pacing_spaces_the_tokens(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,  # type: ignore[arg-type]
        stream=True,
        extra_body={"stub": {"tokens": 6, "pace_ms": 50, "first_token_ms": 200}},
    )
    arrivals = []
    started = time.monotonic()
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic() - started)
    assert len(arrivals) == 6
    assert arrivals[0] >= 0.19
    assert arrivals[-1] - arrivals[0] >= 5 * 0.05 - 0.01
    assert arrivals[-1] < 5


def test_streamed_tool_calls_reassemble(client: openai.OpenAI) -> None:
    arguments = '{"order_id":"A-1001","include_history":true}'
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,  # type: ignore[arg-type]
        stream=True,
        extra_body={"stub": {"tool_calls": [{"name": "lookup_order", "arguments": arguments}]}},
    )
    names, pieces, finish = [], [], None
    for chunk in stream:
        for call in chunk.choices[0].delta.tool_calls or []:
            if call.function and call.function.name:
                names.append(call.function.name)
            if call.function and call.function.arguments:
                pieces.append(call.function.arguments)
        finish = chunk.choices[0].finish_reason or finish
    assert names == ["lookup_order"]
    assert "".join(pieces) == arguments
    assert finish == "tool_calls"


def test_errors_have_openai_shapes(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="gpt-5-imaginary", messages=MESSAGES)  # type: ignore[arg-type]
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="gpt-4o-mini", messages=[])
    assert bad.value.param == "messages"


def test_unknown_routes_answer_like_openai(llm_stub: LlmStubProcess) -> None:
    response = httpx.post(f"{llm_stub.url}/v1/nothing", json={}, timeout=5)
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Invalid URL (POST /v1/nothing)"


def test_models_are_listed(client: openai.OpenAI) -> None:
    assert [model.id for model in client.models.list()] == ["gpt-4o-mini", "gpt-4o", "chaos-stub"]


def test_hundreds_of_concurrent_streams_all_complete(llm_stub: LlmStubProcess) -> None:
    async def run() -> list[int]:
        client = openai.AsyncOpenAI(base_url=f"{llm_stub.url}/v1", api_key="test", max_retries=0, timeout=30)

        async def one(index: int) -> int:
            stream = await client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": f"stream {index}"}],
                stream=True,
                extra_body={"stub": {"tokens": 20, "pace_ms": 20}},
            )
            tokens = [chunk async for chunk in stream if chunk.choices and chunk.choices[0].delta.content]
            return len(tokens)

        try:
            return await asyncio.gather(*(one(i) for i in range(300)))
        finally:
            await client.close()

    started = time.monotonic()
    counts = asyncio.run(run())
    assert counts == [20] * 300
    assert time.monotonic() - started < 30


def test_an_api_key_can_be_required() -> None:
    with (
        LlmStubProcess("--api-key", "sekrit", log_level="warning") as stub,
        openai.OpenAI(base_url=f"{stub.url}/v1", api_key="guess", max_retries=0) as wrong,
        openai.OpenAI(base_url=f"{stub.url}/v1", api_key="sekrit", max_retries=0) as right,
    ):
        with pytest.raises(openai.AuthenticationError):
            wrong.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # type: ignore[arg-type]
        assert right.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).choices  # type: ignore[arg-type]


@pytest.mark.parametrize("args", [["--port", "70000"], ["--pace-ms", "-1"], ["--bogus"]])
def test_bad_flags_exit_2_without_a_traceback(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chaos_service", "llm-stub", *args], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip()
