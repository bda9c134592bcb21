"""Detection, recovery (first of K consecutive successes), censoring and summaries over trials."""

from __future__ import annotations

import math
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaos_service.errors import InvalidInput
from chaos_service.probes.records import ProbeResult
from chaos_service.probes.stats.recovery import (
    Censored,
    Measured,
    Recovery,
    first_success_streak,
    measure_recovery,
    scheduled_order,
    summarize_recoveries,
)
from tests.probes.stats.factories import instants, probe_results, timeline

FAST = settings(deadline=None, max_examples=100)


def naive_recovery(
    results: list[ProbeResult], t_inject: float, t_clear: float | None, window_end: float, k: int
) -> tuple[float | None, float | None]:
    """(t_first_fail, t_recovered) by a plain scan: at one instant successes come first, so failures break streaks."""
    seen = sorted(
        (r for r in results if r.scheduled < window_end),
        key=lambda r: (r.scheduled, 0 if r.ok else 1, r.probe, r.index),
    )
    failures = [r.scheduled for r in seen if r.scheduled >= t_inject and not r.ok]
    t_first_fail = failures[0] if failures else None
    if t_clear is not None:
        since = t_clear
    elif t_first_fail is not None:
        since = t_first_fail
    else:
        since = t_inject
    for i, first in enumerate(seen):
        streak = seen[i : i + k]
        if first.scheduled >= since and len(streak) == k and all(r.ok for r in streak):
            return t_first_fail, first.scheduled
    return t_first_fail, None


@st.composite
def trials(draw: st.DrawFn) -> tuple[list[ProbeResult], float, float | None, float, int]:
    results = draw(probe_results(min_per_probe=6, max_per_probe=18))
    t_inject = draw(instants(0, 24))
    cleared = draw(st.booleans())
    t_clear = t_inject + draw(instants(0, 24)) if cleared else None
    window_end = draw(instants(0, 60)) + (t_inject if t_clear is None else t_clear)
    return results, t_inject, t_clear, window_end, draw(st.integers(1, 5))


@FAST
@given(trials())
def test_recovery_matches_a_naive_scan(trial: tuple[list[ProbeResult], float, float | None, float, int]) -> None:
    results, t_inject, t_clear, window_end, k = trial
    got = measure_recovery(results, t_inject=t_inject, t_clear=t_clear, window_end=window_end, period=1.0, k=k)
    assert (got.t_first_fail, got.t_recovered) == naive_recovery(results, t_inject, t_clear, window_end, k)


@FAST
@given(trials())
def test_the_figures_follow_from_the_anchors_and_censoring_never_gives_a_number(
    trial: tuple[list[ProbeResult], float, float | None, float, int],
) -> None:
    results, t_inject, t_clear, window_end, k = trial
    got = measure_recovery(
        results, t_inject=t_inject, t_clear=t_clear, window_end=window_end, period=1.0, probers=4, k=k
    )
    anchor = t_inject if t_clear is None else t_clear
    assert got.ttr.resolution == 0.25
    if got.t_first_fail is None:
        assert got.detection_latency is None and got.outage is None and not got.detected
    else:
        assert got.detection_latency == Measured(got.t_first_fail - t_inject, 0.25)
    if got.t_recovered is None:
        assert got.ttr == Censored(window_end - anchor, 0.25)
        assert isinstance(got.ttr_after_inject, Censored)
        assert not hasattr(got.ttr, "seconds")
        with pytest.raises(TypeError):
            float(got.ttr)  # type: ignore[arg-type]
        assert str(got.ttr).startswith("> ")
    else:
        assert got.ttr == Measured(got.t_recovered - anchor, 0.25)
        assert got.ttr.seconds >= 0
        assert any(r.scheduled == got.t_recovered and r.ok for r in results)
    if got.outage is not None and not got.outage.censored:
        assert got.outage.seconds >= 0
    assert (got.ttr_after_clear is None) == (t_clear is None)


elapsed = st.one_of(
    st.builds(Measured, st.floats(min_value=0, max_value=100), st.sampled_from([0.25, 0.5, 1.0])),
    st.builds(Censored, st.floats(min_value=0, max_value=100), st.sampled_from([0.25, 0.5, 1.0])),
)


@FAST
@given(st.lists(elapsed, max_size=30))
def test_a_summary_keeps_censored_trials_out_of_every_number(times: list[Measured | Censored]) -> None:
    summary = summarize_recoveries(times)
    measured = [t.seconds for t in times if isinstance(t, Measured)]
    assert summary.values == tuple(measured)
    assert summary.censored == tuple(t for t in times if isinstance(t, Censored))
    assert (summary.trials, summary.censored_count) == (len(times), len(times) - len(measured))
    assert summary.median == (statistics.median(measured) if measured else None)
    assert summary.max == (max(measured) if measured else None)
    assert summary.resolution == max((t.resolution for t in times), default=0.0)
    assert "p99" not in str(summary)


# -- readable cases --------------------------------------------------------------------------------


def measure(results: list[ProbeResult], **kwargs: float | None) -> Recovery:
    arguments: dict[str, float | None] = {"t_inject": 2.0, "t_clear": 6.0, "window_end": 20.0, "period": 1.0}
    arguments.update(kwargs)
    return measure_recovery(results, **arguments)  # type: ignore[arg-type]


def test_a_typical_outage() -> None:
    #          0123456789...
    got = measure(timeline("...xxxxxx......"))
    assert (got.t_first_fail, got.t_recovered) == (3.0, 9.0)
    assert got.detection_latency == Measured(1.0, 1.0)
    assert got.ttr_after_clear == Measured(3.0, 1.0)
    assert got.ttr_after_inject == Measured(7.0, 1.0)
    assert got.outage == Measured(6.0, 1.0)
    assert (
        str(got) == "detected after 1.000 s ±1.000 s; recovered 3.000 s ±1.000 s after clear (outage 6.000 s ±1.000 s)"
    )


def test_no_failure_means_not_detected_and_recovered_at_the_clear() -> None:
    got = measure(timeline("." * 15))
    assert (got.detected, got.detection_latency, got.outage) == (False, None, None)
    assert got.ttr == Measured(0.0, 1.0)
    assert str(got).startswith("not detected; recovered 0.000 s")


def test_a_failure_before_the_injection_is_ignored() -> None:
    got = measure(timeline("x.....x......."))
    assert got.t_first_fail == 6.0


def test_recovery_exactly_at_t_clear_counts() -> None:
    got = measure(timeline("..xxxx........"))  # the first success after the fault is at 6.0 = t_clear
    assert got.t_recovered == 6.0
    assert got.ttr_after_clear == Measured(0.0, 1.0)


def test_a_streak_that_starts_before_the_clear_is_not_a_recovery() -> None:
    got = measure(timeline("..xx.....x....."), k=3)  # 4, 5 are before the clear: 6, 7, 8 is the streak
    assert got.t_recovered == 6.0
    assert measure(timeline("..xx.x.x.x.x..."), k=3).t_recovered == 12.0


def test_k_larger_than_the_remaining_results_is_censored() -> None:
    got = measure(timeline("..xxxx..", period=1.0), k=3, window_end=20.0)  # only 6 and 7 after the clear
    assert got.t_recovered is None and not got.recovered
    assert got.ttr == Censored(14.0, 1.0)
    assert got.outage == Censored(18.0, 1.0)  # from the first failure at 2.0
    assert str(got.ttr) == "> 14.000 s"
    assert str(got).endswith("not recovered within the window: TTR > 14.000 s after clear")


def test_results_at_or_after_the_window_end_are_not_read() -> None:
    results = timeline("..xxxxx.........")
    assert measure(results, window_end=9.0).t_recovered is None  # 7 and 8 only: the 9.0 result is outside
    assert measure(results, window_end=9.5).t_recovered == 7.0


def test_a_never_cleared_fault_recovers_after_its_first_failure_and_counts_from_the_injection() -> None:
    # failover: the fault bites only at 5.0; the successes at 2-4 are before it and do not count
    got = measure(timeline(".....xxx......"), t_clear=None)
    assert got.t_first_fail == 5.0
    assert got.t_recovered == 8.0
    assert got.ttr == got.ttr_after_inject == Measured(6.0, 1.0)
    assert got.ttr_after_clear is None
    assert str(got).endswith("after injection (outage 3.000 s ±1.000 s)")
    untouched = measure(timeline("." * 10), t_clear=None)
    assert (untouched.detected, untouched.t_recovered) == (False, 2.0)


def test_ties_across_phase_shifted_probes_never_put_a_failed_instant_in_a_streak() -> None:
    a = timeline("..xxxx.......", probe="a")
    b = timeline("..xxxxx......", probe="b")  # b still fails at 6.0, when a succeeds
    got = measure(a + b, probers=2)
    assert got.t_recovered == 7.0
    assert got.resolution == 0.5
    order = scheduled_order(a + b)
    at_six = [(r.probe, r.ok) for r in order if r.scheduled == 6.0]
    assert at_six == [("a", True), ("b", False)]


def test_phase_shifted_probes_resolve_finer_than_one_period() -> None:
    a = timeline("...xxxx.....", probe="a")
    b = timeline("...xxx......", probe="b", start=0.5)  # b at 0.5, 1.5, ...: fails to 5.5
    got = measure(a + b, probers=2, t_clear=6.0, k=3)
    assert got.t_recovered == 6.5  # b at 6.5, a at 7.0, b at 7.5
    assert str(got.ttr) == "0.500 s ±0.500 s"


def test_first_success_streak_on_its_own() -> None:
    ordered = scheduled_order(timeline("x..x...x"))
    assert first_success_streak(ordered, since=0.0, k=2) == 1.0
    assert first_success_streak(ordered, since=2.0, k=3) == 4.0
    assert first_success_streak(ordered, since=0.0, k=4) is None
    with pytest.raises(InvalidInput, match="K consecutive"):
        first_success_streak(ordered, since=0.0, k=0)


def test_a_summary_of_trials_reports_every_value_median_max_and_censored() -> None:
    times: list[Measured | Censored] = [
        Measured(2.0, 0.5),
        Measured(4.0, 0.25),
        Censored(30.0, 0.5),
        Measured(3.0, 0.5),
        Measured(9.0, 0.5),
    ]
    summary = summarize_recoveries(times)
    assert summary.values == (2.0, 4.0, 3.0, 9.0)
    assert (summary.median, summary.max, summary.censored_count, summary.trials) == (3.5, 9.0, 1, 5)
    assert summary.resolution == 0.5
    assert str(summary) == (
        "5 trials; median 3.500 s, max 9.000 s over 4 recovered (±0.500 s); 1 censored (> 30.000 s)"
    )
    all_censored = summarize_recoveries([Censored(30.0, 1.0)] * 3)
    assert (all_censored.median, all_censored.max, str(all_censored)) == (
        None,
        None,
        "3 trials; 3 censored (> 30.000 s, > 30.000 s, > 30.000 s)",
    )
    with pytest.raises(InvalidInput, match="Measured or Censored"):
        summarize_recoveries([3.0])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"t_clear": 1.0}, "before it is injected"),
        ({"window_end": 5.0}, "cannot end"),
        ({"k": 0}, "K consecutive"),
        ({"period": 0.0}, "period"),
        ({"probers": 0}, "phase-shifted"),
        ({"t_inject": math.nan}, "finite"),
    ],
)
def test_invalid_anchors_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        measure(timeline("...."), **kwargs)
