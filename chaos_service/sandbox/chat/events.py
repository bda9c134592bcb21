"""The events of an agent run, as stored, published and sent to clients."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

AGENT_STARTED = "agent_started"
AGENT_THINKING = "agent_thinking"
TOOL_EXECUTING = "tool_executing"
TOOL_COMPLETED = "tool_completed"
AGENT_COMPLETED = "agent_completed"
AGENT_ERROR = "agent_error"

EVENT_TYPES = (AGENT_STARTED, AGENT_THINKING, TOOL_EXECUTING, TOOL_COMPLETED, AGENT_COMPLETED, AGENT_ERROR)
TERMINAL = frozenset({AGENT_COMPLETED, AGENT_ERROR})

#: A run's events, one letter per type, must match this (see `run_shape`).
RUN_GRAMMAR = r"S(T*)(XCT*)*(D|E)"
_LETTERS = {
    AGENT_STARTED: "S",
    AGENT_THINKING: "T",
    TOOL_EXECUTING: "X",
    TOOL_COMPLETED: "C",
    AGENT_COMPLETED: "D",
    AGENT_ERROR: "E",
}


def run_shape(types: list[str]) -> str:
    """One letter per event type, to match against `RUN_GRAMMAR` (``?`` for an unknown type)."""
    return "".join(_LETTERS.get(kind, "?") for kind in types)


@dataclass(frozen=True)
class RunEvent:
    """One event of one run; ``wire`` is its JSON text, made once and sent to every connection."""

    run_id: str
    seq: int
    user_id: str
    type: str
    ts: float
    data: dict[str, Any]
    wire: str = field(default="", compare=False, repr=False)

    @classmethod
    def create(cls, run_id: str, seq: int, user_id: str, type: str, ts: float, data: dict[str, Any]) -> RunEvent:
        message = {"type": type, "run_id": run_id, "seq": seq, "user_id": user_id, "ts": ts, "data": data}
        return cls(run_id, seq, user_id, type, ts, data, json.dumps(message, separators=(",", ":")))

    @classmethod
    def from_wire(cls, wire: str) -> RunEvent:
        """Parse an event's JSON text; raises ValueError (or KeyError/TypeError) if it is not one."""
        message = json.loads(wire)
        event = cls(
            str(message["run_id"]),
            int(message["seq"]),
            str(message["user_id"]),
            str(message["type"]),
            float(message["ts"]),
            dict(message["data"]),
            wire,
        )
        if event.type not in _LETTERS:
            raise ValueError(f"unknown event type {event.type!r}")
        return event

    @property
    def terminal(self) -> bool:
        return self.type in TERMINAL
