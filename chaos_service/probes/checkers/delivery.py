"""What one subscriber received, graded against what it was entitled to receive.

Events are identified by their key ``(run_id, seq)``. With E the expected keys, R the
keys received in arrival order and U = set(R) (Jepsen-style classification):

* delivered = |U ∩ E|; lost = E - U, split into *gaps* (below the highest seq received
  for the run) and *tail* loss (after it, e.g. a missing terminal event);
* duplicates = len(R) - |U| (extra copies, whoever they belong to);
* unexpected = U - E, not counting leaks; leaks = events whose ``user_id`` is not the
  subscriber's (the isolation invariant: there must be none);
* per run, over the subscriber's own events with the first arrival of each key kept:
  *late* events (seq below one already received), inversions (pairs out of order) and
  displacement (events to remove to leave the rest in order);
* completeness: runs with a terminal event among all runs (expected or received);
  every other run is *stuck*;
* sequence validity of each run (`check_run`) as delivered, and after repair (duplicates
  dropped, sorted by seq): what a careful client could reconstruct.

Everything here is a pure function of its arguments.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from chaos_service.probes.checkers.sequence import DEFAULT_RUN_SPEC, RunSpec, SequenceVerdict, check_types

__all__ = [
    "DeliveryReport",
    "Key",
    "check_delivery",
    "count_inversions",
    "displacement",
    "longest_increasing_subsequence",
]

Key = tuple[str, int]  # (run_id, seq)
_MISSING = "<missing>"


def count_inversions(values: Sequence[int]) -> int:
    """Pairs ``i < j`` with ``values[i] > values[j]`` (Kendall tau distance to sorted order), in O(n log n)."""
    if len(values) < 2:
        return 0
    _, inversions = _sort_counting(list(values))
    return inversions


def _sort_counting(values: list[int]) -> tuple[list[int], int]:
    n = len(values)
    if n < 2:
        return values, 0
    left, inv_left = _sort_counting(values[: n // 2])
    right, inv_right = _sort_counting(values[n // 2 :])
    inversions = inv_left + inv_right
    merged: list[int] = []
    i = j = 0
    while i < len(left) and j < len(right):
        if left[i] <= right[j]:
            merged.append(left[i])
            i += 1
        else:
            merged.append(right[j])
            inversions += len(left) - i  # right[j] is smaller than every remaining left value
            j += 1
    merged.extend(left[i:])
    merged.extend(right[j:])
    return merged, inversions


def longest_increasing_subsequence(values: Iterable[int]) -> int:
    """The length of a longest strictly increasing subsequence, in O(n log n)."""
    tails: list[int] = []  # tails[k]: the smallest tail of an increasing subsequence of length k + 1
    for value in values:
        k = bisect_left(tails, value)
        if k == len(tails):
            tails.append(value)
        else:
            tails[k] = value
    return len(tails)


def displacement(values: Sequence[int]) -> int:
    """The fewest values to remove to leave the rest strictly increasing: n - LIS."""
    return len(values) - longest_increasing_subsequence(values)


@dataclass(frozen=True)
class DeliveryReport:
    """One subscriber's delivery, graded. Keys are ``(run_id, seq)``, sorted; runs are sorted ids."""

    subscriber: str  # the user whose events these should be
    expected: int  # |E|
    received: int  # len(R): well-formed events received, copies and leaks included
    delivered: int  # |U ∩ E|
    lost_gaps: tuple[Key, ...]  # lost below the highest seq received for the run
    lost_tail: tuple[Key, ...]  # lost after it (or the whole run, if nothing of it arrived)
    duplicates: int  # len(R) - |U|
    duplicated: tuple[Key, ...]  # keys received more than once
    unexpected: tuple[Key, ...]  # U - E, leaks excluded
    leaks: int  # events (copies included) whose user_id is not the subscriber's
    leaked: tuple[Key, ...]
    leaked_users: tuple[str, ...]
    late: tuple[Key, ...]  # first arrivals with a seq below one already received in their run
    inversions: int  # summed over runs
    pairs: int  # Σ n(n-1)/2 over runs: the most inversions possible
    displacement: int  # Σ (n - LIS) over runs
    runs: tuple[str, ...]  # every run expected or received (leaks aside)
    stuck_runs: tuple[str, ...]  # runs without a terminal event
    invalid_delivered: Mapping[str, SequenceVerdict] = field(default_factory=dict)  # by run, read-only
    invalid_repaired: Mapping[str, SequenceVerdict] = field(default_factory=dict)
    malformed: tuple[int, ...] = ()  # indices of received items that are not run events

    @property
    def lost(self) -> int:
        return len(self.lost_gaps) + len(self.lost_tail)

    @property
    def delivery_rate(self) -> float:
        """|U ∩ E| / |E| (1.0 when nothing was expected)."""
        return self.delivered / self.expected if self.expected else 1.0

    @property
    def duplicate_rate(self) -> float:
        return self.duplicates / self.received if self.received else 0.0

    @property
    def out_of_order(self) -> int:
        return len(self.late)

    @property
    def inversion_ratio(self) -> float:
        """Inversions over the most possible (0 in order, 1 reversed)."""
        return self.inversions / self.pairs if self.pairs else 0.0

    @property
    def completed_runs(self) -> int:
        return len(self.runs) - len(self.stuck_runs)

    @property
    def completeness(self) -> float:
        return self.completed_runs / len(self.runs) if self.runs else 1.0

    @property
    def valid_delivered(self) -> int:
        return len(self.runs) - len(self.invalid_delivered)

    @property
    def valid_repaired(self) -> int:
        return len(self.runs) - len(self.invalid_repaired)

    @property
    def problems(self) -> tuple[str, ...]:
        """One line per property that does not hold for exactly-once, in-order, isolated delivery."""
        found: list[str] = []
        if self.malformed:
            found.append(f"{len(self.malformed)} received items are not run events (at {_few(self.malformed)})")
        if self.leaks:
            found.append(f"{self.leaks} events of other users ({', '.join(self.leaked_users)}): {_few(self.leaked)}")
        if self.lost:
            found.append(
                f"lost {self.lost} of {self.expected} events ({len(self.lost_gaps)} in gaps, "
                f"{len(self.lost_tail)} at the tail): {_few(self.lost_gaps + self.lost_tail)}"
            )
        if self.duplicates:
            found.append(
                f"{self.duplicates} duplicate copies of {len(self.duplicated)} events: {_few(self.duplicated)}"
            )
        if self.unexpected:
            found.append(f"{len(self.unexpected)} unexpected events: {_few(self.unexpected)}")
        if self.late:
            found.append(
                f"{len(self.late)} events out of order ({self.inversions} inversions, "
                f"displacement {self.displacement}): {_few(self.late)}"
            )
        if self.stuck_runs:
            found.append(
                f"{len(self.stuck_runs)} of {len(self.runs)} runs without a terminal event: {_few(self.stuck_runs)}"
            )
        for run_id in sorted(self.invalid_delivered.keys() | self.invalid_repaired.keys()):
            delivered, repaired = self.invalid_delivered.get(run_id), self.invalid_repaired.get(run_id)
            as_delivered = delivered.message if delivered is not None else "valid as delivered"
            after = repaired.message if repaired is not None else "valid"
            found.append(f"run {run_id}: {as_delivered}; after repair: {after}")
        return tuple(found)

    @property
    def ok(self) -> bool:
        """Exactly once, in order, complete, valid and isolated."""
        return not self.problems

    def summary(self) -> str:
        if self.ok:
            return f"ok: {self.delivered}/{self.expected} events delivered in {len(self.runs)} runs"
        return "; ".join(self.problems)

    def counts(self) -> dict[str, int | float]:
        """The numbers, by name (for a probe's details or a metrics sink)."""
        return {
            "expected": self.expected,
            "received": self.received,
            "delivered": self.delivered,
            "delivery_rate": self.delivery_rate,
            "lost": self.lost,
            "lost_gaps": len(self.lost_gaps),
            "lost_tail": len(self.lost_tail),
            "duplicates": self.duplicates,
            "duplicate_rate": self.duplicate_rate,
            "unexpected": len(self.unexpected),
            "leaks": self.leaks,
            "out_of_order": self.out_of_order,
            "inversions": self.inversions,
            "inversion_ratio": self.inversion_ratio,
            "displacement": self.displacement,
            "runs": len(self.runs),
            "completed_runs": self.completed_runs,
            "completeness": self.completeness,
            "valid_delivered": self.valid_delivered,
            "valid_repaired": self.valid_repaired,
            "malformed": len(self.malformed),
        }


def _few(items: Sequence[Any], limit: int = 5) -> str:
    shown = ", ".join(f"{item[0]}#{item[1]}" if isinstance(item, tuple) else str(item) for item in items[:limit])
    return shown + (f", … ({len(items) - limit} more)" if len(items) > limit else "")


def _fields(event: Any) -> tuple[Any, Any, Any, Any, Any]:
    """(run_id, seq, user_id, type, data) of a mapping other than a dict, or of an event object."""
    if isinstance(event, Mapping):
        get = event.get
        return get("run_id"), get("seq"), get("user_id"), get("type"), get("data")
    return (
        getattr(event, "run_id", None),
        getattr(event, "seq", None),
        getattr(event, "user_id", None),
        getattr(event, "type", None),
        getattr(event, "data", None),
    )


def check_delivery(
    expected: Iterable[Key],
    received: Iterable[Any],
    *,
    subscriber: str,
    spec: RunSpec = DEFAULT_RUN_SPEC,
) -> DeliveryReport:
    """Grade ``received`` (events in arrival order: wire-shaped mappings or `RunEvent`-like objects).

    ``expected`` holds the keys ``(run_id, seq)`` the user ``subscriber`` is entitled
    to. ``spec`` decides run validity and which event types end a run. An item without
    a string ``run_id`` and ``type`` and an integer ``seq`` is reported as malformed and
    otherwise ignored; an event without a ``user_id`` counts as a leak.
    """
    wanted = expected if isinstance(expected, set | frozenset) else set(expected)
    paired = {name for pair in spec.pairs for name in pair}
    call_key, terminal = spec.call_key, spec.terminal
    seen: set[Key] = set()
    duplicated: set[Key] = set()
    leaked: set[Key] = set()
    leaked_users: set[str] = set()
    malformed: list[int] = []
    # per run of the subscriber's own: seqs and types in arrival order, and the call id of every
    # paired event by seq (first arrival; None when it has none), so an empty dict means nothing to pair
    own: dict[str, tuple[list[int], list[str], dict[int, Any]]] = {}
    repeated: set[str] = set()  # own runs with a key received more than once
    finished: set[str] = set()  # own runs with a terminal event
    copies = leaks = count = 0
    for index, event in enumerate(received):
        if type(event) is dict:
            run_id, seq, user, kind = event.get("run_id"), event.get("seq"), event.get("user_id"), event.get("type")
            data = event.get("data") if kind in paired else None
        else:
            run_id, seq, user, kind, data = _fields(event)
        if type(run_id) is not str or type(seq) is not int or type(kind) is not str:
            malformed.append(index)
            continue
        count += 1
        key = (run_id, seq)
        if key in seen:
            copies += 1
            duplicated.add(key)
            if user == subscriber:
                repeated.add(run_id)
        else:
            seen.add(key)
        if user != subscriber:
            leaks += 1
            leaked.add(key)
            leaked_users.add(_MISSING if user is None else str(user))
            continue
        run = own.get(run_id)
        if run is None:
            run = own[run_id] = ([], [], {})
        run[0].append(seq)
        run[1].append(kind)
        if kind in paired and seq not in run[2]:
            run[2][seq] = data.get(call_key) if isinstance(data, Mapping) else None
        if kind in terminal:
            finished.add(run_id)

    lost = wanted - seen
    gaps: list[Key] = []
    tail: list[Key] = []
    if lost:
        top: dict[str, int] = {}
        for run_id, seq in seen:
            if seq > top.get(run_id, seq - 1):
                top[run_id] = seq
        for key in lost:
            (gaps if key[1] < top.get(key[0], key[1]) else tail).append(key)

    late: list[Key] = []
    inversions = pairs = moved = 0
    invalid_delivered: dict[str, SequenceVerdict] = {}
    invalid_repaired: dict[str, SequenceVerdict] = {}
    runs = set(own)
    runs.update({run_id for run_id, _ in wanted})
    for run_id in runs:
        seqs, kinds, calls = own.get(run_id) or ([], [], {})
        firsts = list(dict.fromkeys(seqs)) if run_id in repeated else seqs
        n = len(firsts)
        pairs += n * (n - 1) // 2
        in_order = True
        highest = firsts[0] if firsts else 0
        for seq in firsts:
            if seq < highest:
                in_order = False
                late.append((run_id, seq))
            else:
                highest = seq
        if not in_order:
            inversions += count_inversions(firsts)
            moved += displacement(firsts)
        verdict = check_types(kinds, [calls.get(seq) for seq in seqs] if calls else None, spec)
        if not verdict.valid:
            invalid_delivered[run_id] = verdict
        if firsts is not seqs or not in_order:
            kind_of: dict[int, str] = {}
            for seq, kind in zip(seqs, kinds, strict=True):
                kind_of.setdefault(seq, kind)
            order = sorted(firsts)
            verdict = check_types(
                [kind_of[seq] for seq in order], [calls.get(seq) for seq in order] if calls else None, spec
            )
        if not verdict.valid:
            invalid_repaired[run_id] = verdict

    return DeliveryReport(
        subscriber=subscriber,
        expected=len(wanted),
        received=count,
        delivered=len(wanted) - len(lost),
        lost_gaps=tuple(sorted(gaps)),
        lost_tail=tuple(sorted(tail)),
        duplicates=copies,
        duplicated=tuple(sorted(duplicated)),
        unexpected=tuple(sorted(seen - wanted - leaked)),
        leaks=leaks,
        leaked=tuple(sorted(leaked)),
        leaked_users=tuple(sorted(leaked_users)),
        late=tuple(sorted(late)),
        inversions=inversions,
        pairs=pairs,
        displacement=moved,
        runs=tuple(sorted(runs)),
        stuck_runs=tuple(sorted(runs - finished)),
        invalid_delivered=MappingProxyType(dict(sorted(invalid_delivered.items()))),
        invalid_repaired=MappingProxyType(dict(sorted(invalid_repaired.items()))),
        malformed=tuple(malformed),
    )
