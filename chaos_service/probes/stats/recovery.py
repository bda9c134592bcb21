"""Detection and recovery times around one injected fault, from open-loop probe results.

All times are on one monotonic clock, in seconds. The anchors::

    t_inject ──── t_first_fail ─────── t_clear ────── t_recovered ──── window_end
      │◄─ detection ─►│                  │◄─ TTR ─────►│
                      │◄────────── outage ────────────►│

* ``t_first_fail``: the scheduled start of the first failed result at or after ``t_inject``;
  none means the fault was not detected.
* ``t_recovered``: the scheduled start of the *first* result of the first run of K
  consecutive successes that starts at or after ``t_clear``. Taking the first of the
  streak, not the K-th, keeps K·P out of the figure. For a fault that is never cleared
  (a failover test) the streak must start at or after ``t_first_fail`` (or ``t_inject`` if
  nothing failed), and TTR is counted from ``t_inject``.
* Results of several probes are merged in scheduled order. At the same scheduled instant
  successes sort before failures, so a failure at that instant breaks any streak that
  includes it: a streak never claims an instant at which some probe failed.
* Only results scheduled before ``window_end`` are read. No streak inside the window
  means a `Censored` time, "> W s" with W = ``window_end - t_clear``: it is kept apart
  and never turned into a number.
* Every time carries its resolution, the probe period divided by the number of
  phase-shifted probes: the true instant lies within one resolution before the one
  reported.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, TypeAlias

from chaos_service.errors import InvalidInput
from chaos_service.probes.records import ProbeResult

__all__ = [
    "Censored",
    "Elapsed",
    "Measured",
    "Recovery",
    "RecoverySummary",
    "first_success_streak",
    "measure_recovery",
    "resolution",
    "scheduled_order",
    "summarize_recoveries",
]


@dataclass(frozen=True, slots=True)
class Measured:
    """An interval observed inside the window: ``seconds``, accurate to ``resolution``."""

    seconds: float
    resolution: float

    @property
    def censored(self) -> Literal[False]:
        return False

    def __str__(self) -> str:
        return f"{self.seconds:.3f} s ±{self.resolution:.3f} s"


@dataclass(frozen=True, slots=True)
class Censored:
    """An interval that had not ended when observation stopped: only known to exceed ``more_than``.

    It has no ``seconds`` and no numeric value on purpose: substituting the window length
    would bias every aggregate low.
    """

    more_than: float
    resolution: float

    @property
    def censored(self) -> Literal[True]:
        return True

    def __str__(self) -> str:
        return f"> {self.more_than:.3f} s"


Elapsed: TypeAlias = Measured | Censored


def resolution(period: float, probers: int = 1) -> float:
    """How finely ``probers`` probes, phase-shifted by ``period / probers``, place an instant.

    Raises:
        InvalidInput: ``period`` is not a positive finite number or ``probers`` is below 1.
    """
    if not (math.isfinite(period) and period > 0):
        raise InvalidInput(f"a probe period must be a positive number of seconds, not {period!r}")
    if isinstance(probers, bool) or not isinstance(probers, int) or probers < 1:
        raise InvalidInput(f"the number of phase-shifted probes must be an integer >= 1, not {probers!r}")
    return period / probers


def scheduled_order(results: Iterable[ProbeResult]) -> list[ProbeResult]:
    """Results of any number of probes in scheduled order; at one instant, successes first.

    Ties that remain are broken by probe name and index, so the order is reproducible.
    """
    return sorted(results, key=lambda r: (r.scheduled, not r.ok, r.probe, r.index))


def first_success_streak(ordered: Iterable[ProbeResult], *, since: float, k: int) -> float | None:
    """The scheduled start of the first result of the first ``k`` consecutive successes from ``since``.

    ``ordered`` must already be in `scheduled_order`; results before ``since`` are skipped.
    None when no such run exists.

    Raises:
        InvalidInput: ``k`` is not an integer >= 1.
    """
    _check_k(k)
    run = 0
    start = 0.0
    for result in ordered:
        if result.scheduled < since:
            continue
        if not result.ok:
            run = 0
            continue
        if run == 0:
            start = result.scheduled
        run += 1
        if run >= k:
            return start
    return None


@dataclass(frozen=True, slots=True)
class Recovery:
    """Detection and recovery of one fault in one trial (times on the probes' clock, seconds)."""

    t_inject: float
    t_clear: float | None  # None: the fault was never cleared
    window_end: float
    k: int
    resolution: float
    t_first_fail: float | None  # None: no failure, the fault was not detected
    t_recovered: float | None  # None: no K-success streak in the window

    @property
    def detected(self) -> bool:
        return self.t_first_fail is not None

    @property
    def recovered(self) -> bool:
        return self.t_recovered is not None

    @property
    def detection_latency(self) -> Measured | None:
        """``t_first_fail - t_inject``; None when nothing failed."""
        if self.t_first_fail is None:
            return None
        return Measured(self.t_first_fail - self.t_inject, self.resolution)

    @property
    def ttr_after_clear(self) -> Elapsed | None:
        """``t_recovered - t_clear``: how long the system lagged behind the fault's end (None if never cleared)."""
        if self.t_clear is None:
            return None
        return self._since(self.t_clear)

    @property
    def ttr_after_inject(self) -> Elapsed:
        """``t_recovered - t_inject``: the figure for a fault that is never cleared."""
        return self._since(self.t_inject)

    @property
    def ttr(self) -> Elapsed:
        """Time to recover: after the clear, or after the injection for a never-cleared fault."""
        return self._since(self.t_inject if self.t_clear is None else self.t_clear)

    @property
    def outage(self) -> Elapsed | None:
        """``t_recovered - t_first_fail``: the user-visible impact.

        None when nothing failed, or when the first failure came after the recovery (it
        belongs to no outage of this fault).
        """
        if self.t_first_fail is None:
            return None
        if self.t_recovered is not None and self.t_recovered < self.t_first_fail:
            return None
        return self._since(self.t_first_fail)

    def _since(self, anchor: float) -> Elapsed:
        if self.t_recovered is None:
            return Censored(self.window_end - anchor, self.resolution)
        return Measured(self.t_recovered - anchor, self.resolution)

    def __str__(self) -> str:
        detection = "not detected" if self.detection_latency is None else f"detected after {self.detection_latency}"
        after = "injection" if self.t_clear is None else "clear"
        if self.t_recovered is None:
            return f"{detection}; not recovered within the window: TTR {self.ttr} after {after}"
        outage = "" if self.outage is None else f" (outage {self.outage})"
        return f"{detection}; recovered {self.ttr} after {after}{outage}"


def measure_recovery(
    results: Iterable[ProbeResult],
    *,
    t_inject: float,
    t_clear: float | None,
    window_end: float,
    period: float,
    probers: int = 1,
    k: int = 3,
) -> Recovery:
    """Detection and recovery of the fault injected at ``t_inject`` (see the module's definitions).

    Args:
        results: every probe's results, in any order; several phase-shifted probes merge.
        t_inject: when the fault was injected.
        t_clear: when it was removed, or None if it never was.
        window_end: when observation stopped; later results are ignored.
        period: each probe's period; with ``probers`` it gives the reported resolution.
        probers: how many probes, evenly phase-shifted, the results come from.
        k: consecutive successes that count as recovered.

    Raises:
        InvalidInput: a time is not finite, ``t_clear`` is before ``t_inject``,
            ``window_end`` is before the fault's end, ``k`` is below 1, or the period or
            number of probes is invalid.
    """
    step = resolution(period, probers)
    _check_k(k)
    for name, value in (("t_inject", t_inject), ("t_clear", t_clear), ("window_end", window_end)):
        if value is not None and not math.isfinite(value):
            raise InvalidInput(f"{name} must be a finite time, not {value!r}")
    if t_clear is not None and t_clear < t_inject:
        raise InvalidInput(f"the fault cannot be cleared (t_clear={t_clear!r}) before it is injected ({t_inject!r})")
    anchor = t_inject if t_clear is None else t_clear
    if window_end < anchor:
        raise InvalidInput(f"the observation window cannot end ({window_end!r}) before {anchor!r}")
    ordered = [r for r in scheduled_order(results) if r.scheduled < window_end]
    t_first_fail = next((r.scheduled for r in ordered if r.scheduled >= t_inject and not r.ok), None)
    since = t_clear if t_clear is not None else t_inject if t_first_fail is None else t_first_fail
    t_recovered = first_success_streak(ordered, since=since, k=k)
    return Recovery(t_inject, t_clear, window_end, k, step, t_first_fail, t_recovered)


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidInput(f"K consecutive successes must be an integer >= 1, not {k!r}")


@dataclass(frozen=True, slots=True)
class RecoverySummary:
    """Recovery times over many trials: every value, the median and maximum, and the censored apart.

    ``median`` (`statistics.median`: the mean of the two middle values for an even count)
    and ``max`` are over the recovered trials only; always read them next to
    ``censored_count``. There is no p99: tens of trials cannot support one.
    """

    values: tuple[float, ...]  # measured times, in the order given
    censored: tuple[Censored, ...]
    resolution: float  # the coarsest resolution among the trials (0 with none)

    @property
    def trials(self) -> int:
        return len(self.values) + len(self.censored)

    @property
    def censored_count(self) -> int:
        return len(self.censored)

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None

    @property
    def max(self) -> float | None:
        return max(self.values) if self.values else None

    def __str__(self) -> str:
        parts = [f"{self.trials} trials"]
        if self.values:
            parts.append(
                f"median {self.median:.3f} s, max {self.max:.3f} s over {len(self.values)} recovered"
                f" (±{self.resolution:.3f} s)"
            )
        if self.censored:
            bounds = ", ".join(str(c) for c in self.censored)
            parts.append(f"{len(self.censored)} censored ({bounds})")
        return "; ".join(parts)


def summarize_recoveries(times: Iterable[Elapsed]) -> RecoverySummary:
    """Summarise recovery times (e.g. ``r.ttr for r in trials``), keeping censored ones apart."""
    values: list[float] = []
    censored: list[Censored] = []
    coarsest = 0.0
    for time in times:
        if isinstance(time, Censored):
            censored.append(time)
        elif isinstance(time, Measured):
            values.append(time.seconds)
        else:
            raise InvalidInput(f"a recovery time must be Measured or Censored, not {type(time).__name__}")
        coarsest = max(coarsest, time.resolution)
    return RecoverySummary(tuple(values), tuple(censored), coarsest)
