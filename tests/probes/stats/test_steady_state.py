"""Baseline, degradation during the fault, and time back to steady state (rolling figures within a band)."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from chaos_service.errors import InvalidInput
from chaos_service.probes.records import ProbeResult
from chaos_service.probes.stats.percentiles import Estimator
from chaos_service.probes.stats.recovery import Censored, Measured
from chaos_service.probes.stats.steady_state import (
    Baseline,
    SteadyState,
    baseline,
    degradation,
    time_to_steady_state,
)
from tests.probes.stats.factories import instants, make_result, probe_results, timeline

FAST = settings(deadline=None, max_examples=100)


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(1, -(-95 * len(ordered) // 100)) - 1]  # nearest rank: ceil(0.95 n), in integers


def naive_steady(
    results: list[ProbeResult],
    base_rate: float,
    base_p95: float,
    *,
    t_clear: float,
    window_end: float,
    rolling: float,
    hold: float,
    tolerance: float,
) -> float | None:
    """Check every instant where the rolling window changes, by filtering the results again each time."""
    seen = [r for r in results if r.scheduled < window_end]
    changes = {t for r in seen for t in (r.scheduled, r.scheduled + rolling) if t_clear <= t < window_end}
    candidates = sorted({t_clear} | changes)

    def steady(t: float) -> bool:
        members = [r for r in seen if r.scheduled <= t < r.scheduled + rolling]
        if not members:
            return False
        rate = sum(r.ok for r in members) / len(members)
        latency = p95([r.latency for r in members])
        return abs(rate - base_rate) <= tolerance * base_rate and abs(latency - base_p95) <= tolerance * base_p95

    for t in candidates:
        if t + hold <= window_end and steady(t) and all(steady(u) for u in candidates if t <= u < t + hold):
            return t
    return None


@FAST
@given(
    probe_results(),
    instants(4, 30),
    instants(0, 20),
    instants(1, 60),
    st.sampled_from([0.5, 1.0, 2.0, 3.25]),
    st.sampled_from([0.0, 0.5, 1.0, 2.5, 4.0]),
    st.sampled_from([0.0, 0.1, 0.25, 0.5]),
)
def test_time_to_steady_state_matches_checking_every_instant(
    results: list[ProbeResult],
    t_inject: float,
    fault: float,
    observed: float,
    rolling: float,
    hold: float,
    tolerance: float,
) -> None:
    before = [r for r in results if r.scheduled < t_inject]
    assume(before)
    base = baseline(results, t_inject=t_inject)
    base_rate = sum(r.ok for r in before) / len(before)
    assert base.success.rate == base_rate
    assert base.latency is not None and base.latency.value == p95([r.latency for r in before])
    t_clear, window_end = t_inject + fault, t_inject + fault + observed
    got = time_to_steady_state(
        results,
        base,
        t_clear=t_clear,
        window_end=window_end,
        rolling=rolling,
        hold=hold,
        period=1.0,
        probers=2,
        tolerance=tolerance,
    )
    expected = naive_steady(
        results,
        base_rate,
        base.latency.value,
        t_clear=t_clear,
        window_end=window_end,
        rolling=rolling,
        hold=hold,
        tolerance=tolerance,
    )
    assert got.t_steady == expected
    if expected is None:
        assert got.elapsed == Censored(max(0.0, window_end - hold - t_clear), 0.5)
        assert not got.reached and not hasattr(got.elapsed, "seconds")
    else:
        assert got.elapsed == Measured(expected - t_clear, 0.5)


# -- readable cases --------------------------------------------------------------------------------

HEALTHY = timeline("." * 10)  # 0..9, 0.1 s each: the baseline
OUTAGE = timeline("x" * 10, start=10.0)  # 10..19: the fault


def steady(after: list[ProbeResult], *, hold: float = 5.0, window_end: float = 40.0) -> SteadyState:
    results = HEALTHY + OUTAGE + after
    base = baseline(results, t_inject=10.0)
    return time_to_steady_state(results, base, t_clear=20.0, window_end=window_end, rolling=3.0, hold=hold, period=1.0)


def test_steady_once_the_last_failure_leaves_the_rolling_window() -> None:
    got = steady(timeline("." * 20, start=20.0))
    # at 22.0 the window (19, 22] holds 20, 21, 22 only: all ok, at the baseline's latency
    assert (got.t_steady, got.elapsed) == (22.0, Measured(2.0, 1.0))
    assert str(got) == "back to steady state (±10% for 5 s) after 2.000 s ±1.000 s"


def test_latency_must_be_back_in_the_band_too() -> None:
    slow_then_fast = timeline("....", start=20.0, latency=0.5) + timeline("." * 16, start=24.0)
    assert steady(slow_then_fast).t_steady == 26.0  # the last slow answer (23.0) leaves at 26.0
    close_enough = timeline("." * 20, start=20.0, latency=0.109)
    assert steady(close_enough).t_steady == 22.0


def test_a_dip_during_the_hold_period_starts_it_again() -> None:
    got = steady(timeline(".....x" + "." * 14, start=20.0))  # a failure at 25.0
    assert got.t_steady == 28.0


def test_an_empty_rolling_window_is_not_steady() -> None:
    got = steady(timeline("...", start=20.0) + timeline("." * 10, start=30.0))  # nothing from 23 to 29
    assert got.t_steady == 30.0


def test_never_steady_is_censored_at_the_longest_span_checked() -> None:
    got = steady(timeline(".x" * 10, start=20.0), hold=5.0, window_end=40.0)
    assert (got.t_steady, got.elapsed, got.reached) == (None, Censored(15.0, 1.0), False)
    assert str(got) == "not back to steady state (±10% for 5 s): > 15.000 s"


def test_the_hold_period_must_fit_in_the_window() -> None:
    assert steady(timeline("." * 20, start=20.0), hold=5.0, window_end=27.0).t_steady == 22.0
    assert steady(timeline("." * 20, start=20.0), hold=5.0, window_end=26.9).t_steady is None


def test_degradation_compares_the_fault_with_the_baseline() -> None:
    fault = timeline("x.x.x.x.x.", start=10.0, latency=0.3)
    results = HEALTHY + fault
    base = baseline(results, t_inject=10.0, estimator=Estimator.LINEAR)
    got = degradation(results, base, until=20.0)
    assert (got.success.ok, got.success.total) == (5, 10)
    assert got.success_rate_drop == 0.5
    assert got.success_rate_ratio == 0.5
    assert got.latency is not None and got.latency.estimator == "linear"
    assert got.latency_increase == pytest.approx(0.2)
    assert got.latency_ratio == pytest.approx(3.0)
    assert str(got).startswith("during the fault: 50.0% (5/10), p95 = 0.3 (linear, n=10); baseline: 100.0% (10/10)")


def test_degradation_without_data_on_one_side_has_no_comparison() -> None:
    base = baseline(OUTAGE, t_inject=10.0)  # nothing before 10.0
    got = degradation(OUTAGE, base, until=20.0)
    assert (got.success_rate_drop, got.success_rate_ratio, got.latency_increase, got.latency_ratio) == (
        None,
        None,
        None,
        None,
    )
    results = [*timeline("xx"), make_result(5.0)]
    zero_rate = baseline(results, t_inject=5.0)
    assert degradation(results, zero_rate, until=6.0).success_rate_ratio is None


def test_the_baseline_may_start_later_and_use_only_successes() -> None:
    results = timeline("x.x.....", latency=0.2)
    results.append(make_result(3.5, False, latency=9.0))
    base = baseline(results, t_inject=8.0, since=2.0, p=100, ok_only=True)
    assert (base.success.ok, base.success.total) == (5, 7)
    assert base.latency is not None and base.latency.value == pytest.approx(0.2)
    assert isinstance(base, Baseline) and str(base).startswith("baseline: 71.4% (5/7), p100 = 0.2")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rolling": 0.0}, "rolling window"),
        ({"hold": -1.0}, "hold period"),
        ({"tolerance": math.nan}, "tolerance"),
        ({"t_clear": 5.0}, "t_clear"),
        ({"window_end": 20.0}, "t_clear"),
        ({"period": -1.0}, "period"),
    ],
)
def test_invalid_steady_state_requests_are_refused(kwargs: dict[str, float], message: str) -> None:
    arguments = {"t_clear": 20.0, "window_end": 40.0, "rolling": 3.0, "hold": 5.0, "period": 1.0} | kwargs
    base = baseline(HEALTHY, t_inject=10.0)
    with pytest.raises(InvalidInput, match=message):
        time_to_steady_state(HEALTHY, base, **arguments)  # type: ignore[arg-type]


def test_no_baseline_means_no_steady_state_to_return_to() -> None:
    with pytest.raises(InvalidInput, match="no baseline"):
        time_to_steady_state(
            OUTAGE,
            baseline(OUTAGE, t_inject=10.0),
            t_clear=20.0,
            window_end=30.0,
            rolling=1.0,
            hold=1.0,
            period=1.0,
        )
    with pytest.raises(InvalidInput, match="after the injection"):
        baseline(HEALTHY, t_inject=5.0, since=6.0)
    with pytest.raises(InvalidInput, match="after the injection"):
        degradation(HEALTHY, baseline(HEALTHY, t_inject=5.0), until=5.0)
