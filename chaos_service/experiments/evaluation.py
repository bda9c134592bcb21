"""Turning a run's probe results into summaries, metrics and check verdicts. Pure: no I/O.

Probe results carry raw monotonic times, as do the fault span's instants.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chaos_service.experiments.plan import Comparison, ProbePlan, SteadyStatePlan
from chaos_service.experiments.record import CheckResult, ProbeSummary
from chaos_service.probes.checkers.delivery import DeliveryReport
from chaos_service.probes.records import ProbeResult
from chaos_service.probes.stats.percentiles import percentile
from chaos_service.probes.stats.recovery import Censored, Measured, measure_recovery

LATENCY_METRICS = {"p50_latency": 50.0, "p95_latency": 95.0, "p99_latency": 99.0}


@dataclass(frozen=True)
class FaultSpan:
    """When the method's faults were in effect, on the monotonic clock (None: never applied)."""

    injected: float | None
    cleared: float | None


def probe_metric(results: Sequence[ProbeResult], metric: str) -> float | None:
    """``success_rate`` or a latency percentile (nearest-rank) over ``results``; None without results."""
    if not results:
        return None
    if metric == "success_rate":
        return sum(r.ok for r in results) / len(results)
    return percentile([r.latency for r in results], LATENCY_METRICS[metric]).value


def check(kind: str, subject: str, comparison: Comparison, observed: float | None) -> CheckResult:
    name = f"{subject}: {comparison}" if subject else str(comparison)
    if observed is None:
        return CheckResult(kind, name, False, "no data", "nothing to measure it on")
    return CheckResult(kind, name, comparison.holds(observed), _format(comparison.metric, observed))


def steady_state(
    kind: str,
    plans: Iterable[SteadyStatePlan],
    results: Mapping[str, Sequence[ProbeResult]],
    since: float,
    until: float,
) -> list[CheckResult]:
    """Each steady-state check over the results scheduled in ``[since, until)``."""
    verdicts = []
    for plan in plans:
        window = [r for r in results.get(plan.probe, ()) if since <= r.scheduled < until]
        for comparison in plan.checks:
            verdicts.append(check(kind, plan.probe, comparison, probe_metric(window, comparison.metric)))
    return verdicts


def summarize(
    plan: ProbePlan,
    results: Sequence[ProbeResult],
    *,
    span: FaultSpan,
    window_end: float,
    probers: int,
    k: int,
) -> ProbeSummary:
    ordered = sorted(results, key=lambda r: r.scheduled)
    latency = {}
    if ordered:
        samples = [r.latency for r in ordered]
        latency = {f"p{p:g}": percentile(samples, p).value for p in (50.0, 95.0, 99.0)}
    summary = ProbeSummary(
        name=plan.name,
        type=plan.type,
        attempts=len(ordered),
        ok=sum(r.ok for r in ordered),
        success_rate=(sum(r.ok for r in ordered) / len(ordered)) if ordered else None,
        latency=latency,
        resolution=plan.every / max(1, probers),
        results=list(ordered),
        recovery_text="no fault" if span.injected is None else "no failure",
    )
    if span.injected is None or not ordered:
        return summary
    recovery = measure_recovery(
        ordered,
        t_inject=span.injected,
        t_clear=span.cleared,
        window_end=window_end,
        period=plan.every,
        probers=max(1, probers),
        k=k,
    )
    if recovery.detection_latency is not None:
        summary.detection = recovery.detection_latency.seconds
    if not recovery.detected:
        return summary
    elapsed = recovery.ttr
    if isinstance(elapsed, Measured):
        summary.recovery = elapsed.seconds
        summary.recovery_text = f"{elapsed.seconds:.2f} s ± {elapsed.resolution:.2f} s"
    elif isinstance(elapsed, Censored):
        summary.recovery_text = f"> {elapsed.more_than:.1f} s (no recovery)"
    return summary


def run_metrics(
    summaries: Sequence[ProbeSummary], reports: Sequence[DeliveryReport], span: FaultSpan
) -> dict[str, Any]:
    """The SLO metrics of a run (None where there was nothing to measure)."""
    metrics: dict[str, Any] = {}
    detected = [s for s in summaries if s.detection is not None]
    censored = [s.name for s in detected if s.recovery is None]
    metrics["recovery_time"] = None if censored or not detected else max(s.recovery or 0.0 for s in detected)
    metrics["recovery_censored"] = censored
    metrics["detection_time"] = max((s.detection or 0.0 for s in detected), default=None)
    faulted = [r for s in summaries for r in s.results if span.injected is None or r.scheduled >= span.injected]
    metrics["success_rate"] = (sum(r.ok for r in faulted) / len(faulted)) if faulted else None
    if reports:
        expected = sum(report.expected for report in reports)
        metrics["event_delivery"] = (sum(report.delivered for report in reports) / expected) if expected else None
        metrics["lost_events"] = sum(report.lost for report in reports)
        metrics["duplicate_events"] = sum(report.duplicates for report in reports)
        metrics["ordering_violations"] = sum(len(report.late) + len(report.invalid_delivered) for report in reports)
        metrics["cross_user_leaks"] = sum(report.leaks for report in reports)
        metrics["invalid_runs"] = sum(len(report.invalid_delivered) for report in reports)
    return metrics


def slo_checks(slo: Iterable[Comparison], metrics: Mapping[str, Any]) -> list[CheckResult]:
    verdicts = []
    for comparison in slo:
        observed = metrics.get(comparison.metric)
        if comparison.metric == "recovery_time" and metrics.get("recovery_censored"):
            names = ", ".join(metrics["recovery_censored"])
            verdicts.append(
                CheckResult("slo", str(comparison), False, "censored", f"no recovery in the window: {names}")
            )
            continue
        if comparison.metric in ("recovery_time", "detection_time") and observed is None:
            verdicts.append(CheckResult("slo", str(comparison), True, "no failure", "no probe failed"))
            continue
        verdicts.append(check("slo", "", comparison, None if observed is None else float(observed)))
    return verdicts


def _format(metric: str, value: float) -> str:
    if metric in ("success_rate", "event_delivery"):
        return f"{value:.4f}"
    if metric.endswith(("_latency", "_time")):
        return f"{value:.3f} s"
    return f"{value:g}"
