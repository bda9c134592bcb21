"""What one experiment run produced: the journal's content, and the input of every report.

Times named ``*_at`` are seconds from the run's start on the monotonic clock; ``started``
and ``ended`` are wall-clock ISO-8601 UTC strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from chaos_service.probes.records import ProbeResult


class RunOutcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"  # an SLO or the after-recovery steady state did not hold
    ABORTED = "aborted"  # a guardrail tripped, or the run was interrupted (Ctrl-C, SIGTERM, halt)
    PRECONDITION_FAILED = "precondition_failed"  # the steady state did not hold before the first fault
    ERROR = "error"  # the run itself could not proceed

    @property
    def exit_code(self) -> int:
        return {"passed": 0, "failed": 1, "aborted": 3, "precondition_failed": 4, "error": 5}[self.value]


@dataclass
class FaultWindow:
    name: str
    fault: str
    target: str
    planned_at: float
    duration: float
    ttl: float
    applied_at: float | None = None
    removed_at: float | None = None
    evidence: str | None = None  # how the fault was seen to take effect (engine counters, a canary)
    error: str | None = None


@dataclass
class ProbeSummary:
    name: str
    type: str
    attempts: int
    ok: int
    success_rate: float | None
    latency: dict[str, float] = field(default_factory=dict)  # "p50", "p95", "p99" in seconds
    estimator: str = "nearest-rank"
    detection: float | None = None  # seconds from the first fault to the first failure
    recovery: float | None = None  # seconds from the last fault's removal; None if censored or never failed
    recovery_text: str = ""  # "0.40 s ± 0.10 s", "> 30 s" (censored) or "no failure"
    resolution: float | None = None
    results: list[ProbeResult] = field(default_factory=list)  # for the timeline chart


@dataclass
class CheckResult:
    """One steady-state check, SLO or guardrail, with what was observed."""

    kind: str  # "steady_state_before", "steady_state_after", "slo", "guardrail"
    name: str  # e.g. "chat: success_rate >= 0.99"
    passed: bool
    observed: str  # the observed value, formatted, or why there is none
    message: str = ""


@dataclass
class RunRecord:
    run_id: str
    title: str
    path: str
    tags: list[str]
    started: str
    ended: str = ""
    duration: float = 0.0
    outcome: RunOutcome = RunOutcome.ERROR
    reason: str = ""
    dry_run: bool = False
    catches: str | None = None
    faults: list[FaultWindow] = field(default_factory=list)
    probes: list[ProbeSummary] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)  # delivery, leaks, ordering, … by name
    environment: dict[str, Any] = field(default_factory=dict)  # as used; secrets masked by the writers
    rollbacks: list[dict[str, Any]] = field(default_factory=list)
    t0: float = 0.0  # the run's start on the monotonic clock: a result's offset is ``scheduled - t0``
