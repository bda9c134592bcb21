"""Routing events to connections by user; the leak defect keeps a reused slot's old subscriptions."""

from __future__ import annotations

from chaos_service.sandbox.chat.events import AGENT_STARTED, RunEvent
from chaos_service.sandbox.chat.hub import Hub


class Inbox:
    def __init__(self) -> None:
        self.events: list[RunEvent] = []

    def receive(self, event: RunEvent) -> None:
        self.events.append(event)


def event_of(user: str) -> RunEvent:
    return RunEvent.create("r-" + user, 0, user, AGENT_STARTED, 0.0, {})


def test_events_reach_every_connection_of_their_user_and_no_other() -> None:
    hub = Hub()
    alice_1, alice_2, bob = Inbox(), Inbox(), Inbox()
    hub.attach("alice", alice_1)
    hub.attach("alice", alice_2)
    hub.attach("bob", bob)
    assert hub.deliver(event_of("alice")) == 2
    assert len(alice_1.events) == len(alice_2.events) == 1 and bob.events == []
    assert hub.sessions == 3


def test_a_reused_slot_receives_only_its_new_users_events() -> None:
    hub = Hub()
    alice, bob = Inbox(), Inbox()
    hub.detach(hub.attach("alice", alice))
    bob_slot = hub.attach("bob", bob)
    assert bob_slot.users == {"bob"}
    assert hub.deliver(event_of("alice")) == 0
    assert bob.events == [] and hub.sessions == 1


def test_with_the_leak_defect_a_reused_slot_keeps_the_previous_users_events() -> None:
    hub = Hub(keep_subscriptions=True)
    alice, bob = Inbox(), Inbox()
    first = hub.attach("alice", alice)
    hub.detach(first)
    assert hub.deliver(event_of("alice")) == 0  # a free slot has no connection to deliver to
    second = hub.attach("bob", bob)
    assert second is first
    hub.deliver(event_of("alice"))
    assert [event.user_id for event in bob.events] == ["alice"]


def test_detaching_twice_is_harmless() -> None:
    hub = Hub()
    slot = hub.attach("alice", Inbox())
    hub.detach(slot)
    hub.detach(slot)
    assert hub.sessions == 0
