"""The process's open connections, by the users whose events each one receives.

Connections live in reusable slots. A slot subscribes to its user's events; when a
connection ends, its slot goes back to a free list for the next connection. With the
``leak_events_after_reconnect`` defect a freed slot keeps its subscriptions, so the next
connection to reuse it also receives the previous user's events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from chaos_service.sandbox.chat.events import RunEvent


class Receiver(Protocol):
    def receive(self, event: RunEvent) -> None:
        """Take an event for delivery; must not block."""


@dataclass(eq=False)
class Slot:
    number: int
    users: set[str] = field(default_factory=set)
    receiver: Receiver | None = None


class Hub:
    def __init__(self, keep_subscriptions: bool = False) -> None:
        self.keep_subscriptions = keep_subscriptions
        self._free: list[Slot] = []
        self._slots = 0
        self._by_user: dict[str, set[Slot]] = {}
        self.sessions = 0

    def attach(self, user_id: str, receiver: Receiver) -> Slot:
        """A slot for a new connection of ``user_id`` (the most recently freed one, if any)."""
        slot = self._free.pop() if self._free else self._new_slot()
        if not self.keep_subscriptions:
            self._unsubscribe(slot)
        slot.receiver = receiver
        slot.users.add(user_id)
        self._by_user.setdefault(user_id, set()).add(slot)
        self.sessions += 1
        return slot

    def detach(self, slot: Slot) -> None:
        if slot.receiver is None:
            return
        slot.receiver = None
        if not self.keep_subscriptions:
            self._unsubscribe(slot)
        self._free.append(slot)
        self.sessions -= 1

    def deliver(self, event: RunEvent) -> int:
        """Hand ``event`` to every connection subscribed to its user; returns how many took it."""
        reached = 0
        for slot in self._by_user.get(event.user_id, ()):
            if slot.receiver is not None:
                slot.receiver.receive(event)
                reached += 1
        return reached

    def _new_slot(self) -> Slot:
        self._slots += 1
        return Slot(self._slots)

    def _unsubscribe(self, slot: Slot) -> None:
        for user in slot.users:
            slots = self._by_user.get(user)
            if slots is not None:
                slots.discard(slot)
                if not slots:
                    del self._by_user[user]
        slot.users.clear()
