"""What one probe attempt produced, on the process's monotonic clock (`time.monotonic`, seconds)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    OK = "ok"  # answered, and the answer passed its checks
    INVALID = "invalid"  # answered, but wrong: a check failed (a bad value, a broken event sequence, too slow)
    ERROR = "error"  # failed: refused, reset, an error status, an exception
    TIMEOUT = "timeout"  # no answer by the deadline: counted as failed at the deadline


@dataclass(frozen=True, slots=True)
class Observation:
    """What a probe returns from one attempt that got an answer; an exception means `Outcome.ERROR`."""

    valid: bool = True
    reason: str | None = None  # why the answer is invalid
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One attempt. ``scheduled`` is when it was due: open-loop results are attributed to it."""

    probe: str
    index: int
    scheduled: float
    started: float
    finished: float
    outcome: Outcome
    error: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK

    @property
    def latency(self) -> float:
        """From the scheduled start to the end: a probe that started late counts its wait too."""
        return self.finished - self.scheduled

    @property
    def lag(self) -> float:
        """How late the attempt started (scheduling lag)."""
        return self.started - self.scheduled
