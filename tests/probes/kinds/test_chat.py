"""Chat virtual users against a real chat back-end behind a websocket proxy: runs, drops, resumes, defects."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from chaos_service.probes.kinds.base import ProbeFailure
from chaos_service.probes.kinds.chat import ChatVirtualUser
from chaos_service.probes.kinds.crowd import VirtualUsers
from chaos_service.probes.records import Observation, Outcome, ProbeResult
from chaos_service.probes.schedule import OpenLoopRunner, Schedule
from chaos_service.sandbox.chat.auth import issue_token
from tests.support.chat import ChatStack

TOOL_RUN = "[[stub tool=lookup_order tokens=3]]"  # agent_started, a tool call, 3 tokens, agent_completed
NO_TOOLS = "agent_started agent_thinking* (agent_completed | agent_error)"
SLOW_RUN = "[[stub tokens=20 pace_ms=20]]"  # 22 events over ~0.4 s: a drop after seq 3 lands mid-run
EVENTS_OF_SLOW_RUN = 22


def drop_after_seq_3(stack: ChatStack) -> None:
    """Abort the client's connection (1006: no close frame) right after it is sent the event with seq 3.

    A resume replays from seq 4 on, so the replacement connection is never dropped again.
    """
    stack.add_toxic("chat_ws", "ws_close", "downstream", after=1, code=1006, field="seq", value="3")


def user_of(stack: ChatStack, name: str, **options: Any) -> ChatVirtualUser:
    return ChatVirtualUser(stack.ws_url, name, stack.token(name), **options)


async def attempt(user: ChatVirtualUser) -> Observation:
    try:
        return await user()
    finally:
        await user.close()


def test_healthy_users_run_well_formed_runs_on_a_phase_shifted_schedule(
    chat_stack: Callable[..., ChatStack],
) -> None:
    stack = chat_stack()
    users = VirtualUsers(stack.ws_url, {f"vu-{n}": stack.token(f"vu-{n}") for n in range(3)}, period=0.3, deadline=10)

    async def main() -> list[ProbeResult]:
        start = time.monotonic()
        return await users.run(start, start + 0.85)

    results = asyncio.run(main())
    assert [r.outcome for r in results] == [Outcome.OK] * 9, [r.error for r in results]
    first = {r.probe: r.scheduled for r in results if r.index == 0}
    phases = sorted(at - min(first.values()) for at in first.values())
    assert phases == pytest.approx([0.0, 0.1, 0.2])
    for result in results:
        assert result.details["terminal"] == "agent_completed"
        assert result.details["events"] == 7  # agent_started, 5 tokens, agent_completed
        assert 0 <= result.details["started_s"] <= result.details["first_token_s"] <= result.details["terminal_s"]
        assert result.details["lost"] == result.details["duplicated"] == []
        assert result.details["reconnects"] == result.details["leaks"] == 0
    for user in users.users:
        report = user.delivery_report()
        assert report.ok, report.summary()
        assert (report.expected, report.delivered, len(report.runs)) == (21, 21, 3)
        assert len(user.connections) == 1 and user.connections[0].code == 1000  # closed by the user at the end
        assert all(arrival.message["user_id"] == user.user for arrival in user.arrivals)


def test_a_dropped_connection_is_resumed_and_the_run_completes_exactly_once(
    chat_stack: Callable[..., ChatStack],
) -> None:
    stack = chat_stack()
    drop_after_seq_3(stack)
    user = user_of(stack, "dropped", content=SLOW_RUN)
    observation = asyncio.run(attempt(user))
    assert observation.valid, observation.reason
    assert observation.details["reconnects"] >= 1 and observation.details["resumes"] >= 1
    assert observation.details["events"] == EVENTS_OF_SLOW_RUN
    first = user.connections[0]
    assert first.code is None and first.closed is not None  # aborted, no close frame
    report = user.delivery_report()
    assert report.ok, report.summary()
    assert (report.expected, report.delivered, report.duplicates, report.lost) == (22, 22, 0, 0)
    resumed = [a.message for a in user.arrivals if a.message.get("type") == "resumed"]
    assert resumed and {m["run_id"] for m in resumed} == {observation.details["run_id"]}


def test_events_lost_on_resume_make_the_attempt_invalid(chat_stack: Callable[..., ChatStack]) -> None:
    stack = chat_stack("lose_events_on_resume")
    drop_after_seq_3(stack)
    user = user_of(stack, "loser", content=SLOW_RUN)
    observation = asyncio.run(attempt(user))
    seen_first = max(a.message["seq"] for a in user.arrivals if a.connection == 1)  # 3, unless the drop took it
    skipped = seen_first + 1  # the resume after seen_first replays from seen_first + 2
    assert not observation.valid
    assert observation.reason is not None and f"lost seq {skipped}" in observation.reason
    assert observation.details["lost"] == [skipped] and observation.details["reconnects"] >= 1
    report = user.delivery_report()
    run_id = observation.details["run_id"]
    assert report.lost_gaps == ((run_id, skipped),) and report.lost_tail == ()
    assert (report.expected, report.delivered, report.duplicates) == (22, 21, 0)


@pytest.mark.parametrize("defect_on", [False, True], ids=["healthy", "defect"])
def test_events_leaked_to_a_reused_connection_are_detected(
    chat_stack: Callable[..., ChatStack], defect_on: bool
) -> None:
    stack = chat_stack(*(["leak_events_after_reconnect"] if defect_on else []))
    asyncio.run(attempt(user_of(stack, "alice")))  # alice's first connection ends: its slot is free
    stack.wait_for_sessions(0)
    alice, bob = user_of(stack, "alice"), user_of(stack, "bob")

    async def main() -> tuple[Observation, Observation]:
        try:
            await bob.connect()  # takes the slot alice's first connection left
            alices = await alice()  # alice is back, on a new connection
            return alices, await bob()
        finally:
            await asyncio.gather(alice.close(), bob.close())

    alices, bobs = asyncio.run(main())
    assert alices.valid, alices.reason
    report = bob.delivery_report()
    if defect_on:
        assert not bobs.valid and bobs.reason is not None and "7 event(s) of other users" in bobs.reason
        assert bobs.details["leaks"] == 7
        assert {a.message["run_id"] for a in bob.leaks()} == {alices.details["run_id"]}
        assert (report.leaks, report.leaked_users) == (7, ("alice",))
    else:
        assert bobs.valid, bobs.reason
        assert bob.leaks() == [] and report.ok, report.summary()


def test_attempts_fail_while_the_proxy_is_disabled_and_succeed_after(chat_stack: Callable[..., ChatStack]) -> None:
    stack = chat_stack()
    user = user_of(stack, "dora", open_timeout=2.0, max_backoff=0.5)
    runner = OpenLoopRunner(user, Schedule(period=60.0, deadline=3.0))

    async def once() -> ProbeResult:
        start = time.monotonic()
        [result] = await runner.run(start, start + 1.0)
        return result

    async def main() -> list[ProbeResult]:
        try:
            before = await once()
            await asyncio.to_thread(stack.set_enabled, "chat_ws", False)
            during = [await once(), await once()]
            await asyncio.to_thread(stack.set_enabled, "chat_ws", True)
            return [before, *during, await once(), await once()]
        finally:
            await user.close()

    before, *during, after, again = asyncio.run(main())
    assert before.outcome is Outcome.OK, before.error
    assert {r.outcome for r in during} <= {Outcome.ERROR, Outcome.TIMEOUT}, [(r.outcome, r.error) for r in during]
    assert after.outcome is Outcome.OK and again.outcome is Outcome.OK, (after.error, again.error)
    assert user.reconnects >= 1


def test_a_refused_token_is_an_error_with_the_close_code(chat_stack: Callable[..., ChatStack]) -> None:
    stack = chat_stack()
    user = ChatVirtualUser(stack.ws_url, "mallory", issue_token("x" * 32, "mallory"))
    with pytest.raises(ProbeFailure, match=r"closed the connection with 4401 \(invalid token signature\)"):
        asyncio.run(attempt(user))
    assert [(c.code, c.reason) for c in user.connections] == [(4401, "invalid token signature")]


def test_an_agent_error_is_invalid_with_its_reason(chat_stack: Callable[..., ChatStack]) -> None:
    stack = chat_stack("no_retry_on_llm_503")
    stack.add_toxic("llm", "fail_attempts", attempts=1, status=503)
    observation = asyncio.run(attempt(user_of(stack, "erin")))
    assert not observation.valid and observation.reason == "agent_error (llm_status_503)"
    assert observation.details["terminal"] == "agent_error" and observation.details["lost"] == []


def test_a_sequence_that_forbids_tools_marks_a_tool_run_invalid(chat_stack: Callable[..., ChatStack]) -> None:
    stack = chat_stack()
    strict = user_of(stack, "strict", content=TOOL_RUN, sequence=NO_TOOLS)
    default = user_of(stack, "default", content=TOOL_RUN)
    rejected, accepted = asyncio.run(attempt(strict)), asyncio.run(attempt(default))
    assert accepted.valid, accepted.reason
    assert default.delivery_report().ok, default.delivery_report().summary()
    assert not rejected.valid
    assert rejected.reason is not None and rejected.reason.startswith("sequence: event 1: got tool_executing")
    assert (rejected.details["terminal"], rejected.details["lost"]) == ("agent_completed", [])  # only the grammar
    assert list(strict.delivery_report().invalid_delivered) == [rejected.details["run_id"]]


def test_a_sequence_accepts_the_runs_it_describes(chat_stack: Callable[..., ChatStack]) -> None:
    stack = chat_stack()
    user = user_of(stack, "plain", sequence=NO_TOOLS)  # the default content: 5 tokens, no tool
    observation = asyncio.run(attempt(user))
    assert observation.valid, observation.reason
    assert user.delivery_report().ok, user.delivery_report().summary()
