"""One agent run per user message: stream the LLM's reply, run tools, end within the deadline.

Each event is stored in Postgres, then published to the user's connections. A run
always ends with ``agent_completed`` or ``agent_error``: an error of any dependency, or
the deadline, ends it with ``agent_error`` whose ``reason`` names the cause.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from chaos_service.sandbox.chat.config import ChatSettings
from chaos_service.sandbox.chat.events import (
    AGENT_COMPLETED,
    AGENT_ERROR,
    AGENT_STARTED,
    AGENT_THINKING,
    TOOL_COMPLETED,
    TOOL_EXECUTING,
    RunEvent,
)
from chaos_service.sandbox.chat.fanout import Fanout, RedisUnavailable
from chaos_service.sandbox.chat.hub import Hub
from chaos_service.sandbox.chat.llm import LlmClient, LlmError, ToolCall
from chaos_service.sandbox.chat.store import ChatStore, StoreUnavailable
from chaos_service.sandbox.chat.tools import TOOL_SPECS, run_tool

log = logging.getLogger(__name__)

SYSTEM_PROMPT = "You are the support assistant of an online shop. Use tools to answer questions about orders."
MAX_TOOL_ROUNDS = 3
#: Time allowed, after the deadline or a failure, to record and deliver the final agent_error.
FINAL_EVENT_BUDGET = 3.0


@dataclass
class Run:
    run_id: str
    user_id: str
    content: str
    client_msg_id: str | None
    next_seq: int = 0
    delivered: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)
    #: The tool call whose ``tool_executing`` is stored and whose ``tool_completed`` is not.
    open_tool: dict[str, Any] | None = None


class Agent:
    def __init__(self, settings: ChatSettings, store: ChatStore, fanout: Fanout, hub: Hub, llm: LlmClient) -> None:
        self.settings = settings
        self.store = store
        self.fanout = fanout
        self.hub = hub
        self.llm = llm
        self.concurrent_tool_events = settings.has("reorder_tool_events")

    async def execute(self, run: Run, created: asyncio.Future[str]) -> None:
        """Record the run, resolve ``created`` with its id (an earlier run's for a repeated
        ``client_msg_id``: then nothing more happens), and carry it out. Never raises."""
        outcome, reason, detail = "completed", "", ""
        try:
            async with asyncio.timeout(self.settings.run_deadline):
                stored_id = await self.store.create_run(run.run_id, run.user_id, run.client_msg_id, run.content)
                if stored_id != run.run_id:
                    created.set_result(stored_id)
                    return
                created.set_result(run.run_id)
                await self._converse(run)
        except TimeoutError:
            outcome, reason, detail = (
                "error",
                "deadline",
                f"the run did not finish within {self.settings.run_deadline:g} s",
            )
        except LlmError as exc:
            outcome, reason, detail = "error", f"llm_{exc.reason}", str(exc)
        except StoreUnavailable as exc:
            outcome, reason, detail = "error", "postgres_unavailable", str(exc)
        except RedisUnavailable as exc:
            outcome, reason, detail = "error", "redis_unavailable", str(exc)
        except Exception as exc:  # a bug must still end the run for the client
            log.exception("run %s failed", run.run_id)
            outcome, reason, detail = "error", "internal", repr(exc)
        finally:
            if not created.done():
                created.set_result(run.run_id)
        if outcome == "error":
            await self._fail(run, reason, detail)

    async def _converse(self, run: Run) -> None:
        await self._emit(run, AGENT_STARTED, {"client_msg_id": run.client_msg_id})
        run.messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": run.content}]

        async def on_token(token: str) -> None:
            await self._emit(run, AGENT_THINKING, {"token": token})

        for _ in range(MAX_TOOL_ROUNDS + 1):
            reply = await self.llm.stream(run.messages, on_token, tools=TOOL_SPECS)
            if not reply.tool_calls:
                await self._emit(run, AGENT_COMPLETED, {"text": reply.text})
                await self._record_outcome(run, "completed")
                return
            run.messages.append(_assistant_turn(reply.text, reply.tool_calls))
            for call in reply.tool_calls:
                result = await self._use_tool(run, call)
                run.messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)})
        raise LlmError("tool_loop", f"the LLM asked for tools more than {MAX_TOOL_ROUNDS} times", 1)

    async def _use_tool(self, run: Run, call: ToolCall) -> dict[str, Any]:
        started = {"tool": call.name, "call_id": call.id, "arguments": call.arguments}
        if not self.concurrent_tool_events:
            await self._emit(run, TOOL_EXECUTING, started)
            result = await run_tool(self.store, call.name, run.user_id, call.arguments)
            await self._emit(run, TOOL_COMPLETED, {"tool": call.name, "call_id": call.id, "result": result})
            return result
        # The reorder_tool_events defect: both events are written together once the tool has
        # answered, each by its own task, and published when its own write returns.
        result = await run_tool(self.store, call.name, run.user_id, call.arguments)
        executing = self._next_event(run, TOOL_EXECUTING, started)
        completed = self._next_event(run, TOOL_COMPLETED, {"tool": call.name, "call_id": call.id, "result": result})
        await asyncio.gather(self._store_and_publish(run, executing), self._store_and_publish(run, completed))
        return result

    def _next_event(self, run: Run, kind: str, data: dict[str, Any]) -> RunEvent:
        event = RunEvent.create(run.run_id, run.next_seq, run.user_id, kind, time.time(), data)
        run.next_seq += 1
        return event

    async def _emit(self, run: Run, kind: str, data: dict[str, Any]) -> None:
        event = RunEvent.create(run.run_id, run.next_seq, run.user_id, kind, time.time(), data)
        await self.store.append_event(event)
        # Counted once stored: a failed write leaves no hole in the run's seq, a stored one is never reused.
        run.next_seq = event.seq + 1
        if kind == TOOL_EXECUTING:
            run.open_tool = {"tool": data["tool"], "call_id": data["call_id"]}
        elif kind == TOOL_COMPLETED:
            run.open_tool = None
        await self.fanout.publish(event)
        run.delivered += 1

    async def _store_and_publish(self, run: Run, event: RunEvent) -> None:
        await self.store.append_event(event)
        await self.fanout.publish(event)
        run.delivered += 1

    async def _record_outcome(self, run: Run, status: str) -> None:
        try:
            await self.store.finish_run(run.run_id, status)
        except StoreUnavailable as exc:
            log.warning("run %s: could not record its outcome: %s", run.run_id, exc)

    async def _fail(self, run: Run, reason: str, detail: str) -> None:
        """End the run with agent_error: stored and published if possible, delivered regardless.

        A tool call left open is closed first with a failed ``tool_completed``, so that the run
        keeps its grammar: every ``tool_executing`` is answered before the terminal event."""
        if run.delivered == 0:
            # Nothing reached the client: open the run so that it still has its shape.
            started = {"client_msg_id": run.client_msg_id}
            self.hub.deliver(RunEvent.create(run.run_id, 0, run.user_id, AGENT_STARTED, time.time(), started))
            run.next_seq = max(run.next_seq, 1)
        closing: list[RunEvent] = []
        if run.open_tool is not None:
            failed = {**run.open_tool, "error": reason}
            run.open_tool = None
            closing.append(self._next_event(run, TOOL_COMPLETED, failed))
        closing.append(self._next_event(run, AGENT_ERROR, {"error": detail, "reason": reason}))
        published = 0
        try:
            async with asyncio.timeout(FINAL_EVENT_BUDGET):
                for event in closing:
                    await self.store.append_event(event)
                    await self.fanout.publish(event)
                    published += 1
                await self.store.finish_run(run.run_id, "error")
            return
        except (TimeoutError, StoreUnavailable, RedisUnavailable) as exc:
            log.warning("run %s: its last events delivered directly (%r)", run.run_id, exc)
        for event in closing[published:]:
            self.hub.deliver(event)

def _assistant_turn(text: str, calls: tuple[ToolCall, ...] | list[ToolCall]) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": text or None,
        "tool_calls": [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
            for call in calls
        ],
    }
