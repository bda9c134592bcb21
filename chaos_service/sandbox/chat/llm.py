"""The chat back-end's LLM client: streamed chat completions with retries.

`LlmClient.stream` sends one OpenAI-style ``/chat/completions`` request with
``"stream": true`` and reads the Server-Sent Events it answers with: each content
delta goes to the caller's ``on_token`` as it arrives, tool-call deltas are put back
together, and the stream must end with ``data: [DONE]``.

A call that fails before anything was passed to ``on_token`` — the connection fails
or times out, the LLM answers 408, 429 or 5xx, or the stream breaks or carries an
error event — is tried again as `retry` decides (backoff, ``Retry-After``, at most
``llm_attempts`` attempts). Once a token has been passed on, a failure is final:
the caller has already shown part of the reply. Every failure is an `LlmError`
whose ``reason`` is a short word (``connect``, ``timeout``, ``status_503``,
``stream_broken``, ``stream_error``, ``bad_response``) and whose ``message`` says
what happened, with the LLM's own error message when it sent one.

Each request carries ``x-stainless-retry-count`` (0 on the first attempt), the
header OpenAI's SDKs use, so that servers and proxies can tell a retry from a new
request. One `httpx.AsyncClient` serves every run; its pool holds
`MAX_CONNECTIONS` connections, of which `MAX_KEEPALIVE` are kept when idle. After
``[DONE]`` the rest of the body is read (briefly) so that the connection can be reused.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from chaos_service.http_faults.sse import SseSplitter, is_event, parse_event
from chaos_service.sandbox.chat.config import ChatSettings
from chaos_service.sandbox.chat.retry import retry_delay

#: Connections to the LLM, enough for about a thousand concurrent runs.
MAX_CONNECTIONS = 1024
#: Idle connections kept for reuse. httpcore's pool scans its idle connections whenever
#: it hands out one, so many of them make every request slower; a few suffice to reuse.
MAX_KEEPALIVE = 32
#: After ``[DONE]``, how long the rest of the body is awaited (to reuse the connection).
DRAIN_TIMEOUT = 1.0
#: How much of an error response's body is read for its message.
ERROR_BODY_LIMIT = 64 * 1024
RETRY_HEADER = "x-stainless-retry-count"

OnToken = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool the LLM asked for, with its arguments parsed."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class LlmReply:
    """A complete streamed reply and the number of attempts it took."""

    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    attempts: int = 1


class LlmError(Exception):
    """The LLM call failed for good: ``reason`` is a short word, ``message`` the detail."""

    def __init__(self, reason: str, message: str, attempts: int) -> None:
        super().__init__(f"{reason}: {message} (after {attempts} attempt{'s' if attempts != 1 else ''})")
        self.reason = reason
        self.message = message
        self.attempts = attempts


class _Failure(Exception):
    """One attempt failed; whether to try again is decided by `retry_delay`."""

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: str | None = None,
        retry_after_ms: str | None = None,
        retryable: bool = True,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.retry_after_ms = retry_after_ms
        self.retryable = retryable


@dataclass(slots=True)
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Progress:
    """What one attempt has read so far."""

    tokens: list[str] = field(default_factory=list)
    calls: dict[int, _PartialCall] = field(default_factory=dict)
    finish_reason: str | None = None
    done: bool = False


def request_body(
    settings: ChatSettings,
    messages: list[dict[str, Any]],
    *,
    tools: list[dict[str, Any]] | None = None,
    extra_body: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON body of a streamed chat completion request with these settings."""
    body: dict[str, Any] = {"model": settings.model, "messages": messages, "stream": True}
    if tools:
        body["tools"] = tools
    if extra_body:
        body.update(extra_body)
    return body


class LlmClient:
    """Streams chat completions from ``settings.llm_url`` (an OpenAI-compatible ``/v1`` URL)."""

    def __init__(self, settings: ChatSettings) -> None:
        self.settings = settings
        base = settings.llm_url.rstrip("/")
        self.completions_url = f"{base}/chat/completions"
        self.models_url = f"{base}/models"
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(
                connect=settings.llm_connect_timeout,
                read=settings.llm_read_timeout,
                write=settings.llm_read_timeout,
                pool=settings.llm_connect_timeout,
            ),
            limits=httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_KEEPALIVE),
            trust_env=False,  # the LLM is reached directly (through the sandbox's proxy), never an env proxy
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def request_body(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The JSON body `stream` sends for these arguments."""
        return request_body(self.settings, messages, tools=tools, extra_body=extra_body)

    async def stream(
        self,
        messages: list[dict[str, Any]],
        on_token: OnToken,
        *,
        tools: list[dict[str, Any]] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> LlmReply:
        """Stream a reply, passing each content token to ``on_token`` in order.

        ``extra_body`` adds fields to the request (e.g. the LLM stub's ``stub`` script).
        An exception from ``on_token`` ends the call and propagates as it is.

        Raises:
            LlmError: the call failed and was not (or no longer) tried again.
        """
        body = self.request_body(messages, tools=tools, extra_body=extra_body)
        attempt = 0
        while True:
            attempt += 1
            progress = _Progress()
            try:
                await self._attempt(body, attempt, progress, on_token)
                return _reply(progress, attempt)
            except _Failure as failure:
                if progress.tokens or not failure.retryable:
                    raise LlmError(failure.reason, failure.message, attempt) from None
                delay = retry_delay(
                    attempt,
                    status=failure.status,
                    retry_after=failure.retry_after,
                    retry_after_ms=failure.retry_after_ms,
                    settings=self.settings,
                )
                if delay is None:
                    raise LlmError(failure.reason, failure.message, attempt) from None
            await asyncio.sleep(delay)

    async def check(self) -> float:
        """List the models once; returns the round trip in milliseconds.

        Raises:
            LlmError: the LLM did not answer 200 within ``settings.health_timeout``.
        """
        started = time.perf_counter()
        try:
            async with self._client.stream("GET", self.models_url, timeout=self.settings.health_timeout) as response:
                if response.status_code != 200:
                    failure = await _status_failure(response)
                    raise LlmError(failure.reason, failure.message, 1)
                await response.aread()
        except httpx.HTTPError as error:
            failure = _transport_failure(error, answered=False)
            raise LlmError(failure.reason, failure.message, 1) from None
        return (time.perf_counter() - started) * 1000.0

    async def _attempt(self, body: dict[str, Any], attempt: int, progress: _Progress, on_token: OnToken) -> None:
        headers = {RETRY_HEADER: str(attempt - 1), "accept": "text/event-stream"}
        answered = False
        try:
            async with self._client.stream("POST", self.completions_url, json=body, headers=headers) as response:
                answered = True
                if response.status_code != 200:
                    raise await _status_failure(response)
                content_type = response.headers.get("content-type", "")
                if not content_type.startswith("text/event-stream"):
                    what = content_type or "no content type"
                    raise _Failure("bad_response", f"the LLM answered 200 with {what}, not events", retryable=False)
                await self._read_events(response, progress, on_token)
        except httpx.HTTPError as error:
            if not progress.done:  # after [DONE] the reply is complete whatever happens to the connection
                raise _transport_failure(error, answered=answered) from None
        if not progress.done:
            raise _Failure("stream_broken", "the stream ended before data: [DONE]")

    async def _read_events(self, response: httpx.Response, progress: _Progress, on_token: OnToken) -> None:
        """Read events until ``[DONE]``; a stream idle for the read timeout (keep-alives aside) times out."""
        idle_limit = self.settings.llm_read_timeout
        loop = asyncio.get_running_loop()
        splitter = SseSplitter()
        idle = asyncio.timeout_at(loop.time() + idle_limit)
        try:
            async with idle:
                async for data in response.aiter_bytes():
                    if progress.done:
                        continue  # what follows [DONE]: read to the end so that the connection can be reused
                    for block in splitter.feed(data):
                        if not is_event(block):
                            continue  # comments (keep-alives) and field-only blocks
                        idle.reschedule(None)
                        payload = parse_event(block).data or ""
                        if payload.strip() == "[DONE]":
                            progress.done = True
                            idle.reschedule(loop.time() + DRAIN_TIMEOUT)
                            break
                        await _on_chunk(_decode(payload), progress, on_token)
                        idle.reschedule(loop.time() + idle_limit)
        except TimeoutError:
            if not idle.expired():
                raise
            if not progress.done:
                raise _Failure("timeout", f"the stream sent nothing for {idle_limit:g} s") from None


async def _on_chunk(chunk: dict[str, Any], progress: _Progress, on_token: OnToken) -> None:
    if "error" in chunk:
        raise _Failure("stream_error", f"the LLM sent an error in the stream: {_error_text(chunk)}")
    choices = chunk.get("choices")
    if not isinstance(choices, list):
        raise _Failure("bad_response", "a stream chunk without choices", retryable=False)
    for choice in choices:
        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
            continue
        delta = choice.get("delta") or {}
        if not isinstance(delta, dict):
            raise _Failure("bad_response", "a stream chunk with a malformed delta", retryable=False)
        for entry in delta.get("tool_calls") or ():
            _add_call_delta(entry, progress)
        content = delta.get("content")
        if isinstance(content, str) and content:
            progress.tokens.append(content)
            await on_token(content)
        if choice.get("finish_reason"):
            progress.finish_reason = str(choice["finish_reason"])


def _add_call_delta(entry: Any, progress: _Progress) -> None:
    if not isinstance(entry, dict) or not isinstance(entry.get("index"), int):
        raise _Failure("bad_response", "a tool-call delta without an index", retryable=False)
    call = progress.calls.setdefault(entry["index"], _PartialCall())
    if isinstance(entry.get("id"), str):
        call.id = entry["id"]
    function = entry.get("function") or {}
    if isinstance(function.get("name"), str):
        call.name += function["name"]
    if isinstance(function.get("arguments"), str):
        call.arguments.append(function["arguments"])


def _reply(progress: _Progress, attempts: int) -> LlmReply:
    calls = []
    for index in sorted(progress.calls):
        partial = progress.calls[index]
        if not partial.name:
            raise LlmError("bad_response", f"tool call {index} has no name", attempts)
        text = "".join(partial.arguments).strip() or "{}"
        try:
            arguments = json.loads(text)
        except ValueError:
            message = f"tool call {partial.name!r} has arguments that are not JSON"
            raise LlmError("bad_response", message, attempts) from None
        if not isinstance(arguments, dict):
            raise LlmError("bad_response", f"tool call {partial.name!r} has arguments that are not an object", attempts)
        calls.append(ToolCall(partial.id or f"call_{index}", partial.name, arguments))
    return LlmReply("".join(progress.tokens), calls, progress.finish_reason, attempts)


def _decode(payload: str) -> dict[str, Any]:
    try:
        chunk = json.loads(payload)
    except ValueError:
        raise _Failure("bad_response", f"a stream event that is not JSON: {payload[:80]!r}", retryable=False) from None
    if not isinstance(chunk, dict):
        raise _Failure("bad_response", "a stream event that is not a JSON object", retryable=False)
    return chunk


async def _status_failure(response: httpx.Response) -> _Failure:
    """A non-200 answer: its status, the LLM's message, and when it says to come back."""
    body = bytearray()
    try:
        async for data in response.aiter_bytes():
            body += data
            if len(body) >= ERROR_BODY_LIMIT:
                break
    except httpx.HTTPError:
        pass  # the status says enough
    status = response.status_code
    detail = _body_message(bytes(body[:ERROR_BODY_LIMIT]))
    phrase = response.reason_phrase or "error"
    message = f"the LLM answered {status} {phrase}" + (f": {detail}" if detail else "")
    return _Failure(
        f"status_{status}",
        message,
        status=status,
        retry_after=response.headers.get("retry-after"),
        retry_after_ms=response.headers.get("retry-after-ms"),
    )


def _body_message(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and "error" in parsed:
        return _error_text(parsed)
    if not text or text.startswith("<"):  # an HTML error page says nothing the status does not
        return ""
    return text[:200]


def _error_text(body: dict[str, Any]) -> str:
    error = body.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or error.get("type") or error)
    return str(error)


def _transport_failure(error: httpx.HTTPError, *, answered: bool) -> _Failure:
    """A network-level failure: before the response (``connect``/``timeout``) or within its body."""
    detail = str(error) or type(error).__name__
    if isinstance(error, httpx.TimeoutException):
        what = "reading the stream" if answered else "waiting for the LLM"
        return _Failure("timeout", f"timed out {what}: {detail}")
    if answered:
        return _Failure("stream_broken", f"the stream broke: {detail}")
    if isinstance(error, httpx.TransportError):
        return _Failure("connect", f"could not reach the LLM: {detail}")
    return _Failure("bad_response", f"the LLM's answer could not be read: {detail}", retryable=False)
