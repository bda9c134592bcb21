"""Statistics over probe results: pure functions, no I/O, every time on one monotonic clock.

* `percentiles`: percentiles with the estimator named (nearest-rank, exclusive, linear)
  and `LatencyHistogram` (HdrHistogram, 1 µs-1 h, ≤ 0.1% error) that merges, never averages.
* `windows`: success rate and latency percentile per fixed time window.
* `recovery`: detection latency, time to recover (first of K consecutive successes),
  outage, censoring ("> W s") and summaries over trials.
* `steady_state`: degradation against the pre-fault baseline and time to steady state.
"""

from chaos_service.probes.stats.percentiles import (
    HDRHISTOGRAM,
    Estimator,
    HistogramSummary,
    LatencyHistogram,
    Percentile,
    percentile,
    percentiles,
)
from chaos_service.probes.stats.recovery import (
    Censored,
    Elapsed,
    Measured,
    Recovery,
    RecoverySummary,
    first_success_streak,
    measure_recovery,
    resolution,
    scheduled_order,
    summarize_recoveries,
)
from chaos_service.probes.stats.steady_state import (
    Baseline,
    Degradation,
    SteadyState,
    baseline,
    degradation,
    time_to_steady_state,
)
from chaos_service.probes.stats.windows import MAX_WINDOWS, SuccessRate, Window, latencies, success_rate, windows

__all__ = [
    "HDRHISTOGRAM",
    "MAX_WINDOWS",
    "Baseline",
    "Censored",
    "Degradation",
    "Elapsed",
    "Estimator",
    "HistogramSummary",
    "LatencyHistogram",
    "Measured",
    "Percentile",
    "Recovery",
    "RecoverySummary",
    "SteadyState",
    "SuccessRate",
    "Window",
    "baseline",
    "degradation",
    "first_success_streak",
    "latencies",
    "measure_recovery",
    "percentile",
    "percentiles",
    "resolution",
    "scheduled_order",
    "success_rate",
    "summarize_recoveries",
    "time_to_steady_state",
    "windows",
]
