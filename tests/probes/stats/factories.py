"""Probe results for the statistics tests: readable timelines and hypothesis strategies."""

from __future__ import annotations

from hypothesis import strategies as st

from chaos_service.probes.records import Outcome, ProbeResult

TICK = 0.25  # every generated time is a multiple of this, so instants coincide and tie
LATENCIES = (0.1, 0.105, 0.12, 0.2, 0.5)


def make_result(
    scheduled: float, ok: bool = True, *, probe: str = "probe", index: int = 0, latency: float = 0.1
) -> ProbeResult:
    outcome = Outcome.OK if ok else Outcome.ERROR
    return ProbeResult(probe, index, scheduled, scheduled, scheduled + latency, outcome)


def timeline(
    pattern: str, *, start: float = 0.0, period: float = 1.0, probe: str = "probe", latency: float = 0.1
) -> list[ProbeResult]:
    """One result per character, ``period`` apart from ``start``: ``.`` succeeded, ``x`` failed."""
    return [
        make_result(start + i * period, mark == ".", probe=probe, index=i, latency=latency)
        for i, mark in enumerate(pattern)
    ]


@st.composite
def probe_results(draw: st.DrawFn, min_per_probe: int = 0, max_per_probe: int = 20) -> list[ProbeResult]:
    """Results of 1-3 probes with a 1 s period and a phase of 0-3 ticks, in shuffled order.

    Two probes with the same phase tie at every instant; successes are three times as
    likely as failures, so streaks happen.
    """
    results: list[ProbeResult] = []
    attempt = st.tuples(st.sampled_from((True, True, True, False)), st.sampled_from(LATENCIES))
    for j in range(draw(st.integers(1, 3))):
        phase = draw(st.integers(0, 3))
        attempts = draw(st.lists(attempt, min_size=min_per_probe, max_size=max_per_probe))
        for i, (ok, latency) in enumerate(attempts):
            results.append(make_result((phase + 4 * i) * TICK, ok, probe=f"p{j}", index=i, latency=latency))
    return list(draw(st.permutations(results)))


def instants(low: int = 0, high: int = 90) -> st.SearchStrategy[float]:
    """Times on the tick grid (so they can coincide with results exactly)."""
    return st.integers(low, high).map(lambda n: n * TICK)
