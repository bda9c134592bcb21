"""The golden path's resilience: degradable Redis, Postgres reconnects, LLM retries, bounded runs."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from chaos_service.sandbox.chat.agent import FINAL_EVENT_BUDGET
from chaos_service.sandbox.chat.events import RUN_GRAMMAR, run_shape
from tests.support.chat import ChatStack


def wait_for_health(stack: ChatStack, status: str, timeout: float = 10.0) -> dict[str, object]:
    """Until /health reports ``status`` (the back-end's own view; there is no event to await)."""
    deadline = time.monotonic() + timeout
    while True:
        report = stack.health()[1]
        if report["status"] == status:
            return report
        assert time.monotonic() < deadline, f"health stayed {report}"
        time.sleep(0.05)


def test_a_redis_outage_degrades_delivery_and_recovers(chat_stack: Callable[..., ChatStack]) -> None:
    stack = chat_stack()
    with stack.connect("rita") as client:
        assert client.ping() == []
        stack.set_enabled("redis", False)
        events = client.run("[[stub tokens=5]]")
        assert events[-1]["type"] == "agent_completed" and len(events) == 7
        report = wait_for_health(stack, "degraded")
        assert report["dependencies"]["redis"]["status"] in ("down", "degraded")  # type: ignore[index]
        stack.set_enabled("redis", True)
        wait_for_health(stack, "ok")
        assert client.run("[[stub tokens=2]]")[-1]["type"] == "agent_completed"


def test_postgres_connections_are_replaced_after_a_partition(chat_stack: Callable[..., ChatStack]) -> None:
    stack = chat_stack()
    with stack.connect("pete") as client:
        assert client.run("[[stub tool=lookup_order tokens=2]]")[-1]["type"] == "agent_completed"
        stack.set_enabled("postgres", False)  # cuts every pooled connection
        stack.set_enabled("postgres", True)
        events = client.run("[[stub tool=lookup_order tokens=2]]")
    assert events[-1]["type"] == "agent_completed", events[-1]


def test_a_run_that_cannot_finish_ends_with_agent_error_within_its_deadline(
    chat_stack: Callable[..., ChatStack],
) -> None:
    stack = chat_stack(run_deadline=2.0)
    with stack.connect("dora") as client:
        stack.add_toxic("llm", "sse_stall", after=2, duration=0)  # the stream stops after two events
        started = time.monotonic()
        events = client.run("[[stub tokens=6]]", timeout=20)
        elapsed = time.monotonic() - started
    assert events[-1]["type"] == "agent_error"
    assert events[-1]["data"]["reason"] == "deadline"
    assert 2.0 <= elapsed < 2.0 + FINAL_EVENT_BUDGET


def test_a_black_holed_postgres_ends_runs_within_the_deadline(chat_stack: Callable[..., ChatStack]) -> None:
    stack = chat_stack(run_deadline=2.0)
    with stack.connect("hank") as client:
        stack.add_toxic("postgres", "timeout", stream="upstream", timeout=0)
        started = time.monotonic()
        events = client.run("[[stub tool=lookup_order]]", timeout=20)
        elapsed = time.monotonic() - started
    assert [e["type"] for e in events] == ["agent_started", "agent_error"]
    assert events[-1]["data"]["reason"] == "deadline"
    assert elapsed < 2.0 + FINAL_EVENT_BUDGET + 1.0


def test_llm_503s_before_the_first_token_are_retried(chat_stack: Callable[..., ChatStack]) -> None:
    stack = chat_stack()
    stack.add_toxic("llm", "fail_attempts", attempts=2, status=503)
    with stack.connect("lena") as client:
        events = client.run("[[stub tokens=3]]")
    assert events[-1]["type"] == "agent_completed"
    fired = stack.api.get(f"/proxies/{stack.proxies['llm']}/stats").json()["toxics"]
    assert sum(toxic["fired"] for toxic in fired.values()) >= 2


def test_a_stream_cut_after_tokens_is_not_retried(chat_stack: Callable[..., ChatStack]) -> None:
    stack = chat_stack()
    stack.add_toxic("llm", "sse_cut", after=3)
    with stack.connect("carl") as client:
        events = client.run("[[stub tokens=8]]")
    assert events[-1]["type"] == "agent_error"
    assert events[-1]["data"]["reason"] == "llm_stream_broken"
    thinking = [e for e in events if e["type"] == "agent_thinking"]
    assert 1 <= len(thinking) < 8


def test_a_tool_cut_off_by_a_postgres_failure_is_answered_before_the_run_ends(
    chat_stack: Callable[..., ChatStack],
) -> None:
    stack = chat_stack()
    with stack.connect("tess") as client:
        # Every Postgres reply takes 0.5 s, so the tool's query is still in flight when
        # tool_executing (stored first) reaches the client; then Postgres goes away.
        stack.add_toxic("postgres", "latency", latency=500)
        client.send(type="message", content="[[stub tool=lookup_order tokens=2]]")
        before = client.until(lambda m: m.get("type") == "tool_executing")
        stack.set_enabled("postgres", False)
        after = client.until(lambda m: m.get("type") in ("agent_completed", "agent_error"))
    events = [e for e in before + after if "run_id" in e]
    types = [e["type"] for e in events]
    assert run_shape(types) and re.fullmatch(RUN_GRAMMAR, run_shape(types)), types
    assert types[-2:] == ["tool_completed", "agent_error"], types
    completed = events[-2]["data"]
    assert completed["call_id"] == events[types.index("tool_executing")]["data"]["call_id"]
    assert completed["error"] == events[-1]["data"]["reason"] == "postgres_unavailable"
    assert [e["seq"] for e in events] == list(range(len(events)))
