"""Each seeded defect breaks its one property; with the defect off the property holds.

Every test runs twice, with the defect on and off, and asserts the property's state
directly, with a client talking to the back-end itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support.chat import ChatStack

ON_OFF = pytest.mark.parametrize("defect_on", [False, True], ids=["off", "on"])


def start(chat_stack: Callable[..., ChatStack], defect: str, defect_on: bool) -> ChatStack:
    return chat_stack(*([defect] if defect_on else []))


@ON_OFF
def test_lose_events_on_resume(chat_stack: Callable[..., ChatStack], defect_on: bool) -> None:
    stack = start(chat_stack, "lose_events_on_resume", defect_on)
    with stack.connect("ann", direct=True) as client:
        events = client.run("[[stub tokens=6]]")
    with stack.connect("ann", direct=True) as client:
        client.send(type="resume", run_id=events[0]["run_id"], after_seq=2)
        replay = client.until(lambda m: m.get("type") == "resumed")[:-1]
    delivered = [event["seq"] for event in replay]
    if defect_on:
        assert delivered == list(range(4, len(events)))  # seq 3 never arrives
    else:
        assert replay == events[3:]


@ON_OFF
def test_reorder_tool_events(chat_stack: Callable[..., ChatStack], defect_on: bool) -> None:
    stack = start(chat_stack, "reorder_tool_events", defect_on)
    stack.add_toxic("postgres", "latency", latency=15, jitter=15)
    clients = [stack.connect(f"tom-{n}", direct=True) for n in range(16)]
    for client in clients:
        client.send(type="message", content="[[stub tool=lookup_order tokens=1]]")
    orders = []
    for client in clients:
        events = client.until(lambda m: m.get("type") in ("agent_completed", "agent_error"), timeout=30)
        orders.append([event["type"] for event in events if event["type"].startswith("tool_")])
    reordered = [order for order in orders if order != ["tool_executing", "tool_completed"]]
    if defect_on:
        assert reordered, "no run had its tool events out of order"
        assert all(sorted(order) == ["tool_completed", "tool_executing"] for order in reordered)
    else:
        assert reordered == []


@ON_OFF
def test_leak_events_after_reconnect(chat_stack: Callable[..., ChatStack], defect_on: bool) -> None:
    stack = start(chat_stack, "leak_events_after_reconnect", defect_on)
    with stack.connect("alice", direct=True) as first:
        assert first.ping() == []  # attached to a slot
    stack.wait_for_sessions(0)  # and its slot is free again
    with stack.connect("bob", direct=True) as bob, stack.connect("alice", direct=True) as alice:
        alice.run("[[stub tokens=3]] private to alice")
        leaked: list[dict[str, Any]] = bob.ping()  # whatever bob got before his pong
    if defect_on:
        assert leaked and {event["user_id"] for event in leaked} == {"alice"}
    else:
        assert leaked == []


@ON_OFF
def test_no_retry_on_llm_503(chat_stack: Callable[..., ChatStack], defect_on: bool) -> None:
    stack = start(chat_stack, "no_retry_on_llm_503", defect_on)
    stack.add_toxic("llm", "fail_attempts", attempts=1, status=503)
    with stack.connect("una", direct=True) as client:
        events = client.run("[[stub tokens=3]]")
    if defect_on:
        assert events[-1]["type"] == "agent_error" and events[-1]["data"]["reason"] == "llm_status_503"
    else:
        assert events[-1]["type"] == "agent_completed"


@ON_OFF
def test_postgres_pool_never_reconnects(chat_stack: Callable[..., ChatStack], defect_on: bool) -> None:
    stack = start(chat_stack, "postgres_pool_never_reconnects", defect_on)
    with stack.connect("paul", direct=True) as client:
        assert client.run("[[stub tokens=2]]")[-1]["type"] == "agent_completed"
        stack.set_enabled("postgres", False)  # a partition cuts the connections…
        stack.set_enabled("postgres", True)  # …and heals
        after = [client.run("[[stub tool=lookup_order tokens=2]]")[-1] for _ in range(3)]
    if defect_on:
        assert {event["data"]["reason"] for event in after} == {"postgres_unavailable"}
    else:
        assert {event["type"] for event in after} == {"agent_completed"}


@ON_OFF
def test_redis_hard_dependency(chat_stack: Callable[..., ChatStack], defect_on: bool) -> None:
    stack = start(chat_stack, "redis_hard_dependency", defect_on)
    with stack.connect("rob", direct=True) as client:
        assert client.ping() == []  # the session is open (its state is in Redis) before Redis goes
        stack.set_enabled("redis", False)
        events = client.run("[[stub tokens=3]]")
    late = stack.connect("rob", direct=True)
    if defect_on:
        assert events[-1]["type"] == "agent_error" and events[-1]["data"]["reason"] == "redis_unavailable"
        assert late.close_code() == (1011, "session store unavailable")
    else:
        assert events[-1]["type"] == "agent_completed"
        assert late.ping() == []


def test_every_defect_is_reported_by_health(chat_stack: Callable[..., ChatStack]) -> None:
    from chaos_service.sandbox.chat.config import DEFECTS

    stack = chat_stack(*DEFECTS)
    assert stack.health()[1]["defects"] == sorted(DEFECTS)
