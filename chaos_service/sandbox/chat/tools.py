"""The agent's tools: each reads or writes Postgres for the run's user."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from chaos_service.sandbox.chat.store import ChatStore

Tool = Callable[[ChatStore, str, dict[str, Any]], Awaitable[dict[str, Any]]]


async def lookup_order(store: ChatStore, user_id: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The user's latest order and how often it was looked up (the lookup is recorded)."""
    return await store.lookup_order(user_id)


TOOLS: dict[str, Tool] = {"lookup_order": lookup_order}

#: The tools as offered to the LLM (OpenAI's function-calling shape).
TOOL_SPECS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "Look up the user's latest order and its shipping status.",
            "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
        },
    }
]


async def run_tool(store: ChatStore, name: str, user_id: str, arguments: dict[str, Any]) -> dict[str, Any]:
    tool = TOOLS.get(name)
    if tool is None:
        return {"error": f"unknown tool {name!r}"}
    return await tool(store, user_id, arguments)
