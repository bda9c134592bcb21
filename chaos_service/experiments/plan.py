"""A validated experiment, resolved against an environment: what the runner executes.

Times are seconds (floats); offsets in the method are from the start of the method.
The loader turns a YAML file into an `ExperimentPlan`, resolving variables, endpoint
names and the timeline (``at``, ``after``, pauses) into absolute offsets.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

ProbeType = Literal["http", "postgres", "redis", "llm", "reconnect", "websocket_chat"]
Operator = Literal["<", "<=", "==", "!=", ">=", ">"]

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    ">": operator.gt,
}

#: Metrics a steady-state check, a guardrail or an SLO may name.
PROBE_METRICS = ("success_rate", "p50_latency", "p95_latency", "p99_latency")
SLO_METRICS = (
    "recovery_time",  # seconds, the worst over the probes that failed; a censored one fails any bound
    "detection_time",  # seconds, the worst over the probes
    "success_rate",  # every probe's results from the first fault to the end, together
    "event_delivery",  # chat users: delivered / expected events
    "lost_events",
    "duplicate_events",
    "ordering_violations",  # chat users: late events plus runs invalid as delivered
    "cross_user_leaks",
    "invalid_runs",
)


@dataclass(frozen=True)
class Comparison:
    """``metric op value``, e.g. ``success_rate >= 0.99``; ``text`` is how the file wrote it."""

    metric: str
    op: Operator
    value: float
    text: str = ""

    def holds(self, observed: float) -> bool:
        return OPERATORS[self.op](observed, self.value)

    def __str__(self) -> str:
        return self.text or f"{self.metric} {self.op} {self.value:g}"


@dataclass(frozen=True)
class ProbePlan:
    name: str
    type: ProbeType
    endpoint: str  # the environment's endpoint name
    url: str  # resolved
    every: float
    deadline: float
    options: Mapping[str, Any] = field(default_factory=dict)  # per type: expect_status, json, users, content, …


@dataclass(frozen=True)
class SteadyStatePlan:
    """Checked over the warm-up before the first fault, and over the last ``window`` s after recovery."""

    probe: str
    checks: tuple[Comparison, ...]


@dataclass(frozen=True)
class FaultPlan:
    """One fault of the method, at an absolute offset, for a bounded duration."""

    name: str
    fault: str  # a toxic type, ``partition``, ``down``, or a process or container fault (``pause``, ``kill``, …)
    target: str  # a proxy name, or a process name of the environment
    at: float
    duration: float
    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def end(self) -> float:
        return self.at + self.duration


@dataclass(frozen=True)
class GuardrailPlan:
    """Abort the run when ``check`` holds over the last ``for_`` s of ``probe``'s results."""

    probe: str
    check: Comparison
    for_: float


@dataclass(frozen=True)
class RollbackPlan:
    """A user action run after the method in every outcome: an HTTP request."""

    name: str
    method: str
    url: str
    body: Any = None


@dataclass(frozen=True)
class Settings:
    warmup: float = 5.0  # probes run this long before the steady-state check and the first fault
    recovery_window: float = 30.0  # observation after the last fault is removed
    steady_window: float = 5.0  # the after-recovery steady-state check reads the last this-many seconds
    k: int = 3  # consecutive successes that count as recovered
    ttl_margin: float = 30.0  # each fault's ttl is its duration plus this: the engine removes it if we cannot
    exclusive: bool = False  # in a suite run side by side, nothing else runs beside this one (load tests)


@dataclass(frozen=True)
class ExperimentPlan:
    path: str
    title: str
    description: str = ""
    tags: tuple[str, ...] = ()
    catches: str | None = None  # the seeded defect this experiment is built to catch
    probes: tuple[ProbePlan, ...] = ()
    steady_state: tuple[SteadyStatePlan, ...] = ()
    method: tuple[FaultPlan, ...] = ()
    abort_when: tuple[GuardrailPlan, ...] = ()
    slo: tuple[Comparison, ...] = ()
    rollbacks: tuple[RollbackPlan, ...] = ()
    settings: Settings = field(default_factory=Settings)

    @property
    def method_end(self) -> float:
        return max((fault.end for fault in self.method), default=0.0)
