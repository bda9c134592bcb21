"""LatencyHistogram: HdrHistogram's percentiles within 0.1%, exact extremes, counted drops, merging."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaos_service.errors import InvalidInput
from chaos_service.probes.stats.percentiles import HDRHISTOGRAM, Estimator, LatencyHistogram, percentile

FAST = settings(deadline=None, max_examples=100)

# Latencies as integer microseconds, spread over every order of magnitude from 0 to one hour.
micros = st.one_of(
    st.integers(0, 5_000),
    st.integers(0, 2_000_000),
    st.integers(0, LatencyHistogram.HIGHEST_US),
)
micro_lists = st.lists(micros, min_size=1, max_size=80)


def seconds(values: list[int]) -> list[float]:
    return [v / 1_000_000 for v in values]


def hdr_rank(p: float, n: int) -> int:
    """HdrHistogram's rank for percentile p of n values."""
    return max(1, int(p * n / 100 + 0.5))


@FAST
@given(micro_lists, st.floats(min_value=0, max_value=100))
def test_percentile_is_within_a_tenth_of_a_percent_of_the_exact_value_at_its_rank(values: list[int], p: float) -> None:
    histogram = LatencyHistogram.of(seconds(values))
    exact = sorted(values)[hdr_rank(p, len(values)) - 1]
    result = histogram.percentile(p)
    assert abs(result.value * 1_000_000 - exact) <= 0.001 * exact + 1e-6
    assert (result.estimator, result.count, result.relative_error) == (HDRHISTOGRAM, len(values), 0.001)


@FAST
@given(micro_lists)
def test_count_min_max_and_mean_are_exact(values: list[int]) -> None:
    histogram = LatencyHistogram.of(seconds(values))
    assert histogram.count == len(values)
    assert histogram.dropped == 0
    assert histogram.min == min(values) / 1_000_000
    assert histogram.max == max(values) / 1_000_000
    assert histogram.mean == pytest.approx(sum(values) / len(values) / 1_000_000)
    assert histogram.percentile(100).value == histogram.max
    assert histogram.percentile(0).value == histogram.min


@settings(deadline=None, max_examples=50)
@given(st.lists(st.lists(micros, max_size=30), min_size=1, max_size=5))
def test_merged_histograms_equal_one_histogram_of_every_value(parts: list[list[int]]) -> None:
    merged = LatencyHistogram.merged(LatencyHistogram.of(seconds(part)) for part in parts)
    everything = LatencyHistogram.of(seconds([v for part in parts for v in part]))
    assert (merged.count, merged.min, merged.max, merged.mean) == (
        everything.count,
        everything.min,
        everything.max,
        everything.mean,
    )
    if everything.count:
        for p in (0, 50, 99.9, 100):
            assert merged.percentile(p) == everything.percentile(p)


def test_values_it_cannot_hold_are_dropped_and_counted() -> None:
    histogram = LatencyHistogram()
    assert histogram.record(0.25) is True
    assert histogram.record(-0.001) is False
    assert histogram.record(3600.0) is True  # one hour: the largest value it holds
    assert histogram.record(3600.001) is False
    assert histogram.record(math.inf) is False
    assert (histogram.count, histogram.dropped_negative, histogram.dropped_too_large, histogram.dropped) == (2, 1, 2, 3)
    assert histogram.max == 3600.0
    with pytest.raises(InvalidInput, match="NaN"):
        histogram.record(math.nan)


def test_drops_are_carried_through_a_merge() -> None:
    a, b = LatencyHistogram.of([-1.0, 0.1]), LatencyHistogram.of([7200.0])
    a.add(b)
    assert (a.count, a.dropped_negative, a.dropped_too_large) == (1, 1, 1)


def test_merging_an_empty_histogram_keeps_the_minimum() -> None:
    # HdrHistogram's own add() resets the minimum to 0 when either side is empty
    histogram = LatencyHistogram.of([0.5, 0.7])
    histogram.add(LatencyHistogram())
    empty = LatencyHistogram()
    empty.add(LatencyHistogram.of([0.5]))
    assert (histogram.min, empty.min, empty.percentile(0).value) == (0.5, 0.5, 0.5)


def test_sub_microsecond_values_round_to_the_nearest_microsecond() -> None:
    histogram = LatencyHistogram.of([0.0000004, 0.0000016])
    assert (histogram.min, histogram.max) == (0.0, 0.000002)


def test_merging_is_how_percentiles_combine_not_averaging() -> None:
    fast = LatencyHistogram.of([0.010] * 99 + [0.020])
    slow = LatencyHistogram.of([1.0] * 10)
    merged = LatencyHistogram.merged([fast, slow])
    average_of_p99s = (fast.percentile(99).value + slow.percentile(99).value) / 2
    assert merged.percentile(99).value == pytest.approx(1.0, rel=0.001)
    assert average_of_p99s == pytest.approx(0.505, rel=0.001)  # what averaging would wrongly claim
    raw = percentile([0.010] * 99 + [0.020] + [1.0] * 10, 99, Estimator.NEAREST_RANK)
    assert merged.percentile(99).value == pytest.approx(raw.value, rel=0.001)


def test_an_empty_histogram_has_no_figures() -> None:
    histogram = LatencyHistogram()
    assert (histogram.count, histogram.min, histogram.max, histogram.mean) == (0, None, None, None)
    with pytest.raises(InvalidInput, match="empty histogram"):
        histogram.percentile(50)
    summary = histogram.summary()
    assert (summary.count, summary.percentiles) == (0, ())


def test_summary_reports_the_usual_percentiles() -> None:
    histogram = LatencyHistogram.of([i / 1000 for i in range(1, 1001)])
    summary = histogram.summary((50, 99))
    assert [p.label for p in summary.percentiles] == ["p50", "p99"]
    assert [p.value for p in summary.percentiles] == [pytest.approx(0.5, rel=0.001), pytest.approx(0.99, rel=0.001)]
    assert str(summary.percentiles[0]).endswith("(hdrhistogram, n=1000)")
    assert (summary.count, summary.dropped, summary.min, summary.max) == (1000, 0, 0.001, 1.0)


@pytest.mark.parametrize("p", [-1, 101, math.nan])
def test_a_percentile_outside_0_to_100_is_refused(p: float) -> None:
    with pytest.raises(InvalidInput, match="from 0 to 100"):
        LatencyHistogram.of([0.1]).percentile(p)
