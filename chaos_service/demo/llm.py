"""The demo's second part: the LLM stub behind an http proxy, seen by the openai client.

Each scenario streams one chat completion through the proxy while an http toxic acts,
and reports what the application would see: the tokens that arrived, the finish
reason, how long it took, the client's error and how many attempts reached the proxy.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import openai

from chaos_service.demo.common import toxics_applied
from chaos_service.sandbox.llm_stub.process import LlmStubProcess

TOKENS = 12


@dataclass(frozen=True, slots=True)
class Scenario:
    title: str
    toxic: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class StreamOutcome:
    tokens: int
    finish_reason: str | None
    seconds: float
    first_token: float | None
    error: str | None
    attempts: int

    def describe(self) -> str:
        parts = [f"{self.tokens:2d}/{TOKENS} tokens", f"finish {self.finish_reason or '-':<5}"]
        parts.append(f"{self.seconds:5.2f} s")
        if self.first_token is not None:
            parts.append(f"first token {self.first_token:4.2f} s")
        parts.append(f"{self.attempts} attempt{'s' if self.attempts != 1 else ''}")
        if self.error:
            parts.append(f"error: {self.error}")
        return "  ".join(parts)


def scenarios() -> list[Scenario]:
    return [
        Scenario("no faults", None),
        Scenario(
            "429 twice, Retry-After 0.3 s",
            {"type": "fail_attempts", "attributes": {"attempts": 2, "status": 429, "retry_after": 0.3}},
        ),
        Scenario("slow first token (+800 ms)", {"type": "http_delay", "attributes": {"delay": 800}}),
        Scenario("stream cut cleanly after 5 events", {"type": "sse_cut", "attributes": {"after": 5}}),
        Scenario("stream reset after 5 events", {"type": "sse_cut", "attributes": {"after": 5, "mode": "reset"}}),
        Scenario("in-stream error after 5 events", {"type": "sse_error", "attributes": {"after": 5}}),
        Scenario(
            "stall 1 s with keep-alives",
            {"type": "sse_stall", "attributes": {"after": 5, "duration": 1000, "keepalive": 200}},
        ),
    ]


def stream_once(client: openai.OpenAI, requests: Callable[[], int]) -> StreamOutcome:
    """Stream one completion; ``requests`` reads how many requests the proxy has seen."""
    before = requests()
    started = time.monotonic()
    tokens, finish, first, error = 0, None, None, None
    try:
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Tell me about the steady state."}],
            stream=True,
            extra_body={"stub": {"tokens": TOKENS, "pace_ms": 20}},
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                tokens += 1
                first = first if first is not None else time.monotonic() - started
            if chunk.choices and chunk.choices[0].finish_reason:
                finish = chunk.choices[0].finish_reason
    except Exception as exc:  # the point is to show whatever the client raises
        error = type(exc).__name__
    return StreamOutcome(tokens, finish, time.monotonic() - started, first, error, requests() - before)


def run(api: httpx.Client, say: Callable[[str], None]) -> None:
    """Put the LLM stub behind an http proxy and show each fault from the openai client's side."""
    with LlmStubProcess(log_level="warning") as stub:
        upstream = stub.url.removeprefix("http://")
        created = api.post("/proxies", json={"name": "llm", "upstream": upstream, "protocol": "http"})
        created.raise_for_status()
        listen = created.json()["listen"]
        say(f"llm: the LLM stub on {upstream} behind http proxy {listen}; openai client, 2 retries")
        client = openai.OpenAI(base_url=f"http://{listen}/v1", api_key="demo", max_retries=2, timeout=10)

        def requests() -> int:
            return int(api.get("/proxies/llm/stats").json()["upstream"]["messages"])

        for scenario in scenarios():
            with toxics_applied(api, "llm", [scenario.toxic] if scenario.toxic else []):
                say(f"  {scenario.title:<38} {stream_once(client, requests).describe()}")
        client.close()
        api.delete("/proxies/llm").raise_for_status()
