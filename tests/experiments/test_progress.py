"""A running experiment's status: recent probe success, active faults, time."""

from __future__ import annotations

from chaos_service.experiments.progress import RECENT, ProbeTally, run_status
from chaos_service.probes.records import Outcome, ProbeResult


def result(probe: str, scheduled: float, outcome: Outcome = Outcome.OK) -> ProbeResult:
    return ProbeResult(probe, 0, scheduled, scheduled, scheduled + 0.01, outcome)


def test_probe_success_counts_only_the_recent_attempts_whatever_order_they_finished_in() -> None:
    now = 100.0
    chat = [result("chat", now - RECENT - 1), result("chat", now - 1, Outcome.ERROR), result("chat", now - 2)]
    chat.append(result("chat", now - RECENT - 3, Outcome.TIMEOUT))  # slow: finished after newer ones
    chat.append(result("chat", now - 0.5))
    status = run_status("method", ["partition"], {"chat": chat, "health": []}, now, t0=90.0, t_end=115.0)
    assert status.probes == (ProbeTally("chat", 2, 3), ProbeTally("health", 0, 0))
    assert (status.elapsed, status.planned, status.remaining) == (10.0, 25.0, 15.0)
    assert status.fraction == 0.4
    assert status.describe() == (
        f"method: faults partition; probes ok (last {RECENT:g} s) chat 2/3, health 0/0; 10/25 s, 15 s left"
    )


def test_a_run_that_has_not_started_shows_nothing_yet() -> None:
    status = run_status("starting", [], {"chat": [result("chat", 1.0)]}, 50.0, t0=0.0, t_end=0.0)
    assert (status.probes, status.elapsed, status.remaining, status.fraction) == ((), 0.0, 0.0, 0.0)
    assert status.describe_faults() == "none" and status.describe_probes() == "-"


def test_time_past_the_plan_shows_nothing_left() -> None:
    status = run_status("recovery", [], {}, 130.0, t0=100.0, t_end=125.0)
    assert (status.remaining, status.fraction) == (0.0, 1.0)
