"""Settings shared by the benchmarks and the measurement of the engine's CPU and memory."""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from bench.procs import Usage, cpu_percent, machine_percent, usage
from bench.report import alternate

T = TypeVar("T")
D = TypeVar("D")
P = TypeVar("P")
GIB = 2**30


@dataclass(frozen=True)
class Settings:
    """Sizes and repetitions of every benchmark (`FULL` or `QUICK`)."""

    redis_requests: int
    redis_rounds: int
    pg_scale: int
    pg_seconds: int
    pg_rounds: int
    bulk_bytes: int
    bulk_rounds: int
    rtt_count: int
    rtt_warmup: int
    rtt_rounds: int
    latency_trips: int
    latency_rounds: int
    bandwidth_window: float
    bandwidth_rounds: int
    churn_connections: int
    churn_calls: int
    churn_rounds: int
    sse_tokens: int
    sse_rounds: int
    sse_paced_tokens: int
    sse_latency_rounds: int
    many_tokens: int
    many_rounds: int
    many_paced_tokens: int
    ws_seconds: float
    ws_rounds: int


FULL = Settings(
    redis_requests=200_000, redis_rounds=3,
    pg_scale=10, pg_seconds=10, pg_rounds=2,
    bulk_bytes=GIB, bulk_rounds=3,
    rtt_count=20_000, rtt_warmup=2_000, rtt_rounds=5,
    latency_trips=300, latency_rounds=2,
    bandwidth_window=5.0, bandwidth_rounds=2,
    churn_connections=1000, churn_calls=200, churn_rounds=2,
    sse_tokens=50_000, sse_rounds=3, sse_paced_tokens=2_000, sse_latency_rounds=2,
    many_tokens=600, many_rounds=2, many_paced_tokens=200,
    ws_seconds=1.5, ws_rounds=2,
)  # fmt: skip

QUICK = Settings(
    redis_requests=20_000, redis_rounds=1,
    pg_scale=1, pg_seconds=3, pg_rounds=1,
    bulk_bytes=GIB // 4, bulk_rounds=1,
    rtt_count=3_000, rtt_warmup=500, rtt_rounds=1,
    latency_trips=40, latency_rounds=1,
    bandwidth_window=5.0, bandwidth_rounds=1,
    churn_connections=1000, churn_calls=60, churn_rounds=1,
    sse_tokens=20_000, sse_rounds=1, sse_paced_tokens=1_000, sse_latency_rounds=1,
    many_tokens=150, many_rounds=1, many_paced_tokens=150,
    ws_seconds=0.5, ws_rounds=1,
)  # fmt: skip


@dataclass(frozen=True)
class Measured(Generic[T]):
    """A measurement together with the engine's and the machine's resource use while it ran."""

    value: T
    before: Usage
    after: Usage

    @property
    def engine_cpu_percent(self) -> float:
        return cpu_percent(self.before, self.after)

    @property
    def machine_cpu_percent(self) -> float:
        return machine_percent(self.before, self.after)


def with_engine_usage(pid: int, run: Callable[[], T]) -> Measured[T]:
    """Run `run()` and snapshot the engine's and the machine's CPU and memory around it."""
    before = usage(pid)
    value = run()
    return Measured(value, before, usage(pid))


def alternate_measured(
    rounds: int, pid: int, direct: Callable[[], D], proxied: Callable[[], P]
) -> tuple[list[Measured[D]], list[Measured[P]]]:
    """`alternate` direct and proxied runs, each wrapped in `with_engine_usage`."""
    return alternate(rounds, lambda: with_engine_usage(pid, direct), lambda: with_engine_usage(pid, proxied))


def values(measured: Sequence[Measured[T]]) -> list[T]:
    return [m.value for m in measured]


def cpu_note(directs: Sequence[Measured[Any]], proxied: Sequence[Measured[Any]]) -> str:
    """A note on the engine's CPU use during the proxied runs and the machine's in both kinds of run."""
    engine = [m.engine_cpu_percent for m in proxied]
    machine_direct = statistics.median(m.machine_cpu_percent for m in directs)
    machine_proxied = statistics.median(m.machine_cpu_percent for m in proxied)
    return (
        f"CPU: the engine process used a median {statistics.median(engine):.0f}% of one core during the "
        f"proxied runs (max {max(engine):.0f}%); the whole machine ({os.cpu_count()} cores, shared by the "
        f"engine, the server and the client) was {machine_direct:.0f}% busy during the direct runs and "
        f"{machine_proxied:.0f}% during the proxied runs (medians)"
    )
