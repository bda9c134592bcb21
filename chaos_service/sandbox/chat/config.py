"""The chat back-end's settings and its seeded defects."""

from __future__ import annotations

from dataclasses import dataclass, field

#: Each seeded defect, off by default, and what it does (docs/sandbox.md).
DEFECTS: dict[str, str] = {
    "lose_events_on_resume": "a resume replays from after_seq + 2, skipping one event",
    "reorder_tool_events": "tool events are stored and published by concurrent tasks, passed on as they come",
    "leak_events_after_reconnect": "a reused connection slot keeps the previous user's subscriptions",
    "no_retry_on_llm_503": "a 503 from the LLM ends the run at once",
    "postgres_pool_never_reconnects": "one database connection, never replaced once broken",
    "redis_hard_dependency": "Redis errors fail runs and handshakes instead of degrading",
}


def unknown_defects(names: list[str] | tuple[str, ...] | frozenset[str]) -> list[str]:
    """The names that are not seeded defects, in the order given."""
    return [name for name in names if name not in DEFECTS]


@dataclass(frozen=True)
class ChatSettings:
    """Where the back-end's dependencies are, and how hard it tries to reach them."""

    postgres_url: str
    redis_url: str
    llm_url: str  # the OpenAI-compatible base URL, ending in /v1
    jwt_secret: str
    defects: frozenset[str] = field(default_factory=frozenset)
    model: str = "gpt-4o-mini"
    run_deadline: float = 30.0
    db_attempts: int = 3
    db_timeout: float = 5.0
    llm_attempts: int = 4  # the first call and three retries
    llm_backoff: float = 0.25
    llm_backoff_max: float = 2.0
    retry_after_max: float = 10.0
    llm_connect_timeout: float = 5.0
    llm_read_timeout: float = 15.0
    redis_timeout: float = 1.0
    health_timeout: float = 2.0

    def has(self, defect: str) -> bool:
        return defect in self.defects
