"""The chat back-end end to end through all four proxies, with real Postgres, Redis and LLM stub."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from chaos_service.sandbox.chat.events import RUN_GRAMMAR, run_shape
from tests.support.chat import ChatStack

TOOL_MESSAGE = "Where is my order? [[stub tool=lookup_order tokens=4]]"


def run_types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


def assert_well_formed(events: list[dict[str, Any]], user: str) -> None:
    assert re.fullmatch(RUN_GRAMMAR, run_shape(run_types(events))), run_types(events)
    assert [event["seq"] for event in events] == list(range(len(events)))
    assert {event["run_id"] for event in events} == {events[0]["run_id"]}
    assert {event["user_id"] for event in events} == {user}
    stamps = [event["ts"] for event in events]
    assert stamps == sorted(stamps)


@pytest.fixture
def stack(chat_stack: Callable[..., ChatStack]) -> ChatStack:
    return chat_stack()


def test_the_golden_path_goes_through_every_proxy(stack: ChatStack) -> None:
    with stack.connect("alice") as client:
        events = client.run(TOOL_MESSAGE, client_msg_id="m-1")
    assert run_types(events) == [
        "agent_started",
        "tool_executing",
        "tool_completed",
        *["agent_thinking"] * 4,
        "agent_completed",
    ]
    assert_well_formed(events, "alice")
    assert events[0]["data"] == {"client_msg_id": "m-1"}
    executing, completed = events[1]["data"], events[2]["data"]
    assert executing["tool"] == completed["tool"] == "lookup_order"
    assert executing["call_id"] == completed["call_id"]
    assert completed["result"]["status"] == "shipped" and completed["result"]["order_id"].startswith("ord-")
    tokens = "".join(event["data"]["token"] for event in events if event["type"] == "agent_thinking")
    assert events[-1]["data"]["text"] == tokens == "The quick brown fox"
    for role in ("postgres", "redis", "llm", "chat_ws"):
        stats = stack.api.get(f"/proxies/{stack.proxies[role]}/stats").json()
        assert stats["upstream"]["bytes"] > 0 and stats["downstream"]["bytes"] > 0, role


def test_the_tool_records_each_lookup_in_postgres(stack: ChatStack) -> None:
    with stack.connect("lookup-user") as client:
        first = client.run(TOOL_MESSAGE)[2]["data"]["result"]
        second = client.run(TOOL_MESSAGE)[2]["data"]["result"]
    assert second == {**first, "lookups": first["lookups"] + 1}


def test_a_run_without_tools_streams_the_llm_reply(stack: ChatStack) -> None:
    with stack.connect("bob") as client:
        events = client.run("hello there")
    assert run_types(events) == ["agent_started", *["agent_thinking"] * 3, "agent_completed"]
    assert events[-1]["data"]["text"] == "Echo: hello there"
    assert_well_formed(events, "bob")


@pytest.mark.parametrize(
    ("token", "code", "reason"),
    [
        (None, 4401, "missing token"),
        ("garbage", 4400, "malformed token"),
        ("wrong-key", 4401, "invalid token signature"),
        ("expired", 4401, "token expired"),
    ],
)
def test_refused_tokens_are_closed_with_their_code_and_reason(
    stack: ChatStack, token: str | None, code: int, reason: str
) -> None:
    from chaos_service.sandbox.chat.auth import issue_token

    tokens = {
        None: None,
        "garbage": "garbage",
        "wrong-key": issue_token("another-secret-" * 4, "alice"),
        "expired": stack.token("alice", ttl=-5),
    }
    client = stack.connect(None, token=tokens[token])
    assert client.close_code() == (code, reason)


def test_the_token_may_come_in_an_authorization_header(stack: ChatStack) -> None:
    from websockets.sync.client import connect

    with connect(stack.ws_url, additional_headers={"Authorization": f"Bearer {stack.token('carol')}"}) as ws:
        ws.send('{"type":"ping"}')
        assert ws.recv(timeout=10) == '{"type":"pong"}'


def test_bad_messages_get_an_error_and_the_connection_stays_open(stack: ChatStack) -> None:
    with stack.connect("dave") as client:
        client.send(type="shout")
        assert client.recv() == {"type": "error", "error": "type must be one of message, resume, ping"}
        client.connection.send(b"\x00binary")
        assert client.recv() == {"type": "error", "error": "send JSON text messages"}
        client.send(type="resume", run_id="no-such-run", after_seq=0)
        assert client.recv() == {"type": "error", "error": "unknown run"}
        assert client.ping() == []


def test_a_dropped_client_resumes_and_receives_exactly_what_it_missed(stack: ChatStack) -> None:
    with stack.connect("erin") as client:
        client.send(type="message", content="[[stub tokens=12 pace_ms=5]]", client_msg_id="m-7")
        seen = client.until(lambda m: m.get("seq") == 4)
    # The connection is gone; the run goes on. A new connection resumes after the last event seen.
    with stack.connect("erin") as client:
        client.send(type="resume", run_id=seen[0]["run_id"], after_seq=4)
        rest = client.until(lambda m: m.get("type") == "agent_completed")
    resumed = [m for m in rest if m["type"] == "resumed"]
    events = [m for m in rest if m["type"] != "resumed"]
    assert len(resumed) == 1 and resumed[0]["run_id"] == seen[0]["run_id"]
    assert_well_formed(seen + events, "erin")
    assert len(seen + events) == 14


def test_resume_by_client_message_id_replays_the_whole_run(stack: ChatStack) -> None:
    with stack.connect("frank") as client:
        events = client.run("[[stub tokens=3]]", client_msg_id="ask-1")
    with stack.connect("frank") as client:
        client.send(type="resume", client_msg_id="ask-1", after_seq=-1)
        replay = client.until(lambda m: m.get("type") == "resumed")
    assert replay[:-1] == events
    assert replay[-1] == {"type": "resumed", "run_id": events[0]["run_id"], "replayed": len(events)}


def test_a_repeated_client_message_id_does_not_start_a_second_run(stack: ChatStack) -> None:
    with stack.connect("gina") as client:
        first = client.run("[[stub tokens=2]]", client_msg_id="once")
        again = client.run("[[stub tokens=2]]", client_msg_id="once")
    assert again[:-1][: len(first)] == first[: len(again) - 1] or again[-len(first) :] == first
    assert {event["run_id"] for event in again if "run_id" in event} == {first[0]["run_id"]}


def test_users_cannot_resume_each_others_runs(stack: ChatStack) -> None:
    with stack.connect("henry") as henry:
        run_id = henry.run("[[stub tokens=2]]")[0]["run_id"]
    with stack.connect("ivy") as ivy:
        ivy.send(type="resume", run_id=run_id, after_seq=-1)
        assert ivy.recv() == {"type": "error", "error": "unknown run"}


def test_concurrent_users_see_only_their_own_events(stack: ChatStack) -> None:
    users = [f"user-{n}" for n in range(4)]
    clients = {user: stack.connect(user) for user in users}
    second_alice = stack.connect("user-0")
    for user, client in clients.items():
        client.send(type="message", content=f"[[stub tokens=6 pace_ms=3]] from {user}")
    for user, client in clients.items():
        events = client.until(lambda m: m.get("type") == "agent_completed")
        assert {event["user_id"] for event in events} == {user}
        assert_well_formed(events, user)
    # A user's other connection receives the same run (fan-out), and nothing of anyone else.
    mirrored = second_alice.until(lambda m: m.get("type") == "agent_completed")
    assert mirrored == clients["user-0"].received
    for client in clients.values():
        assert client.ping() == []


def test_health_reports_every_dependency(stack: ChatStack) -> None:
    status, report = stack.health()
    assert status == 200 and report["status"] == "ok"
    for name in ("postgres", "redis", "llm"):
        assert report["dependencies"][name]["status"] == "ok"
        assert report["dependencies"][name]["latency_ms"] >= 0
    assert report["defects"] == [] and report["active_runs"] == 0
