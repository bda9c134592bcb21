"""Delivery grading: every count and key against set arithmetic and brute force, and readable examples."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from chaos_service.probes.checkers.delivery import (
    DeliveryReport,
    Key,
    check_delivery,
    count_inversions,
    displacement,
    longest_increasing_subsequence,
)
from chaos_service.probes.checkers.sequence import DEFAULT_RUN_PATTERN, RunSpec, check_run
from chaos_service.sandbox.chat.events import EVENT_TYPES, RUN_GRAMMAR, TERMINAL, RunEvent, run_shape

S, T, X, C, D, E = EVENT_TYPES
GRAMMAR_ONLY = RunSpec(DEFAULT_RUN_PATTERN)
ME = "alice"
Event = dict[str, Any]


def run_events(run_id: str, types: Sequence[str], user: str = ME) -> list[Event]:
    """A run's wire events; each tool call's id is the seq of its tool_executing."""
    events: list[Event] = []
    call = None
    for seq, kind in enumerate(types):
        data: dict[str, Any] = {}
        if kind == X:
            call = f"c{seq}"
        if kind in (X, C):
            data["call_id"] = call
        events.append({"type": kind, "run_id": run_id, "seq": seq, "user_id": user, "ts": 1.0, "data": data})
    return events


def keys(events: Iterable[Event]) -> set[Key]:
    return {(e["run_id"], e["seq"]) for e in events}


# -- the order metrics --------------------------------------------------------------------------


def inversions_brute(values: Sequence[int]) -> int:
    return sum(1 for i, j in itertools.combinations(range(len(values)), 2) if values[i] > values[j])


def lis_brute(values: Sequence[int]) -> int:
    """The longest strictly increasing subsequence, over every subset."""
    best = 0
    for mask in range(1 << len(values)):
        chosen = [v for i, v in enumerate(values) if mask >> i & 1]
        if all(a < b for a, b in itertools.pairwise(chosen)):
            best = max(best, len(chosen))
    return best


def lis_quadratic(values: Sequence[int]) -> int:
    """The same by the O(n^2) recurrence: the longest run ending at each value."""
    ends: list[int] = []
    for i, value in enumerate(values):
        ends.append(1 + max((ends[j] for j in range(i) if values[j] < value), default=0))
    return max(ends, default=0)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-5, 40), max_size=60))
def test_inversions_are_the_pairs_out_of_order(values: list[int]) -> None:
    assert count_inversions(values) == inversions_brute(values)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 12), max_size=10))
def test_lis_and_displacement_match_every_subset(values: list[int]) -> None:
    assert longest_increasing_subsequence(values) == lis_brute(values)
    assert displacement(values) == len(values) - lis_brute(values)


def test_order_metric_examples() -> None:
    assert count_inversions([]) == count_inversions([7]) == 0
    assert count_inversions([0, 1, 2, 3]) == 0
    assert count_inversions([3, 2, 1, 0]) == 6
    assert count_inversions([1, 1, 0]) == 2  # ties are not inversions
    assert displacement([0, 2, 1, 3]) == 1
    assert displacement([3, 0, 1, 2]) == 1  # one early event moved: the rest are in order
    assert displacement([3, 2, 1, 0]) == 3


# -- every metric against plain set arithmetic --------------------------------------------------

RUN_TYPES = st.from_regex(re.compile(RUN_GRAMMAR), fullmatch=True).map(
    lambda word: [dict(zip("STXCDE", EVENT_TYPES, strict=True))[a] for a in word[:12]]
)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[set[Key], list[Any]]:
    """Runs of the subscriber and of others; an expected set; a received sequence picked from their events."""
    pool: list[Event] = []
    expected: set[Key] = set()
    for number in range(draw(st.integers(0, 4))):
        owner = draw(st.sampled_from([ME, ME, ME, "mallory"]))
        events = run_events(f"r{number}", draw(RUN_TYPES), owner)
        pool.extend(events)
        if owner == ME and draw(st.integers(0, 4)):  # now and then a run of the subscriber's own is unexpected
            expected |= keys(events)
    if draw(st.booleans()):  # a run that was expected but never sent
        expected |= {("ghost", seq) for seq in range(draw(st.integers(1, 3)))}
    if not pool:
        return expected, []
    index = st.integers(0, len(pool) - 1)
    picks = draw(
        st.one_of(
            st.lists(index, max_size=40),  # anything: copies, gaps, reordering
            st.permutations(range(len(pool))),  # everything, in any order
            st.lists(index, max_size=40).map(sorted),  # in order, with copies and gaps
        )
    )
    received: list[Any] = [pool[i] for i in picks]
    if draw(st.integers(0, 9)) == 0:
        received.insert(draw(st.integers(0, len(received))), {"type": "resumed", "run_id": "r0", "replayed": 3})
    return expected, received


def oracle(expected: set[Key], received: list[Any]) -> dict[str, Any]:
    """Every metric, the slow and obvious way."""
    events = [e for e in received if isinstance(e.get("seq"), int)]
    arrivals = [(e["run_id"], e["seq"]) for e in events]
    seen = set(arrivals)
    lost = expected - seen
    top = {run: max(seq for r, seq in seen if r == run) for run, _ in seen}
    gaps = {k for k in lost if k[0] in top and k[1] < top[k[0]]}
    leaked_events = [e for e in events if e.get("user_id") != ME]
    leaked = keys(leaked_events)
    own = [e for e in events if e.get("user_id") == ME]
    runs = {e["run_id"] for e in own} | {run for run, _ in expected}
    late: set[Key] = set()
    inversions = moved = pairs = 0
    stuck, invalid_delivered, invalid_repaired = set(), set(), set()
    for run in runs:
        delivered = [e for e in own if e["run_id"] == run]
        firsts: list[Event] = []
        for e in delivered:
            if all(f["seq"] != e["seq"] for f in firsts):
                firsts.append(e)
        seqs = [e["seq"] for e in firsts]
        late |= {(run, s) for j, s in enumerate(seqs) if any(seqs[i] > s for i in range(j))}
        inversions += inversions_brute(seqs)
        moved += len(seqs) - lis_quadratic(seqs)
        pairs += len(seqs) * (len(seqs) - 1) // 2
        if not any(e["type"] in TERMINAL for e in delivered):
            stuck.add(run)
        if not re.fullmatch(RUN_GRAMMAR, run_shape([e["type"] for e in delivered])):
            invalid_delivered.add(run)
        if not re.fullmatch(RUN_GRAMMAR, run_shape([e["type"] for e in sorted(firsts, key=lambda e: e["seq"])])):
            invalid_repaired.add(run)
    return {
        "expected": len(expected),
        "received": len(arrivals),
        "delivered": len(seen & expected),
        "lost_gaps": tuple(sorted(gaps)),
        "lost_tail": tuple(sorted(lost - gaps)),
        "duplicates": len(arrivals) - len(seen),
        "duplicated": tuple(sorted(k for k in seen if arrivals.count(k) > 1)),
        "unexpected": tuple(sorted(seen - expected - leaked)),
        "leaks": len(leaked_events),
        "leaked": tuple(sorted(leaked)),
        "leaked_users": tuple(sorted({e["user_id"] for e in leaked_events})),
        "late": tuple(sorted(late)),
        "inversions": inversions,
        "pairs": pairs,
        "displacement": moved,
        "runs": tuple(sorted(runs)),
        "stuck_runs": tuple(sorted(stuck)),
        "invalid_delivered": sorted(invalid_delivered),
        "invalid_repaired": sorted(invalid_repaired),
        "malformed": tuple(i for i, e in enumerate(received) if not isinstance(e.get("seq"), int)),
    }


def measured(report: DeliveryReport) -> dict[str, Any]:
    found = {
        name: getattr(report, name)
        for name in oracle(set(), [])
        if name not in ("invalid_delivered", "invalid_repaired")
    }
    found["invalid_delivered"] = sorted(report.invalid_delivered)
    found["invalid_repaired"] = sorted(report.invalid_repaired)
    return found


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_every_metric_matches_set_arithmetic(scenario: tuple[set[Key], list[Any]]) -> None:
    expected, received = scenario
    report = check_delivery(expected, received, subscriber=ME, spec=GRAMMAR_ONLY)
    assert measured(report) == oracle(expected, received)
    assert report.delivered + report.lost == report.expected
    assert 0.0 <= report.delivery_rate <= 1.0 and 0.0 <= report.inversion_ratio <= 1.0
    assert report.ok is (report.problems == ())


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_run_validity_is_check_run_on_each_run_as_delivered_and_repaired(scenario: tuple[set[Key], list[Any]]) -> None:
    expected, received = scenario
    report = check_delivery(expected, received, subscriber=ME)
    for run in report.runs:
        own: list[Event] = [e for e in received if e.get("run_id") == run and e.get("user_id") == ME and "seq" in e]
        firsts = list({e["seq"]: e for e in reversed(own)}.values())
        delivered = check_run(own)
        assert report.invalid_delivered.get(run) == (delivered if not delivered.valid else None)
        order: list[Event] = sorted(firsts, key=lambda e: e["seq"])
        repaired = check_run(order)
        assert report.invalid_repaired.get(run) == (repaired if not repaired.valid else None)


# -- examples -----------------------------------------------------------------------------------


def test_a_perfect_delivery() -> None:
    run = run_events("r1", [S, T, X, C, T, D])
    report = check_delivery(keys(run), run, subscriber=ME)
    assert report.ok and report.problems == ()
    assert report.summary() == "ok: 6/6 events delivered in 1 runs"
    assert (report.delivery_rate, report.completeness, report.valid_delivered, report.valid_repaired) == (
        1.0,
        1.0,
        1,
        1,
    )
    assert report.counts()["delivered"] == 6 and report.counts()["lost"] == 0


def test_nothing_expected_and_nothing_received() -> None:
    report = check_delivery([], [], subscriber=ME)
    assert report.ok
    assert (report.delivery_rate, report.duplicate_rate, report.completeness, report.inversion_ratio) == (
        1.0,
        0.0,
        1.0,
        0.0,
    )
    assert report.runs == ()


def test_a_run_that_never_arrived_is_lost_at_the_tail_and_stuck() -> None:
    report = check_delivery(keys(run_events("r1", [S, T, D])), [], subscriber=ME)
    assert report.lost_tail == (("r1", 0), ("r1", 1), ("r1", 2)) and report.lost_gaps == ()
    assert report.stuck_runs == ("r1",) and report.completeness == 0.0
    assert report.invalid_delivered["r1"].message == "the run has no events; expected agent_started"
    assert report.problems == (
        "lost 3 of 3 events (0 in gaps, 3 at the tail): r1#0, r1#1, r1#2",
        "1 of 1 runs without a terminal event: r1",
        "run r1: the run has no events; expected agent_started; "
        "after repair: the run has no events; expected agent_started",
    )


def test_a_run_with_only_its_terminal_event() -> None:
    run = run_events("r1", [S, T, T, D])
    report = check_delivery(keys(run), run[-1:], subscriber=ME)
    assert report.lost_gaps == (("r1", 0), ("r1", 1), ("r1", 2)) and report.lost_tail == ()
    assert report.stuck_runs == ()  # it ended, though not everything arrived
    assert report.invalid_delivered["r1"].message == "event 0: got agent_completed, expected agent_started"
    assert report.delivery_rate == 0.25


def test_a_duplicated_terminal_event() -> None:
    run = run_events("r1", [S, T, D])
    report = check_delivery(keys(run), [*run, run[-1]], subscriber=ME)
    assert (report.duplicates, report.duplicated, report.duplicate_rate) == (1, (("r1", 2),), 0.25)
    assert report.late == () and report.inversions == 0
    assert report.invalid_delivered["r1"].message == "event 3: got agent_completed, expected no further event"
    assert "r1" not in report.invalid_repaired
    assert report.problems == (
        "1 duplicate copies of 1 events: r1#2",
        "run r1: event 3: got agent_completed, expected no further event; after repair: valid",
    )


def test_a_leak_that_is_also_a_duplicate() -> None:
    mine = run_events("r1", [S, D])
    theirs = run_events("r9", [S, T, D], user="mallory")
    report = check_delivery(keys(mine), [mine[0], theirs[1], mine[1], theirs[1]], subscriber=ME)
    assert (report.leaks, report.leaked, report.leaked_users) == (2, (("r9", 1),), ("mallory",))
    assert (report.duplicates, report.duplicated) == (1, (("r9", 1),))
    assert report.unexpected == ()  # a leak is not also counted as unexpected
    assert report.runs == ("r1",)  # nor graded as one of the subscriber's runs
    assert report.problems[0] == "2 events of other users (mallory): r9#1"


def test_an_event_without_a_user_id_is_a_leak() -> None:
    event = run_events("r1", [S])[0]
    del event["user_id"]
    report = check_delivery([], [event], subscriber=ME)
    assert (report.leaks, report.leaked_users) == (1, ("<missing>",))


def test_reordered_tool_events_are_late_but_repairable() -> None:
    run = run_events("r1", [S, T, X, C, T, D])
    arrived = [run[0], run[1], run[3], run[2], run[4], run[5]]
    report = check_delivery(keys(run), arrived, subscriber=ME)
    assert (report.late, report.inversions, report.displacement, report.pairs) == ((("r1", 2),), 1, 1, 15)
    assert report.invalid_delivered["r1"].message == (
        "event 2: got tool_completed, expected one of agent_thinking, tool_executing, agent_completed, agent_error"
    )
    assert report.invalid_repaired == {} and report.valid_repaired == 1 and report.valid_delivered == 0
    assert report.problems[0] == "1 events out of order (1 inversions, displacement 1): r1#2"


def test_a_replay_from_the_start_duplicates_without_reordering_first_arrivals() -> None:
    run = run_events("r1", [S, T, T, T, D])
    report = check_delivery(keys(run), [*run[:3], *run], subscriber=ME)  # reconnect, resume from -1
    assert (report.duplicates, report.late, report.inversions) == (3, (), 0)
    assert report.invalid_delivered["r1"].first_bad_index == 3 and "r1" not in report.invalid_repaired


def test_a_gap_and_a_lost_tail_in_one_run() -> None:
    run = run_events("r1", [S, T, T, T, D])
    report = check_delivery(keys(run), [run[0], run[2], run[3]], subscriber=ME)
    assert (report.lost_gaps, report.lost_tail) == ((("r1", 1),), (("r1", 4),))
    assert report.stuck_runs == ("r1",)


def test_unexpected_events_of_the_subscriber() -> None:
    extra = run_events("r2", [S, D])
    report = check_delivery([], extra, subscriber=ME)
    assert report.unexpected == (("r2", 0), ("r2", 1)) and report.leaks == 0
    assert report.problems == ("2 unexpected events: r2#0, r2#1",)


def test_items_that_are_not_run_events_are_reported_not_graded() -> None:
    run = run_events("r1", [S, D])
    report = check_delivery(
        keys(run), [{"type": "pong"}, run[0], {"type": "resumed", "run_id": "r1"}, run[1]], subscriber=ME
    )
    assert report.malformed == (0, 2) and report.received == 2 and report.delivered == 2
    assert report.problems == ("2 received items are not run events (at 0, 2)",)


def test_run_events_objects_are_graded_like_wire_mappings() -> None:
    run = run_events("r1", [S, X, C, D])
    objects = [RunEvent.create(e["run_id"], e["seq"], e["user_id"], e["type"], e["ts"], e["data"]) for e in run]
    assert check_delivery(keys(run), objects, subscriber=ME) == check_delivery(keys(run), run, subscriber=ME)


def test_call_pairing_applies_per_run() -> None:
    run = run_events("r1", [S, X, C, D])
    run[2]["data"]["call_id"] = "other"
    report = check_delivery(keys(run), run, subscriber=ME)
    assert (
        report.invalid_delivered["r1"].message
        == "event 2: got tool_completed for call 'other', which is not running (running: 'c1')"
    )
    assert check_delivery(keys(run), run, subscriber=ME, spec=GRAMMAR_ONLY).ok


def test_long_lists_of_keys_are_abbreviated() -> None:
    report = check_delivery({("r1", seq) for seq in range(20)}, [], subscriber=ME)
    assert (
        report.problems[0]
        == "lost 20 of 20 events (0 in gaps, 20 at the tail): r1#0, r1#1, r1#2, r1#3, r1#4, … (15 more)"
    )
