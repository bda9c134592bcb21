"""Success rate and latency per fixed window, checked against counting each window by hand."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaos_service.errors import InvalidInput
from chaos_service.probes.records import ProbeResult
from chaos_service.probes.stats.percentiles import Estimator, percentile
from chaos_service.probes.stats.windows import SuccessRate, latencies, success_rate, windows
from tests.probes.stats.factories import instants, make_result, probe_results, timeline

FAST = settings(deadline=None, max_examples=100)

widths = st.one_of(st.sampled_from([0.25, 0.5, 1.0, 3.0]), st.floats(min_value=0.05, max_value=10))
origins = st.one_of(instants(0, 20), st.floats(min_value=-5, max_value=10))


@FAST
@given(probe_results(), widths, origins, st.one_of(st.none(), st.floats(min_value=0.1, max_value=30)), st.booleans())
def test_windows_match_counting_each_window_by_hand(
    results: list[ProbeResult], width: float, origin: float, span: float | None, ok_only: bool
) -> None:
    end = None if span is None else origin + span
    got = windows(results, width=width, origin=origin, end=end, ok_only=ok_only)
    inside = [r for r in results if r.scheduled >= origin and (end is None or r.scheduled < end)]
    if not got:
        assert end is None and not inside
        return
    assert got[0].start == origin
    assert all(a.end == b.start for a, b in itertools.pairwise(got))
    assert all(math.isclose(w.end - w.start, width, rel_tol=1e-9, abs_tol=1e-9) for w in got[:-1])
    if end is not None:
        assert got[-1].end == end
    else:
        assert not got[-1].empty  # the windows run to the one holding the last result
    for w in got:
        members = [r for r in results if w.start <= r.scheduled < w.end]
        assert w.success == SuccessRate(sum(r.ok for r in members), len(members))
        assert w.empty == (not members)
        samples = sorted(r.latency for r in members if r.ok or not ok_only)
        if samples:
            rank = max(1, -(-95 * len(samples) // 100))  # ceil(0.95 n) in integers
            assert w.latency is not None and w.latency.value == samples[rank - 1]
        else:
            assert w.latency is None
    assert sum(w.success.total for w in got) == len(inside)


@FAST
@given(probe_results())
def test_the_overall_success_rate_counts_every_result(results: list[ProbeResult]) -> None:
    rate = success_rate(results)
    assert (rate.ok, rate.failed, rate.total) == (
        len([r for r in results if r.ok]),
        len([r for r in results if not r.ok]),
        len(results),
    )
    assert rate.rate == (rate.ok / rate.total if results else None)


def test_an_empty_window_is_reported_as_empty_not_as_a_rate() -> None:
    results = timeline("..x", period=1.0) + timeline(".", start=5.0)
    got = windows(results, width=2.0, origin=0.0)
    assert [(w.start, w.end) for w in got] == [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0)]
    assert [w.success.rate for w in got] == [1.0, 0.0, 1.0]
    empty = windows(results, width=1.0, origin=0.0)[3]
    assert (empty.empty, empty.success.rate, empty.latency, str(empty.success)) == (True, None, None, "no results")


def test_results_outside_origin_and_end_are_in_no_window_and_the_last_window_is_cut() -> None:
    results = timeline("xx....x", period=1.0)  # at 0..6
    got = windows(results, width=2.0, origin=1.5, end=6.0)
    assert [(w.start, w.end) for w in got] == [(1.5, 3.5), (3.5, 5.5), (5.5, 6.0)]
    assert [(w.success.ok, w.success.total) for w in got] == [(2, 2), (2, 2), (0, 0)]


def test_a_result_on_a_boundary_belongs_to_the_window_it_opens() -> None:
    got = windows([make_result(2.0, False)], width=1.0, origin=0.0)
    assert [(w.start, w.success.total) for w in got] == [(0.0, 0), (1.0, 0), (2.0, 1)]


def test_window_latency_uses_the_named_estimator_and_may_leave_out_failures() -> None:
    results = [make_result(0.1 * i, latency=0.1 * (i + 1)) for i in range(10)]
    results.append(make_result(0.95, False, latency=5.0))
    [window] = windows(results, width=1.0, origin=0.0, p=90, estimator=Estimator.LINEAR)
    assert window.latency == percentile([r.latency for r in results], 90, Estimator.LINEAR)
    [ok_window] = windows(results, width=1.0, origin=0.0, p=100, ok_only=True)
    assert ok_window.latency is not None and ok_window.latency.value == pytest.approx(1.0)
    assert latencies(results, ok_only=True) == [r.latency for r in results[:10]]
    assert str(window).startswith("[0, 1): 90.9% (10/11), p90 = ")


def test_no_results_give_no_windows_unless_an_end_is_given() -> None:
    assert windows([], width=1.0, origin=0.0) == ()
    assert [w.empty for w in windows([], width=1.0, origin=0.0, end=2.5)] == [True, True, True]
    assert str(success_rate([])) == "no results"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": 0.0, "origin": 0.0}, "width"),
        ({"width": math.inf, "origin": 0.0}, "width"),
        ({"width": 1.0, "origin": math.nan}, "origin"),
        ({"width": 1.0, "origin": 0.0, "end": 0.0}, "after their origin"),
        ({"width": 1e-9, "origin": 0.0, "end": 10.0}, "too many"),
        ({"width": 1.0, "origin": 0.0, "p": 120}, "from 0 to 100"),
        ({"width": 1.0, "origin": 0.0, "estimator": "mean"}, "unknown percentile estimator"),
    ],
)
def test_invalid_windows_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        windows(timeline("..."), **kwargs)  # type: ignore[arg-type]
