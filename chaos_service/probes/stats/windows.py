"""Success rate and latency over fixed time windows of probe results.

Every result belongs to the instant it was scheduled (open-loop attribution), so a probe
that hung through the end of a window still counts against the window it was due in.
Windows are ``[origin + k·width, origin + (k + 1)·width)``; a window with no results is
reported as empty (its rate is None), never as 0% or 100%.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from chaos_service.errors import InvalidInput
from chaos_service.probes.records import ProbeResult
from chaos_service.probes.stats.percentiles import Estimator, Percentile, percentile

__all__ = ["MAX_WINDOWS", "SuccessRate", "Window", "latencies", "success_rate", "windows"]

MAX_WINDOWS: Final = 1_000_000  # more windows than this is a mistake in width or end


@dataclass(frozen=True, slots=True)
class SuccessRate:
    """How many of ``total`` results were successes; ``rate`` is None when there were none."""

    ok: int
    total: int

    @property
    def failed(self) -> int:
        return self.total - self.ok

    @property
    def rate(self) -> float | None:
        """``ok / total`` (0-1), or None for no results: an unobserved rate is not a number."""
        return self.ok / self.total if self.total else None

    def __str__(self) -> str:
        if not self.total:
            return "no results"
        return f"{100 * self.ok / self.total:.1f}% ({self.ok}/{self.total})"


def success_rate(results: Iterable[ProbeResult]) -> SuccessRate:
    """The share of ``results`` that succeeded (outcome OK)."""
    ok = total = 0
    for result in results:
        total += 1
        ok += result.ok
    return SuccessRate(ok, total)


def latencies(results: Iterable[ProbeResult], *, ok_only: bool = False) -> list[float]:
    """Each result's latency (scheduled start to end; a timeout counts its full deadline).

    With ``ok_only``, only the successes': failures that end fast would otherwise pull a
    latency percentile down.
    """
    return [result.latency for result in results if result.ok or not ok_only]


@dataclass(frozen=True, slots=True)
class Window:
    """The results scheduled in ``[start, end)``: their success rate and a latency percentile."""

    start: float
    end: float
    success: SuccessRate
    latency: Percentile | None  # None when the window holds no latency to take it from

    @property
    def empty(self) -> bool:
        return self.success.total == 0

    def __str__(self) -> str:
        latency = "" if self.latency is None else f", {self.latency}"
        return f"[{self.start:g}, {self.end:g}): {self.success}{latency}"


def windows(
    results: Iterable[ProbeResult],
    *,
    width: float,
    origin: float,
    end: float | None = None,
    p: float = 95.0,
    estimator: Estimator | str = Estimator.NEAREST_RANK,
    ok_only: bool = False,
) -> tuple[Window, ...]:
    """Consecutive windows of ``width`` seconds from ``origin``, each with its success rate and latency.

    Windows tile ``[origin, end)``; the last one is cut at ``end``. Without ``end`` they run
    to the window holding the last result. Results scheduled before ``origin`` or at or
    after ``end`` are in no window. Each window's latency is the ``p``-th percentile of its
    results' latencies (`latencies`, with ``ok_only``) by ``estimator``, computed from that
    window's own samples.

    Raises:
        InvalidInput: ``width`` is not a positive finite number, ``end`` is not after
            ``origin``, the windows would be more than `MAX_WINDOWS`, or ``p`` or
            ``estimator`` is invalid.
    """
    if not (math.isfinite(width) and width > 0):
        raise InvalidInput(f"a window's width must be a positive number of seconds, not {width!r}")
    if not math.isfinite(origin):
        raise InvalidInput(f"the windows' origin must be a finite time, not {origin!r}")
    percentile([0.0], p, estimator)  # validates p and the estimator even when every window is empty
    inside = [r for r in results if r.scheduled >= origin and (end is None or r.scheduled < end)]
    if end is None:
        if not inside:
            return ()
        last = max(r.scheduled for r in inside)
        count = math.floor((last - origin) / width) + 1
        while origin + count * width <= last:  # floating-point: the last result must be inside
            count += 1
        while count > 1 and origin + (count - 1) * width > last:  # ... and the last window must hold it
            count -= 1
        _check_count(count)
        bounds = [origin + k * width for k in range(count + 1)]
    else:
        if not end > origin:
            raise InvalidInput(f"the windows' end ({end!r}) must be after their origin ({origin!r})")
        count = math.ceil((end - origin) / width)
        _check_count(count)
        bounds = [origin + k * width for k in range(count)]
        bounds.append(end)
        while len(bounds) > 2 and bounds[-2] >= end:  # floating-point: no window may be empty by construction
            del bounds[-2]
    members: list[list[ProbeResult]] = [[] for _ in range(len(bounds) - 1)]
    for result in inside:
        members[bisect.bisect_right(bounds, result.scheduled) - 1].append(result)
    return tuple(_window(bounds[k], bounds[k + 1], group, p, estimator, ok_only) for k, group in enumerate(members))


def _check_count(count: int) -> None:
    if count > MAX_WINDOWS:
        raise InvalidInput(f"{count} windows is too many (at most {MAX_WINDOWS}): widen them or end sooner")


def _window(
    start: float, end: float, group: Sequence[ProbeResult], p: float, estimator: Estimator | str, ok_only: bool
) -> Window:
    samples = latencies(group, ok_only=ok_only)
    latency = percentile(samples, p, estimator) if samples else None
    return Window(start, end, success_rate(group), latency)
