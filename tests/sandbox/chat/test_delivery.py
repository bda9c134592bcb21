"""The delivery guard: whatever order and duplication events arrive in, each run goes out once, in order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chaos_service.sandbox.chat.delivery import DeliveryGuard, Gap, Release
from chaos_service.sandbox.chat.events import AGENT_COMPLETED, AGENT_STARTED, AGENT_THINKING, RunEvent


def run_events(run_id: str, count: int) -> list[RunEvent]:
    """A run of ``count`` events (at least 2): started, thinking…, completed."""
    kinds = [AGENT_STARTED] + [AGENT_THINKING] * (count - 2) + [AGENT_COMPLETED]
    return [RunEvent.create(run_id, seq, "alice", kind, 0.0, {}) for seq, kind in enumerate(kinds)]


def deliver(guard: DeliveryGuard, arrivals: list[RunEvent], store: list[RunEvent]) -> list[RunEvent]:
    """Offer ``arrivals``; serve every gap from ``store`` (what Postgres holds) as the session does."""
    sent: list[RunEvent] = []
    gaps: list[Gap] = []

    def apply(release: Release) -> None:
        sent.extend(release.send)
        if release.gap is not None:
            gaps.append(release.gap)

    for event in arrivals:
        apply(guard.offer(event))
        while gaps:
            gap = gaps.pop()
            missing = [e for e in store if e.run_id == gap.run_id and gap.first <= e.seq <= gap.last]
            apply(guard.filled(gap.run_id, missing))
    return sent


@given(st.integers(2, 30), st.data())
def test_any_arrival_order_with_duplicates_is_sent_once_in_order(count: int, data: st.DataObject) -> None:
    events = run_events("r", count)
    arrivals = data.draw(st.lists(st.sampled_from(events), max_size=3 * count))
    arrivals.append(events[-1])  # the run ends: the terminal event arrives at some point
    guard = DeliveryGuard()
    guard.follow("r", 0)
    assert deliver(guard, arrivals, events) == events


@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 9)), max_size=60))
def test_interleaved_runs_are_each_in_order(picks: list[tuple[str, int]]) -> None:
    runs = {run_id: run_events(run_id, 10) for run_id in "abc"}
    store = [event for events in runs.values() for event in events]
    guard = DeliveryGuard()
    for run_id in runs:
        guard.follow(run_id, 0)
    arrivals = [runs[run_id][seq] for run_id, seq in picks] + [events[-1] for events in runs.values()]
    sent = deliver(guard, arrivals, store)
    for run_id, events in runs.items():
        assert [event for event in sent if event.run_id == run_id] == events


def test_an_event_ahead_of_its_predecessors_asks_for_the_gap_once() -> None:
    events = run_events("r", 6)
    guard = DeliveryGuard()
    guard.follow("r", 0)
    assert guard.offer(events[0]).send == [events[0]]
    first = guard.offer(events[3])
    assert first.send == [] and first.gap == Gap("r", 1, 2)
    assert guard.offer(events[4]) == Release()  # the gap is being filled: not asked again
    filled = guard.filled("r", events[1:3])
    assert filled.send == events[1:5] and filled.gap is None


def test_a_failed_fill_asks_again() -> None:
    events = run_events("r", 4)
    guard = DeliveryGuard()
    guard.follow("r", 0)
    assert guard.offer(events[2]).gap == Gap("r", 0, 1)
    assert guard.filled("r", []).gap == Gap("r", 0, 1)


@given(st.booleans())
def test_a_run_that_began_before_the_connection_is_sent_only_when_followed(ordered: bool) -> None:
    events = run_events("r", 5)
    guard = DeliveryGuard(ordered)
    assert deliver(guard, events[2:], events) == []  # the client resumes it if it wants it
    fresh = run_events("s", 3)
    assert deliver(guard, fresh, fresh) == fresh  # seen from its first event: another connection's new run
    guard.follow("r", 3)
    assert deliver(guard, events, events) == events[3:]


def test_late_duplicates_of_a_finished_run_are_dropped() -> None:
    events = run_events("r", 3)
    guard = DeliveryGuard()
    guard.follow("r", 0)
    assert deliver(guard, events, events) == events
    assert deliver(guard, events, events) == []


def test_a_held_run_sends_nothing_until_released_then_everything_in_order() -> None:
    events = run_events("r", 5)
    guard = DeliveryGuard()
    guard.follow("r", 2, hold=True)
    for event in reversed(events):
        assert guard.offer(event) == Release()
    assert guard.release("r").send == events[2:]


def test_a_resume_of_a_finished_run_replays_it_again() -> None:
    events = run_events("r", 4)
    guard = DeliveryGuard()
    guard.follow("r", 0)
    deliver(guard, events, events)
    guard.follow("r", 1, hold=True)
    for event in events:
        guard.offer(event)
    assert guard.release("r").send == events[1:]


def test_unordered_passes_events_as_they_come_without_duplicates() -> None:
    events = run_events("r", 4)
    guard = DeliveryGuard(ordered=False)
    guard.follow("r", 0)
    arrivals = [events[2], events[0], events[2], events[3], events[1]]
    assert deliver(guard, arrivals, events) == [events[2], events[0], events[3], events[1]]
