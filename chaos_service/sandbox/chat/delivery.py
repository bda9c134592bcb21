"""Per-connection delivery: each run's events exactly once and in ``seq`` order.

Pure: the connection offers every event it receives (live, replayed or filled from the
store) and sends what the guard returns. An event that arrives ahead of its
predecessors is held and the guard asks for the missing range (a `Gap`), which the
connection reads from Postgres, where every event is stored before it is sent.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from chaos_service.sandbox.chat.events import RunEvent

#: Finished runs remembered per connection, so late duplicates of them are dropped.
FINISHED_MEMORY = 1024


@dataclass(frozen=True)
class Gap:
    """Events ``first``..``last`` (inclusive) of a run are missing."""

    run_id: str
    first: int
    last: int


@dataclass
class Release:
    """What to send now, in this order, and a gap to fill if there is one."""

    send: list[RunEvent] = field(default_factory=list)
    gap: Gap | None = None


@dataclass
class _Followed:
    next_seq: int
    pending: dict[int, RunEvent] = field(default_factory=dict)
    held: bool = False
    filling: bool = False


class DeliveryGuard:
    """Orders and de-duplicates the events one connection sends.

    With ``ordered=False`` events are passed on as they come (only duplicates are
    dropped): the behaviour of the ``reorder_tool_events`` defect.
    """

    def __init__(self, ordered: bool = True) -> None:
        self.ordered = ordered
        self._runs: dict[str, _Followed] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._seen: dict[str, set[int]] = {}

    def following(self, run_id: str) -> bool:
        return run_id in self._runs

    def follow(self, run_id: str, next_seq: int, hold: bool = False) -> None:
        """Deliver ``run_id`` from ``next_seq`` on (a resume); ``hold`` keeps events back until `release`."""
        if not self.ordered:
            self._seen[run_id] = set(range(next_seq))
            return
        self._finished.pop(run_id, None)
        run = self._runs.get(run_id)
        if run is None:
            self._runs[run_id] = _Followed(next_seq, held=hold)
            return
        run.next_seq = next_seq
        run.pending = {seq: event for seq, event in run.pending.items() if seq >= next_seq}
        run.held = hold

    def release(self, run_id: str) -> Release:
        """Stop holding ``run_id`` back: what was held goes out, in order."""
        run = self._runs.get(run_id) if self.ordered else None
        if run is None:
            return Release()
        run.held = False
        return self._drain(run_id, run)

    def offer(self, event: RunEvent) -> Release:
        if not self.ordered:
            return self._offer_unordered(event)
        if event.run_id in self._finished:
            return Release()
        run = self._runs.get(event.run_id)
        if run is None:
            if event.seq != 0:
                return Release()  # a run that began before this connection: the client resumes it if it wants it
            run = self._runs[event.run_id] = _Followed(0)
        if event.seq < run.next_seq or event.seq in run.pending:
            return Release()
        run.pending[event.seq] = event
        return self._drain(event.run_id, run)

    def filled(self, run_id: str, events: list[RunEvent]) -> Release:
        """Offer the events read for a `Gap` (``events`` may be empty if the read failed)."""
        release = Release()
        for event in events:  # the run still counts as filling: no new gap is asked for meanwhile
            release.send.extend(self.offer(event).send)
        run = self._runs.get(run_id)
        if run is not None:
            run.filling = False
            release.gap = self._gap(run_id, run)
        return release

    def _drain(self, run_id: str, run: _Followed) -> Release:
        release = Release()
        if run.held:
            return release
        while (event := run.pending.pop(run.next_seq, None)) is not None:
            release.send.append(event)
            run.next_seq += 1
            if event.terminal:
                self._finish(run_id)
                return release
        release.gap = self._gap(run_id, run)
        return release

    def _gap(self, run_id: str, run: _Followed) -> Gap | None:
        if run.held or run.filling or not run.pending:
            return None
        run.filling = True
        return Gap(run_id, run.next_seq, min(run.pending) - 1)

    def _finish(self, run_id: str) -> None:
        del self._runs[run_id]
        self._finished[run_id] = None
        while len(self._finished) > FINISHED_MEMORY:
            self._finished.popitem(last=False)

    def _offer_unordered(self, event: RunEvent) -> Release:
        seen = self._seen.get(event.run_id)
        if seen is None:
            if event.seq != 0:
                return Release()
            seen = self._seen[event.run_id] = set()
        if event.seq in seen:
            return Release()
        seen.add(event.seq)
        if event.terminal and len(self._seen) > FINISHED_MEMORY:
            self._seen.pop(next(iter(self._seen)))
        return Release(send=[event])
