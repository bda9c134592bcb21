"""Percentiles with the estimator named: over raw samples, or from an HdrHistogram of latencies.

Estimators differ noticeably on small samples, so every result carries the estimator's name
and the sample count. Over raw samples (Hyndman & Fan, 1996, numbering):

============  ======  ===========================================================================
name          type    value at percentile p of the sorted sample x₁ ≤ … ≤ xₙ
============  ======  ===========================================================================
nearest-rank  1       x_⌈p·n/100⌉ (x₁ for p = 0): always an observed value
exclusive     6       interpolate at h = (n + 1)·p/100, clamped to [x₁, xₙ]
linear        7       interpolate at h = (n - 1)·p/100 + 1 (numpy's default)
============  ======  ===========================================================================

``exclusive`` is the default method of Python's `statistics.quantiles`; inside
[100/(n + 1), 100·n/(n + 1)] the two agree, but outside it `statistics.quantiles`
extrapolates past the sample's smallest and largest values, while this module (like R's
type 6) stays at them: a latency percentile is never below the fastest answer seen.
``linear`` equals `statistics.quantiles(method="inclusive")`. A percentile p is taken at the
decimal value it is written as (99.9 means 999/1000, not the nearest binary float).

Percentiles are never averaged: across probes, runs or time windows, merge the samples (or
the histograms, `LatencyHistogram.add`) and compute again.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from typing import Final

from hdrh.histogram import HdrHistogram

from chaos_service.errors import InvalidInput

__all__ = [
    "HDRHISTOGRAM",
    "Estimator",
    "HistogramSummary",
    "LatencyHistogram",
    "Percentile",
    "percentile",
    "percentiles",
]

HDRHISTOGRAM: Final = "hdrhistogram"  # the estimator name carried by `LatencyHistogram.percentile`


class Estimator(StrEnum):
    """How a percentile is read off a raw sample (Hyndman-Fan type in the comment)."""

    NEAREST_RANK = "nearest-rank"  # type 1: the smallest value with at least p% of the sample at or below it
    EXCLUSIVE = "exclusive"  # type 6: Python's `statistics.quantiles` default (clamped to the sample's range)
    LINEAR = "linear"  # type 7: numpy's default, `statistics.quantiles(method="inclusive")`


@dataclass(frozen=True, slots=True)
class Percentile:
    """One percentile of one sample, with how it was computed.

    ``relative_error`` is 0 for raw samples and the histogram's bound (0.001) for
    `LatencyHistogram`: the reported value is within that fraction of the exact one.
    """

    percentile: float  # 0-100
    value: float
    estimator: str  # an `Estimator` value, or `HDRHISTOGRAM`
    count: int  # samples it was computed from
    relative_error: float = 0.0

    @property
    def label(self) -> str:
        """``p50``, ``p99.9``: the percentile as it is usually written."""
        return f"p{self.percentile:g}"

    def __str__(self) -> str:
        return f"{self.label} = {self.value:g} ({self.estimator}, n={self.count})"


def percentile(samples: Iterable[float], p: float, estimator: Estimator | str = Estimator.NEAREST_RANK) -> Percentile:
    """The ``p``-th percentile (0-100) of ``samples`` by the named estimator.

    Raises:
        InvalidInput: the sample is empty or holds a NaN or an infinity, ``p`` is outside
            0-100, or the estimator is unknown.
    """
    return percentiles(samples, (p,), estimator)[0]


def percentiles(
    samples: Iterable[float], ps: Sequence[float], estimator: Estimator | str = Estimator.NEAREST_RANK
) -> tuple[Percentile, ...]:
    """Several percentiles of one sample (sorted once), in the order of ``ps``.

    Raises:
        InvalidInput: as `percentile`.
    """
    method = _estimator(estimator)
    fractions = [_fraction(p) for p in ps]
    ordered = sorted(_finite(samples))
    if not ordered:
        raise InvalidInput("a percentile of an empty sample is undefined")
    n = len(ordered)
    return tuple(
        Percentile(float(p), _ESTIMATES[method](ordered, fraction), method.value, n)
        for p, fraction in zip(ps, fractions, strict=True)
    )


def _nearest_rank(x: Sequence[float], q: Fraction) -> float:
    rank = max(1, math.ceil(q * len(x)))
    return x[rank - 1]


def _exclusive(x: Sequence[float], q: Fraction) -> float:
    return _interpolate(x, (len(x) + 1) * q)


def _linear(x: Sequence[float], q: Fraction) -> float:
    return _interpolate(x, (len(x) - 1) * q + 1)


def _interpolate(x: Sequence[float], h: Fraction) -> float:
    """The value at 1-based fractional rank ``h``, clamped to the first and last values."""
    if h <= 1:
        return x[0]
    if h >= len(x):
        return x[-1]
    j = math.floor(h)
    low, high = x[j - 1], x[j]
    return low + float(h - j) * (high - low) if high != low else low


_ESTIMATES = {Estimator.NEAREST_RANK: _nearest_rank, Estimator.EXCLUSIVE: _exclusive, Estimator.LINEAR: _linear}


def _estimator(estimator: Estimator | str) -> Estimator:
    try:
        return Estimator(estimator)
    except ValueError:
        known = ", ".join(e.value for e in Estimator)
        raise InvalidInput(f"unknown percentile estimator {estimator!r}: use one of {known}") from None


def _fraction(p: float) -> Fraction:
    """``p``/100 as an exact fraction of the decimal ``p`` is written as."""
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 100:
        raise InvalidInput(f"a percentile must be a number from 0 to 100, not {p!r}")
    return Fraction(repr(p)) / 100


def _finite(samples: Iterable[float]) -> list[float]:
    values = [float(v) for v in samples]
    if not all(math.isfinite(v) for v in values):
        raise InvalidInput("a sample for percentiles must hold finite numbers only (no NaN, no infinity)")
    return values


@dataclass(frozen=True, slots=True)
class HistogramSummary:
    """A histogram's figures at one moment; times in seconds, None when it is empty."""

    count: int
    dropped: int
    min: float | None
    max: float | None
    mean: float | None
    percentiles: tuple[Percentile, ...]


class LatencyHistogram:
    """Latencies in integer microseconds, 1 µs to 1 h, at 3 significant digits (HdrHistogram).

    `record` takes seconds. A value it cannot hold is dropped and counted, never clamped:
    negative values in `dropped_negative`, values above one hour in `dropped_too_large`.
    `count`, `min`, `max` and `mean` are exact over the recorded microseconds.
    `percentile` is HdrHistogram's own estimator: the value at rank ⌊p·n/100 + ½⌋ (at least
    1), reported as the highest value the histogram cannot tell apart from it, which is
    within 0.1% of the exact value at that rank; it is then kept inside the exact recorded
    `min` and `max`, which only brings it closer.

    Combine histograms (probes, runs, windows) with `add` or `merged`, never by averaging
    their percentiles. Probes are scheduled open-loop, so values are recorded as measured:
    no coordinated-omission correction is applied.
    """

    LOWEST_US: Final = 1
    HIGHEST_US: Final = 3_600_000_000
    SIGNIFICANT_FIGURES: Final = 3
    RELATIVE_ERROR: Final = 0.001

    def __init__(self) -> None:
        self._hdr = HdrHistogram(self.LOWEST_US, self.HIGHEST_US, self.SIGNIFICANT_FIGURES)
        self._count = 0
        self._sum_us = 0
        self._min_us: int | None = None
        self._max_us: int | None = None
        self.dropped_negative = 0
        self.dropped_too_large = 0

    @classmethod
    def of(cls, seconds: Iterable[float]) -> LatencyHistogram:
        """A histogram with every value of ``seconds`` recorded."""
        histogram = cls()
        for value in seconds:
            histogram.record(value)
        return histogram

    @classmethod
    def merged(cls, histograms: Iterable[LatencyHistogram]) -> LatencyHistogram:
        """A new histogram holding everything the given ones hold (they are left unchanged)."""
        total = cls()
        for histogram in histograms:
            total.add(histogram)
        return total

    def record(self, seconds: float) -> bool:
        """Record one latency; False (and counted in `dropped`) if it is negative or above one hour.

        Raises:
            InvalidInput: ``seconds`` is NaN.
        """
        if math.isnan(seconds):
            raise InvalidInput("a latency cannot be NaN")
        if seconds < 0:
            self.dropped_negative += 1
            return False
        if seconds * 1_000_000 > self.HIGHEST_US + 0.5:
            self.dropped_too_large += 1
            return False
        micros = round(seconds * 1_000_000)
        if not self._hdr.record_value(micros):  # cannot happen inside the range, but never lose a drop
            self.dropped_too_large += 1
            return False
        self._count += 1
        self._sum_us += micros
        self._min_us = micros if self._min_us is None else min(self._min_us, micros)
        self._max_us = micros if self._max_us is None else max(self._max_us, micros)
        return True

    def add(self, other: LatencyHistogram) -> None:
        """Merge ``other`` into this histogram: counts, drops, min, max and mean all combine."""
        if other._min_us is not None and other._max_us is not None:
            self._hdr.add(other._hdr)
            self._count += other._count
            self._sum_us += other._sum_us
            self._min_us = other._min_us if self._min_us is None else min(self._min_us, other._min_us)
            self._max_us = other._max_us if self._max_us is None else max(self._max_us, other._max_us)
        self.dropped_negative += other.dropped_negative
        self.dropped_too_large += other.dropped_too_large

    @property
    def count(self) -> int:
        """Values recorded (drops excluded)."""
        return self._count

    @property
    def dropped(self) -> int:
        """Values refused: negative or above one hour."""
        return self.dropped_negative + self.dropped_too_large

    @property
    def min(self) -> float | None:
        return None if self._min_us is None else self._min_us / 1_000_000

    @property
    def max(self) -> float | None:
        return None if self._max_us is None else self._max_us / 1_000_000

    @property
    def mean(self) -> float | None:
        return self._sum_us / self._count / 1_000_000 if self._count else None

    def percentile(self, p: float) -> Percentile:
        """The ``p``-th percentile (0-100) in seconds, within 0.1% of the exact value at its rank.

        Raises:
            InvalidInput: the histogram is empty or ``p`` is outside 0-100.
        """
        _fraction(p)
        if self._min_us is None or self._max_us is None:
            raise InvalidInput("a percentile of an empty histogram is undefined")
        micros = min(max(int(self._hdr.get_value_at_percentile(float(p))), self._min_us), self._max_us)
        return Percentile(float(p), micros / 1_000_000, HDRHISTOGRAM, self._count, self.RELATIVE_ERROR)

    def summary(self, ps: Sequence[float] = (50.0, 90.0, 95.0, 99.0, 99.9)) -> HistogramSummary:
        """Count, drops, min, max, mean and the percentiles ``ps`` (none when empty)."""
        figures = tuple(self.percentile(p) for p in ps) if self._count else ()
        return HistogramSummary(self._count, self.dropped, self.min, self.max, self.mean, figures)
