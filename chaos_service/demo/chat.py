"""The demo's third part: the sandbox's chat back-end under faults, seen by a chat client.

A sandbox runs the chat back-end behind the engine's four proxies. Each scenario
applies a fault, has a client send messages over the WebSocket, and reports how the
runs ended, how long they took and what /health said. The last scenario repeats a
fault on a back-end with a seeded defect, to show the failure an experiment catches.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from chaos_service.demo.common import toxics_applied
from chaos_service.sandbox.chat.auth import issue_token
from chaos_service.sandbox.chat.events import TERMINAL
from chaos_service.sandbox.environment import Environment
from chaos_service.sandbox.stack import Sandbox

RUNS = 5
TIMEOUT = 30.0
MESSAGE = "Where is my order? [[stub tool=lookup_order tokens=8]]"


@dataclass(frozen=True, slots=True)
class Outcome:
    runs: int
    completed: int
    errors: Counter[str]
    seconds: list[float]
    health: str

    def describe(self) -> str:
        parts = [f"{self.completed}/{self.runs} runs completed"]
        if self.seconds:
            parts.append(f"p50 {statistics.median(self.seconds) * 1000:7.1f} ms")
        parts.append(f"health {self.health:<8}")
        parts += [f"agent_error {reason} x{count}" for reason, count in self.errors.items()]
        return "  ".join(parts)


class ChatUser:
    """A user's WebSocket session with the back-end, through the chat_ws proxy."""

    def __init__(self, environment: Environment, user: str) -> None:
        self.environment = environment
        self.token = issue_token(environment.auth.secret, user, 600)

    @contextmanager
    def session(self) -> Iterator[ClientConnection]:
        with connect(f"{self.environment.endpoints['chat_ws']}?token={self.token}", open_timeout=TIMEOUT) as ws:
            yield ws

    def run(self, ws: ClientConnection, content: str = MESSAGE) -> list[dict[str, Any]]:
        ws.send(json.dumps({"type": "message", "content": content}))
        return read_run(ws)


def read_run(ws: ClientConnection, events: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """A run's events up to its terminal one, appended to ``events`` as they come (other messages are skipped)."""
    events = [] if events is None else events
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        message = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if "seq" in message:
            events.append(message)
            if message["type"] in TERMINAL:
                return events
    raise TimeoutError(f"no terminal event within {TIMEOUT:g} s")


def measure(user: ChatUser, health_url: str) -> Outcome:
    completed, errors, seconds = 0, Counter[str](), []
    with user.session() as ws:
        for _ in range(RUNS):
            started = time.monotonic()
            final = user.run(ws)[-1]
            seconds.append(time.monotonic() - started)
            if final["type"] == "agent_completed":
                completed += 1
            else:
                errors[final["data"]["reason"]] += 1
    health = httpx.get(health_url, timeout=TIMEOUT).json()["status"]
    return Outcome(RUNS, completed, errors, seconds, health)


def resume_after_drop(user: ChatUser, api: httpx.Client) -> str:
    """Lose the connection mid-run, reconnect, resume after the last event seen; check the whole run."""
    content = "[[stub tokens=20 pace_ms=10]]"
    drop = {"type": "ws_close", "stream": "downstream", "attributes": {"after": 6, "code": 1006}}
    seen: list[dict[str, Any]] = []
    with toxics_applied(api, "chat_ws", [drop]), user.session() as ws:
        ws.send(json.dumps({"type": "message", "content": content}))
        with suppress(ConnectionClosed):
            read_run(ws, seen)
    with user.session() as ws:
        ws.send(json.dumps({"type": "resume", "run_id": seen[-1]["run_id"], "after_seq": seen[-1]["seq"]}))
        rest = read_run(ws)
    seqs = [event["seq"] for event in seen + rest]
    intact = seqs == list(range(len(seqs))) and (seen + rest)[-1]["type"] == "agent_completed"
    verdict = "complete, in order, no duplicates" if intact else f"BROKEN: seqs {seqs}"
    return f"{len(seen)} events, dropped, resumed: {len(rest)} more — {verdict}"


Say = Callable[[str], None]

LLM_503 = {"type": "fail_attempts", "attributes": {"attempts": 1, "status": 503}}


def run(say: Say) -> None:
    say("the sandbox: a chat back-end reaching Postgres, Redis and the LLM only through the engine")
    with tempfile.TemporaryDirectory(prefix="chaos-demo-") as tmp, open(Path(tmp) / "log", "w") as log:
        with Sandbox(Path(tmp) / "sandbox", ports="auto", log_to=log) as sandbox:
            environment = sandbox.environment
            health_url = environment.endpoints["health"]
            user = ChatUser(environment, "demo-user")
            with httpx.Client(base_url=environment.engine, timeout=TIMEOUT) as api:
                say(f"  {'no faults':<38} {measure(user, health_url).describe()}")
                api.post("/proxies/redis", json={"enabled": False}).raise_for_status()
                try:
                    say(f"  {'Redis down (proxy disabled)':<38} {measure(user, health_url).describe()}")
                finally:
                    api.post("/proxies/redis", json={"enabled": True}).raise_for_status()
                latency = [{"type": "latency", "attributes": {"latency": 30}}]
                with toxics_applied(api, "postgres", latency):
                    say(f"  {'Postgres replies +30 ms':<38} {measure(user, health_url).describe()}")
                with toxics_applied(api, "llm", [LLM_503]):
                    say(f"  {'LLM 503 on each first attempt':<38} {measure(user, health_url).describe()}")
                say(f"  {'connection lost mid-run':<38} {resume_after_drop(user, api)}")
        with Sandbox(Path(tmp) / "defect", ports="auto", defects=["no_retry_on_llm_503"], log_to=log) as sandbox:
            environment = sandbox.environment
            user = ChatUser(environment, "demo-user")
            with httpx.Client(base_url=environment.engine, timeout=TIMEOUT) as api:
                with toxics_applied(api, "llm", [LLM_503]):
                    outcome = measure(user, environment.endpoints["health"])
                say(f"  {'the same, defect no_retry_on_llm_503':<38} {outcome.describe()}")
