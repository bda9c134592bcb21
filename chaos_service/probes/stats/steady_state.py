"""How a fault degraded the service against its pre-fault baseline, and when it was steady again.

The baseline is every result scheduled before ``t_inject`` (optionally from ``since``): its
success rate and one latency percentile. Degradation compares the same two figures during
the fault. The time to steady state is the first instant at or after ``t_clear`` from which
the rolling figures stay within a tolerance band of the baseline for a hold period.

Rolling figures at instant t are over the results scheduled in ``(t - rolling, t]``, so
they still count the fault's last failures just after the clear. They only change when a
result enters (at its scheduled start) or leaves (``rolling`` seconds later), so checking
those instants checks every instant.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from chaos_service.errors import InvalidInput
from chaos_service.probes.records import ProbeResult
from chaos_service.probes.stats.percentiles import Estimator, Percentile, percentile
from chaos_service.probes.stats.recovery import Censored, Elapsed, Measured, resolution
from chaos_service.probes.stats.windows import SuccessRate, latencies, success_rate

__all__ = ["Baseline", "Degradation", "SteadyState", "baseline", "degradation", "time_to_steady_state"]


@dataclass(frozen=True, slots=True)
class Baseline:
    """The pre-fault figures: results scheduled in ``[since, until)`` (``since`` None: from the first)."""

    since: float | None
    until: float  # t_inject
    success: SuccessRate
    latency: Percentile | None  # None when there is no latency to take it from
    p: float
    estimator: str
    ok_only: bool  # latencies of successes only

    def latency_of(self, results: Iterable[ProbeResult]) -> Percentile | None:
        """The same percentile, by the same estimator, over other results (None without samples)."""
        return _latency(results, self.p, self.estimator, self.ok_only)

    def __str__(self) -> str:
        latency = "no latency" if self.latency is None else str(self.latency)
        return f"baseline: {self.success}, {latency}"


def baseline(
    results: Iterable[ProbeResult],
    *,
    t_inject: float,
    since: float | None = None,
    p: float = 95.0,
    estimator: Estimator | str = Estimator.NEAREST_RANK,
    ok_only: bool = False,
) -> Baseline:
    """The success rate and ``p``-th latency percentile of the results scheduled before ``t_inject``.

    Raises:
        InvalidInput: ``p`` or ``estimator`` is invalid, or ``since`` is after ``t_inject``.
    """
    if since is not None and since > t_inject:
        raise InvalidInput(f"the baseline cannot start ({since!r}) after the injection ({t_inject!r})")
    percentile([0.0], p, estimator)  # validates p and the estimator even without samples
    before = [r for r in results if r.scheduled < t_inject and (since is None or r.scheduled >= since)]
    name = Estimator(estimator).value
    return Baseline(since, t_inject, success_rate(before), _latency(before, p, name, ok_only), float(p), name, ok_only)


def _latency(results: Iterable[ProbeResult], p: float, estimator: str, ok_only: bool) -> Percentile | None:
    samples = latencies(results, ok_only=ok_only)
    return percentile(samples, p, estimator) if samples else None


@dataclass(frozen=True, slots=True)
class Degradation:
    """The fault's figures next to the baseline's; each comparison is None when a side has no data."""

    baseline: Baseline
    until: float  # the fault's figures are over [baseline.until, until)
    success: SuccessRate
    latency: Percentile | None

    @property
    def success_rate_drop(self) -> float | None:
        """Baseline rate minus the fault's (0-1: 0.25 is 25 percentage points lower)."""
        before, during = self.baseline.success.rate, self.success.rate
        return None if before is None or during is None else before - during

    @property
    def success_rate_ratio(self) -> float | None:
        """The fault's rate over the baseline's (None if the baseline rate is 0 or unknown)."""
        before, during = self.baseline.success.rate, self.success.rate
        return None if not before or during is None else during / before

    @property
    def latency_increase(self) -> float | None:
        """The fault's latency percentile minus the baseline's, in seconds."""
        before, during = self.baseline.latency, self.latency
        return None if before is None or during is None else during.value - before.value

    @property
    def latency_ratio(self) -> float | None:
        """The fault's latency percentile over the baseline's (None if the baseline's is 0 or unknown)."""
        before, during = self.baseline.latency, self.latency
        return None if before is None or during is None or not before.value else during.value / before.value

    def __str__(self) -> str:
        latency = "no latency" if self.latency is None else str(self.latency)
        return f"during the fault: {self.success}, {latency}; {self.baseline}"


def degradation(results: Iterable[ProbeResult], baseline: Baseline, *, until: float) -> Degradation:
    """The baseline's figures over the results scheduled from the injection to ``until`` (``t_clear``).

    Raises:
        InvalidInput: ``until`` is not after the injection.
    """
    if not until > baseline.until:
        raise InvalidInput(f"the fault's period must end ({until!r}) after the injection ({baseline.until!r})")
    during = [r for r in results if baseline.until <= r.scheduled < until]
    return Degradation(baseline, until, success_rate(during), baseline.latency_of(during))


@dataclass(frozen=True, slots=True)
class SteadyState:
    """When the rolling figures were back within ``tolerance`` of the baseline for ``hold`` seconds.

    ``elapsed`` is ``t_steady - since`` or, if that never happened, `Censored` with the
    longest span that was checked: ``window_end - hold - since``.
    """

    since: float  # t_clear
    t_steady: float | None
    elapsed: Elapsed
    tolerance: float
    hold: float
    rolling: float

    @property
    def reached(self) -> bool:
        return self.t_steady is not None

    def __str__(self) -> str:
        band = f"±{100 * self.tolerance:g}% for {self.hold:g} s"
        if self.t_steady is None:
            return f"not back to steady state ({band}): {self.elapsed}"
        return f"back to steady state ({band}) after {self.elapsed}"


def time_to_steady_state(
    results: Iterable[ProbeResult],
    baseline: Baseline,
    *,
    t_clear: float,
    window_end: float,
    rolling: float,
    hold: float,
    period: float,
    probers: int = 1,
    tolerance: float = 0.10,
) -> SteadyState:
    """The first instant ``t ≥ t_clear`` from which the service stays as it was before the fault.

    At an instant the service is steady when the results scheduled in ``(t - rolling, t]``
    are not empty, their success rate is within ``tolerance`` (relative: 0.10 is ±10%) of
    the baseline's, and their latency percentile (the baseline's percentile and estimator)
    is within ``tolerance`` of the baseline's. It must stay steady on ``[t, t + hold)``,
    which must end by ``window_end``. For a fault never cleared, pass the instant to count
    from (``t_inject``) as ``t_clear``.

    Raises:
        InvalidInput: the baseline has no results or no latency, a span is not positive
            (``hold`` and ``tolerance`` may be 0), ``t_clear`` is before the injection or
            not before ``window_end``, or the period or number of probes is invalid.
    """
    step = resolution(period, probers)
    if baseline.success.rate is None or baseline.latency is None:
        raise InvalidInput("no baseline to return to: no results (or no latencies) before the injection")
    if not (math.isfinite(rolling) and rolling > 0):
        raise InvalidInput(f"the rolling window must be a positive number of seconds, not {rolling!r}")
    if not (math.isfinite(hold) and hold >= 0):
        raise InvalidInput(f"the hold period must be a number of seconds >= 0, not {hold!r}")
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise InvalidInput(f"the tolerance must be a fraction >= 0 (0.10 for ±10%), not {tolerance!r}")
    if not baseline.until <= t_clear < window_end:
        raise InvalidInput(f"t_clear ({t_clear!r}) must be from the injection ({baseline.until!r}) to window_end")
    ordered = sorted((r for r in results if r.scheduled < window_end), key=lambda r: r.scheduled)
    starts = [r.scheduled for r in ordered]
    leaves = [s + rolling for s in starts]  # a result is in the rolling window at t iff s <= t < s + rolling
    instants = sorted({t_clear, *(t for t in (*starts, *leaves) if t_clear <= t < window_end)})
    run_start: float | None = None
    for i, t in enumerate(instants):
        members = ordered[bisect.bisect_right(leaves, t) : bisect.bisect_right(starts, t)]
        if not _steady(members, baseline, tolerance):
            run_start = None
            continue
        if run_start is None:
            run_start = t
        run_end = instants[i + 1] if i + 1 < len(instants) else window_end
        if run_start + hold <= run_end:
            return SteadyState(t_clear, run_start, Measured(run_start - t_clear, step), tolerance, hold, rolling)
    censored = Censored(max(0.0, window_end - hold - t_clear), step)
    return SteadyState(t_clear, None, censored, tolerance, hold, rolling)


def _steady(members: Sequence[ProbeResult], baseline: Baseline, tolerance: float) -> bool:
    if not members or baseline.success.rate is None or baseline.latency is None:
        return False
    latency = baseline.latency_of(members)
    return (
        latency is not None
        and _within(success_rate(members).ok / len(members), baseline.success.rate, tolerance)
        and _within(latency.value, baseline.latency.value, tolerance)
    )


def _within(value: float, reference: float, tolerance: float) -> bool:
    return abs(value - reference) <= tolerance * abs(reference)
