"""The back-end holds 1,000 concurrent WebSocket sessions through the chat_ws proxy, each doing a run."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable

import pytest
from websockets.asyncio.client import ClientConnection, connect

from chaos_service.sandbox.chat.events import RUN_GRAMMAR, TERMINAL, run_shape
from tests.support.chat import ChatStack

pytestmark = pytest.mark.serial

SESSIONS = 1000
TIMEOUT = 120.0


async def open_sessions(stack: ChatStack, count: int) -> list[ClientConnection]:
    tokens = [stack.token(f"crowd-{n}") for n in range(count)]
    connections: list[ClientConnection] = []
    for batch in range(0, count, 100):  # in batches, so the listen backlog never overflows
        opened = await asyncio.gather(
            *(connect(f"{stack.ws_url}?token={token}", open_timeout=30) for token in tokens[batch : batch + 100])
        )
        connections.extend(opened)
    return connections


async def one_run(connection: ClientConnection, n: int) -> list[dict[str, object]]:
    await connection.send(json.dumps({"type": "message", "content": f"[[stub tokens=3]] #{n}"}))
    events = []
    while True:
        event = json.loads(await connection.recv())
        events.append(event)
        if event["type"] in TERMINAL:
            return events


async def crowd(stack: ChatStack) -> tuple[int, list[list[dict[str, object]]]]:
    connections = await open_sessions(stack, SESSIONS)
    try:
        sessions = (await asyncio.to_thread(stack.health))[1]["sessions"]
        async with asyncio.timeout(TIMEOUT):
            runs = await asyncio.gather(*(one_run(c, n) for n, c in enumerate(connections)))
        return sessions, runs
    finally:
        await asyncio.gather(*(c.close() for c in connections), return_exceptions=True)


def test_a_thousand_concurrent_sessions_each_complete_a_run(chat_stack: Callable[..., ChatStack]) -> None:
    stack = chat_stack(run_deadline=60.0)
    sessions, runs = asyncio.run(crowd(stack))
    assert sessions == SESSIONS
    for n, events in enumerate(runs):
        assert events[-1]["type"] == "agent_completed", events[-1]
        assert re.fullmatch(RUN_GRAMMAR, run_shape([str(e["type"]) for e in events]))
        assert [e["seq"] for e in events] == list(range(len(events)))
        assert {e["user_id"] for e in events} == {f"crowd-{n}"}
