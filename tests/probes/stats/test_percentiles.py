"""Percentiles over raw samples: each estimator against its textbook definition and `statistics.quantiles`."""

from __future__ import annotations

import itertools
import math
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaos_service.errors import InvalidInput
from chaos_service.probes.stats.percentiles import Estimator, Percentile, percentile, percentiles

FAST = settings(deadline=None, max_examples=100)

values = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
samples = st.lists(values, min_size=1, max_size=60)
# Percentiles written with one decimal (0.0, 0.1, ..., 100.0) as tenths, so an oracle can use integers.
tenths = st.integers(0, 1000)


def close(a: float, b: float, data: list[float]) -> bool:
    scale = max(1.0, *(abs(v) for v in data))
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12 * scale)


# -- nearest rank (type 1) -------------------------------------------------------------------------


@FAST
@given(samples, tenths)
def test_nearest_rank_is_the_sorted_value_at_rank_ceil_p_n(data: list[float], p_tenths: int) -> None:
    ordered = sorted(data)
    rank = -(-p_tenths * len(data) // 1000)  # ceil(p/100 * n) with p = p_tenths/10, in integers
    expected = ordered[max(rank, 1) - 1]
    result = percentile(data, p_tenths / 10, Estimator.NEAREST_RANK)
    assert result.value == expected
    assert result.value in data


def test_nearest_rank_reads_p_as_the_decimal_it_is_written_as() -> None:
    data = [float(v) for v in range(1, 1001)]
    # 99.9 as a binary float is a hair above 99.9; taken literally it would give rank 1000
    assert percentile(data, 99.9, Estimator.NEAREST_RANK).value == 999.0
    assert percentile(data, 100, Estimator.NEAREST_RANK).value == 1000.0
    assert percentile(data, 0, Estimator.NEAREST_RANK).value == 1.0


# -- exclusive (type 6) ----------------------------------------------------------------------------


@FAST
@given(st.lists(values, min_size=2, max_size=60), st.integers(2, 100), st.data())
def test_exclusive_matches_statistics_quantiles_inside_its_range(
    data: list[float], m: int, draw: st.DataObject
) -> None:
    i = draw.draw(st.integers(1, m - 1))
    n = len(data)
    result = percentile(data, 100 * i / m, Estimator.EXCLUSIVE).value
    if m <= i * (n + 1) <= n * m:  # 1/(n+1) <= i/m <= n/(n+1): no extrapolation in `statistics`
        assert close(result, statistics.quantiles(data, n=m, method="exclusive")[i - 1], data)
    elif i * (n + 1) < m:
        assert result == min(data)  # statistics.quantiles would extrapolate below the minimum
    else:
        assert result == max(data)


def test_exclusive_stays_inside_the_sample_where_statistics_quantiles_extrapolates() -> None:
    assert statistics.quantiles([1.0, 2.0], n=4, method="exclusive")[0] == 0.75
    assert percentile([1.0, 2.0], 25, Estimator.EXCLUSIVE).value == 1.0
    assert percentile([1.0, 2.0], 75, Estimator.EXCLUSIVE).value == 2.0


@FAST
@given(samples, st.floats(min_value=0, max_value=100))
def test_exclusive_follows_the_hyndman_fan_type_6_formula(data: list[float], p: float) -> None:
    x = sorted(data)
    n = len(x)
    h = (n + 1) * p / 100
    if h < 1:
        expected = x[0]
    elif h >= n:
        expected = x[-1]
    else:
        j = math.floor(h)
        expected = x[j - 1] + (h - j) * (x[j] - x[j - 1])
    assert math.isclose(percentile(data, p, Estimator.EXCLUSIVE).value, expected, rel_tol=1e-9, abs_tol=1e-6)


# -- linear (type 7) -------------------------------------------------------------------------------


@FAST
@given(st.lists(values, min_size=2, max_size=60), st.integers(2, 100), st.data())
def test_linear_matches_statistics_quantiles_inclusive(data: list[float], m: int, draw: st.DataObject) -> None:
    i = draw.draw(st.integers(1, m - 1))
    expected = statistics.quantiles(data, n=m, method="inclusive")[i - 1]
    assert close(percentile(data, 100 * i / m, Estimator.LINEAR).value, expected, data)


@FAST
@given(samples, st.floats(min_value=0, max_value=100))
def test_linear_follows_the_numpy_default_formula(data: list[float], p: float) -> None:
    x = sorted(data)
    h = (len(x) - 1) * p / 100
    j = math.floor(h)
    expected = x[j] if j + 1 >= len(x) else x[j] + (h - j) * (x[j + 1] - x[j])
    assert math.isclose(percentile(data, p, Estimator.LINEAR).value, expected, rel_tol=1e-9, abs_tol=1e-6)


# -- every estimator -------------------------------------------------------------------------------


@FAST
@given(samples, st.lists(st.floats(min_value=0, max_value=100), min_size=1, max_size=8), st.sampled_from(Estimator))
def test_percentiles_lie_in_the_sample_range_and_rise_with_p(data: list[float], ps: list[float], e: Estimator) -> None:
    ordered_ps = sorted(ps)
    results = percentiles(data, ordered_ps, e)
    assert [r.percentile for r in results] == ordered_ps
    assert all(min(data) <= r.value <= max(data) for r in results)
    assert all(a.value <= b.value for a, b in itertools.pairwise(results))
    assert all(r.estimator == e.value and r.count == len(data) and r.relative_error == 0 for r in results)


def test_the_estimators_differ_on_a_small_sample_and_each_result_says_which_it_is() -> None:
    data = [float(v) for v in range(1, 11)]
    assert [percentile(data, 90, e).value for e in Estimator] == [9.0, pytest.approx(9.9), pytest.approx(9.1)]
    result = percentile(data, 90, "linear")
    assert (result.label, result.estimator, result.count, result.relative_error) == ("p90", "linear", 10, 0.0)
    assert isinstance(result, Percentile) and result.value == pytest.approx(9.1)
    assert str(percentile(data, 99.9, Estimator.NEAREST_RANK)) == "p99.9 = 10 (nearest-rank, n=10)"


def test_one_value_is_every_percentile() -> None:
    assert {percentile([0.25], p, e).value for p in (0, 50, 100) for e in Estimator} == {0.25}


@pytest.mark.parametrize(
    ("data", "p", "estimator", "message"),
    [
        ([], 50, Estimator.LINEAR, "empty sample"),
        ([1.0], -0.1, Estimator.LINEAR, "from 0 to 100"),
        ([1.0], 100.5, Estimator.LINEAR, "from 0 to 100"),
        ([1.0], math.nan, Estimator.LINEAR, "from 0 to 100"),
        ([1.0], True, Estimator.LINEAR, "from 0 to 100"),
        ([1.0, math.nan], 50, Estimator.LINEAR, "finite"),
        ([1.0, math.inf], 50, Estimator.LINEAR, "finite"),
        ([1.0], 50, "type-9", "unknown percentile estimator"),
    ],
)
def test_invalid_requests_are_refused(data: list[float], p: float, estimator: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        percentile(data, p, estimator)
