"""LLM probe: one streaming chat completion per attempt, read event by event.

The request is sent with plain httpx and the Server-Sent Events are split and parsed
here (`chaos_service.http_faults.sse`), so the probe sees exactly what came over the
wire: every ``data:`` event, keep-alive comments, ``data: [DONE]``, in-band errors,
malformed chunks and an event cut off at the end. ``extra_body`` is merged into the
request (``{"stub": {"tokens": 20, "pace_ms": 5}}`` scripts the sandbox's LLM stub).

The probe may retry an answer of 429 or 5xx that comes before the stream starts, up to
``retries`` times (default 0), numbering its requests with ``x-stainless-retry-count``
as the OpenAI clients do. A stream that breaks once it has started is never retried.

Details (seconds from the attempt's start, retries included):

* ``attempts``, ``statuses``: requests sent, and the status each got;
* ``headers_s``: the response headers of the last request arrived;
* ``first_event_s``: the first ``data:`` event arrived;
* ``ttft_s``: the first token (a chunk with content or a tool-call fragment) arrived;
* ``completed_s``: the response body ended;
* ``tokens``, ``events``, ``keepalives``: token chunks, ``data:`` events, comment-only blocks;
* ``finish_reason``, ``done``: the last finish reason seen; whether ``[DONE]`` arrived;
* ``gaps_s``, ``gap_max_s``, ``gap_p99_s``: the inter-token gaps, their maximum and their
  99th percentile by the estimator named in ``gap_percentile`` (``nearest-rank``, type 1);
  ``None`` with fewer than two tokens;
* ``error``, ``malformed``, ``after_done``, ``partial_bytes``: an in-band error's message,
  unparsable events, events after ``[DONE]``, bytes of an unterminated event at the end.

INVALID when the stream ends without ``[DONE]``, carries an error event or malformed
events, has no finish reason, or is slower than ``max_ttft`` (to the first token) or
``max_latency`` (to its end). An error status after the retries, a refused connection
or a stream broken mid-body (a reset, a read timeout) is an ERROR.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from chaos_service.errors import InvalidInput
from chaos_service.http_faults.sse import SseSplitter, is_event, parse_event
from chaos_service.probes.kinds.base import ProbeFailure, Stopwatch, nearest_rank, positive, too_slow, verdict
from chaos_service.probes.records import Observation
from chaos_service.sandbox.environment import Environment

RETRY_COUNT_HEADER = "x-stainless-retry-count"
DONE = "[DONE]"
GAP_PERCENTILE = "nearest-rank"
#: How much of an error body an ERROR's message quotes.
BODY_EXCERPT = 200


class LlmStatusError(ProbeFailure):
    """The LLM answered with an error status (after the retries the probe may make)."""


class StreamBroken(ProbeFailure):
    """The stream started and then failed at the transport: a reset, an incomplete body, a read timeout."""


def retryable(status: int) -> bool:
    """Whether the probe may retry a request that got this status (before the stream started)."""
    return status == 429 or status >= 500


@dataclass
class StreamRecord:
    """What one stream carried, with arrival times in seconds from the attempt's start."""

    events: int = 0
    keepalives: int = 0
    malformed: int = 0
    after_done: int = 0
    done: bool = False
    finish_reason: str | None = None
    error: str | None = None
    first_event_s: float | None = None
    token_times: list[float] = field(default_factory=list)

    def add(self, data: str, at: float) -> None:
        """One ``data:`` event."""
        self.events += 1
        if self.first_event_s is None:
            self.first_event_s = at
        if self.done:
            self.after_done += 1
            return
        if data.strip() == DONE:
            self.done = True
            return
        try:
            chunk = json.loads(data)
        except ValueError:
            self.malformed += 1
            return
        if not isinstance(chunk, dict):
            self.malformed += 1
            return
        if "error" in chunk:
            error = chunk["error"]
            message = error.get("message") if isinstance(error, dict) else None
            self.error = str(message if message is not None else error)
            return
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else []:
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict) and (delta.get("content") or delta.get("tool_calls")):
                self.token_times.append(at)
            if choice.get("finish_reason") is not None:
                self.finish_reason = str(choice["finish_reason"])

    def gaps(self) -> list[float]:
        return [later - earlier for earlier, later in zip(self.token_times, self.token_times[1:], strict=False)]


class LlmStreamProbe:
    """One streaming ``POST {base_url}/chat/completions``; each call is one attempt."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str = "gpt-4o-mini",
        prompt: str = "Say something.",
        extra_body: Mapping[str, Any] | None = None,
        retries: int = 0,
        backoff: float = 0.0,
        max_ttft: float | None = None,
        max_latency: float | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        api_key: str | None = "chaos-probe",
        headers: Mapping[str, str] | None = None,
        verify: bool | ssl.SSLContext = True,
        name: str = "llm",
    ) -> None:
        if retries < 0:
            raise InvalidInput(f"retries must be >= 0, not {retries}")
        if backoff < 0:
            raise InvalidInput(f"backoff must be >= 0 s, not {backoff:g}")
        for value, what in (
            (max_ttft, "max_ttft"),
            (max_latency, "max_latency"),
            (connect_timeout, "connect_timeout"),
            (read_timeout, "read_timeout"),
        ):
            positive(value, what)
        self.name = name
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.body: dict[str, Any] = {
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "stream": True,
            "stream_options": {"include_usage": True},
            **(extra_body or {}),
        }
        self.retries = retries
        self.backoff = backoff
        self.max_ttft = max_ttft
        self.max_latency = max_latency
        self.timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        self.headers = {"accept": "text/event-stream", **(headers or {})}
        if api_key is not None:
            self.headers["authorization"] = f"Bearer {api_key}"
        self._verify = httpx.create_ssl_context(verify) if verify is True else verify

    @classmethod
    def from_environment(cls, env: Environment, **options: Any) -> LlmStreamProbe:
        """A probe of the sandbox's LLM stub through its proxy."""
        return cls(env.endpoints["llm"], **options)

    async def __call__(self) -> Observation:
        clock = Stopwatch()
        record = StreamRecord()
        statuses: list[int] = []
        splitter = SseSplitter()
        async with httpx.AsyncClient(timeout=self.timeout, verify=self._verify, trust_env=False) as client:
            for attempt in range(self.retries + 1):
                headers = {**self.headers, RETRY_COUNT_HEADER: str(attempt)}
                request = client.build_request("POST", self.url, json=self.body, headers=headers)
                async with _sent(client, request) as response:
                    headers_at = clock.elapsed()
                    statuses.append(response.status_code)
                    if response.status_code == 200:
                        await _read(response, splitter, record, clock)
                        break
                    body = await response.aread()
                    if retryable(response.status_code) and attempt < self.retries:
                        if self.backoff:
                            await asyncio.sleep(self.backoff)
                        continue
                    raise LlmStatusError(
                        f"HTTP {response.status_code} after {attempt + 1} attempt(s): {_error_message(body)}"
                    )
        completed = clock.elapsed()
        gaps = record.gaps()
        ttft = record.token_times[0] if record.token_times else None
        details: dict[str, Any] = {
            "attempts": len(statuses),
            "statuses": statuses,
            "headers_s": headers_at,
            "first_event_s": record.first_event_s,
            "ttft_s": ttft,
            "completed_s": completed,
            "tokens": len(record.token_times),
            "events": record.events,
            "keepalives": record.keepalives,
            "finish_reason": record.finish_reason,
            "done": record.done,
            "gaps_s": gaps,
            "gap_max_s": max(gaps) if gaps else None,
            "gap_p99_s": nearest_rank(gaps, 99) if gaps else None,
            "gap_percentile": GAP_PERCENTILE,
            "error": record.error,
            "malformed": record.malformed,
            "after_done": record.after_done,
            "partial_bytes": splitter.pending,
        }
        reasons = [
            None if record.error is None else f"error event: {record.error}",
            None if not record.malformed else f"{record.malformed} malformed event(s)",
            None if record.done else "the stream ended without [DONE]",
            None if record.finish_reason is not None else "no finish_reason",
            None if not record.after_done else f"{record.after_done} event(s) after [DONE]",
            _ttft_problem(ttft, self.max_ttft),
            too_slow(completed, self.max_latency),
        ]
        return verdict(reasons, details)


@asynccontextmanager
async def _sent(client: httpx.AsyncClient, request: httpx.Request) -> AsyncIterator[httpx.Response]:
    """Send a streaming request; close the response on the way out."""
    response = await client.send(request, stream=True)
    try:
        yield response
    finally:
        await response.aclose()


async def _read(response: httpx.Response, splitter: SseSplitter, record: StreamRecord, clock: Stopwatch) -> None:
    try:
        async for chunk in response.aiter_bytes():
            at = clock.elapsed()
            for block in splitter.feed(chunk):
                if not is_event(block):
                    record.keepalives += 1
                    continue
                data = parse_event(block).data
                record.add(data or "", at)
    except httpx.TransportError as exc:
        raise StreamBroken(
            f"the stream broke after {record.events} event(s) and {len(record.token_times)} token(s): "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def _ttft_problem(ttft: float | None, limit: float | None) -> str | None:
    if limit is None:
        return None
    if ttft is None:
        return "no token arrived, so the TTFT threshold cannot be met"
    return too_slow(ttft, limit, "TTFT")


def _error_message(body: bytes) -> str:
    """An OpenAI-style error body's message, or the start of the body."""
    try:
        error = json.loads(body)["error"]
        return str(error["message"] if isinstance(error, dict) else error)
    except (ValueError, KeyError, TypeError):
        return body[:BODY_EXCERPT].decode("utf-8", "replace")
