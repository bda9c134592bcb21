"""What the probe kinds share: a stopwatch, the latency check, percentiles and failures.

Every time a probe records is in seconds on `time.monotonic`, measured from the start
of its attempt, so the details of one attempt read as a timeline (``connect_s``,
``query_s``, ``ttft_s``, …) and line up with the attempt's ``started`` in its
`ProbeResult`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

from chaos_service.errors import InvalidInput
from chaos_service.probes.records import Observation


class _Unchecked:
    """The type of `UNCHECKED`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNCHECKED"


#: "No expected value": the answer's value is recorded but not compared (``None`` is a value).
UNCHECKED: Final = _Unchecked()


class ProbeFailure(Exception):
    """The target answered with a failure (an error status, a close code): the attempt is an ERROR."""


class Stopwatch:
    """Seconds since the attempt started, on the monotonic clock."""

    __slots__ = ("started",)

    def __init__(self) -> None:
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def nearest_rank(values: Sequence[float], percent: float) -> float:
    """The nearest-rank percentile (Hyndman-Fan type 1): the smallest value with ``percent`` % at or below it.

    Raises:
        ValueError: ``values`` is empty or ``percent`` is outside (0, 100].
    """
    if not values:
        raise ValueError("no values")
    if not 0 < percent <= 100:
        raise ValueError(f"a percentile must be in (0, 100], not {percent:g}")
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


def too_slow(elapsed: float, limit: float | None, what: str = "latency") -> str | None:
    """Why ``elapsed`` fails a latency threshold (``None``: no threshold, or within it)."""
    if limit is None or elapsed <= limit:
        return None
    return f"{what} {elapsed * 1000:.1f} ms over the {limit * 1000:.1f} ms threshold"


def verdict(reasons: Sequence[str | None], details: Mapping[str, Any]) -> Observation:
    """An observation that is valid when no check gave a reason, and otherwise says every reason."""
    failed = [reason for reason in reasons if reason]
    return Observation(valid=not failed, reason="; ".join(failed) or None, details=dict(details))


def positive(value: float | None, what: str) -> None:
    """Check an optional duration option: ``None`` or > 0 seconds.

    Raises:
        InvalidInput: it is zero or negative.
    """
    if value is not None and not value > 0:
        raise InvalidInput(f"{what} must be > 0 s, not {value:g}")
