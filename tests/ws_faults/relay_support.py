"""Helpers for the pure tests: build relays and stages, run them to the end on a virtual clock."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from chaos_service.ws_faults.base import MessageToxic, Stage, StageContext
from chaos_service.ws_faults.message import Close, Item, Message
from chaos_service.ws_faults.relay import Relay


@dataclass
class Fired:
    names: list[str] = field(default_factory=list)

    def __call__(self, name: str) -> None:
        self.names.append(name)


def relay_with(*toxics: tuple[str, MessageToxic, float], seed: int = 1, now: float = 0.0) -> tuple[Relay, Fired]:
    """A relay with ``(name, toxic, toxicity)`` added in order; asserts nothing is released."""
    fired = Fired()
    relay = Relay(random.Random(seed), fired)
    for name, toxic, toxicity in toxics:
        assert relay.add(name, toxic, toxicity, now) == []
    return relay, fired


def stage_of(toxic: MessageToxic, toxicity: float = 1.0, seed: int = 1, previous: Stage | None = None) -> Stage:
    return toxic.stage(StageContext(toxic.type_name, toxicity, random.Random(seed), lambda: None), previous)


def msg(text: str) -> Message:
    return Message.of(text)


def texts(items: list[Item]) -> list[str]:
    """Messages as text, closes as ``close:<code>``."""
    out = []
    for item in items:
        if isinstance(item, Close):
            out.append(f"close:{item.code}")
        else:
            assert isinstance(item, Message)
            out.append(item.data.decode())
    return out


def drain(relay: Relay, now: float, limit: int = 100_000) -> tuple[list[Item], float]:
    """Tick the relay at each due time until it holds nothing; returns the output and the time."""
    out: list[Item] = []
    for _ in range(limit):
        due = relay.next_due()
        if due is None:
            return out, now
        now = max(now, due)
        out.extend(relay.tick(now))
    raise AssertionError("the relay kept holding items")
