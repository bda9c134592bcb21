"""Benchmarks 3 and 4: raw TCP throughput and round-trip latency, directly and through the engine."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from bench.api import Api
from bench.common import Measured, Settings, alternate_measured, cpu_note, values
from bench.procs import (
    BenchError,
    Engine,
    reset_peak_rss,
    result_of,
    run_worker,
    spawn,
    start_server,
    stop,
    usage,
    worker_argv,
)
from bench.report import Result, Row, alternate, fmt, fmt_ratio, log, median, percentile

ALL_CPUS = set(range(os.cpu_count() or 1))
THROUGHPUT_TARGET_GBPS = 1.0
RSS_TARGET_MB = 64.0
ADDED_P50_TARGET_US = 100.0
TRANSFER_TIMEOUT = 180.0


@contextlib.contextmanager
def proxy_to(api: Api | None, name: str, port: int, toxics: Sequence[dict[str, Any]] = ()) -> Iterator[int]:
    """The port to connect to for `port`: itself (direct), or that of a temporary engine proxy
    (created with `toxics`, deleted on exit) when `api` is given."""
    if api is None:
        yield port
        return
    listen = api.create_proxy(name, port)
    try:
        for toxic in toxics:
            api.add_toxic(name, toxic)
        yield listen
    finally:
        api.delete_proxy(name)


# -- 3. bulk transfer -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Transfer:
    size: int
    seconds: float

    @property
    def gbps(self) -> float:
        return self.size / self.seconds / 1e9


def transfer(size: int, api: Api | None, name: str) -> Transfer:
    """Send `size` bytes from a sender process to a sink process (through a proxy if `api`)."""
    sink, port = start_server("sink", TRANSFER_TIMEOUT)
    try:
        with proxy_to(api, name, port) as target:
            sender = spawn(worker_argv("send", "--port", target, "--bytes", size, "--max-seconds", TRANSFER_TIMEOUT))
            result_of(sender, TRANSFER_TIMEOUT + 10)
            got = result_of(sink, 30)
    finally:
        stop(sink)
    if got["bytes"] != size:
        raise BenchError(f"sink received {got['bytes']} of {size} bytes")
    return Transfer(size, got["last"] - got["first"])


def rss_growth_mb(m: Measured[Transfer]) -> float:
    """Engine peak RSS growth during a run: VmHWM after it - VmRSS before it, in MB (10⁶ B)."""
    return (m.after.hwm_kib - m.before.rss_kib) * 1024 / 1e6


def bench_bulk(settings: Settings, result: Result) -> None:
    """A 1 GiB one-way transfer on one connection, from a sender process (`sendall` of 1 MiB buffers)
    to a receiver process (`recv_into` a 1 MiB bytearray), directly and through an engine proxy
    without toxics. Throughput is bytes / (last byte received - first byte received) at the receiver,
    in GB/s (10⁹ B/s). Engine memory: peak RSS growth = VmHWM after the transfer - VmRSS before it
    (from /proc/PID/status; VmHWM is reset before each proxied run via /proc/PID/clear_refs).
    Targets: ≥ 1 GB/s through the engine, RSS growth ≤ 64 MB."""
    size = settings.bulk_bytes
    resets: list[bool] = []
    with Engine() as engine, Api(engine.api_port) as api:
        idle_rss = usage(engine.pid).rss_kib

        def proxied() -> Transfer:
            resets.append(reset_peak_rss(engine.pid))
            return transfer(size, api, f"bulk{len(resets)}")

        dm, pm = alternate_measured(settings.bulk_rounds, engine.pid, lambda: transfer(size, None, "direct"), proxied)
    direct = median([m.value.gbps for m in dm])
    through = median([m.value.gbps for m in pm])
    growth = max(rss_growth_mb(m) for m in pm)
    result.rows += [
        Row(f"throughput ({size / 2**30:g} GiB)", fmt(direct, 2, " GB/s"), fmt(through, 2, " GB/s"),
            fmt_ratio(through / direct), "≥ 1 GB/s through the engine", through >= THROUGHPUT_TARGET_GBPS),
        Row("engine peak RSS growth (max over runs)", "—", fmt(growth, 1, " MB"), "—", "≤ 64 MB",
            growth <= RSS_TARGET_MB),
    ]  # fmt: skip
    result.notes += [
        "Per-run GB/s (direct → proxied): " + ", ".join(fmt(m.value.gbps, 2) for m in dm) + " → "
        + ", ".join(fmt(m.value.gbps, 2) for m in pm),
        f"Engine VmRSS when idle: {idle_rss / 1024:.1f} MiB; per proxied run VmRSS before → VmHWM after: "
        + ", ".join(f"{m.before.rss_kib / 1024:.1f} → {m.after.hwm_kib / 1024:.1f} MiB" for m in pm)
        + ("" if all(resets) else " (VmHWM could not be reset: it includes earlier peaks)"),
        cpu_note(dm, pm),
    ]  # fmt: skip


# -- 4. round-trip latency ------------------------------------------------------------------------


def round_trips(port: int, count: int, warmup: int, cpu: int | None = None) -> list[float]:
    """Round-trip times (µs) of a 16-byte ping-pong client process against `port` (pinned to `cpu`)."""
    pin = [] if cpu is None else ["--cpu", cpu]
    result = run_worker("pingpong", "--port", port, "--count", count, "--warmup", warmup, "--max-seconds", 120,
                        *pin, timeout=150)  # fmt: skip
    samples: list[float] = result["rtt_us"]
    return samples


@contextlib.contextmanager
def pinned(pids: Sequence[int], cpus: set[int]) -> Iterator[None]:
    """Restrict the (main threads of the) processes `pids` to `cpus`, and restore all CPUs after."""
    for pid in pids:
        os.sched_setaffinity(pid, cpus)
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(pid, ALL_CPUS)


def bench_rtt(settings: Settings, result: Result) -> None:
    """Round-trip latency of a 16-byte message: a ping-pong client process (TCP_NODELAY, 2,000
    warm-up round trips, then 20,000 timed ones) against an echo server process, directly and
    through an engine proxy without toxics. Reports p50/p90/p99 of each (median over runs) and the
    added latency (proxied - direct). Target: added p50 ≤ 100 µs. A second series pins the client,
    the echo server and the engine to CPU 0: on this VM a wake-up across CPUs costs tens of µs, so
    where the scheduler places the processes dominates small round trips; on one CPU the difference
    is the engine's own cost (two extra hops: four socket operations and two context switches)."""
    count, warmup, rounds = settings.rtt_count, settings.rtt_warmup, settings.rtt_rounds
    echo, port = start_server("echo", 900)
    try:
        with Engine() as engine, Api(engine.api_port) as api:
            proxy = api.create_proxy("echo", port)
            dm, pm = alternate_measured(rounds, engine.pid, lambda: round_trips(port, count, warmup),
                                        lambda: round_trips(proxy, count, warmup))  # fmt: skip
            log("    the same with the client, the echo server and the engine on CPU 0 …")
            with pinned([echo.pid, engine.pid], {0}):
                one_cpu = alternate(rounds, lambda: round_trips(port, count, warmup, 0),
                                    lambda: round_trips(proxy, count, warmup, 0))  # fmt: skip
    finally:
        stop(echo)
    directs, proxied = values(dm), values(pm)
    for pct in (50, 90, 99):
        target, check = ("≤ +100 µs", True) if pct == 50 else ("", False)
        result.rows.append(_rtt_row(f"p{pct} round trip", directs, proxied, pct, target, check))
    for pct in (50, 99):
        result.rows.append(_rtt_row(f"p{pct} round trip, all on CPU 0", *one_cpu, pct, "", False))
    result.notes += [
        f"{count:,} timed round trips per run after {warmup:,} warm-up ones; {rounds} direct and {rounds} "
        "proxied runs, alternated, in each series; medians of the per-run percentiles",
        "Per-run p50 (direct → proxied), scheduler's placement: " + _p50s(directs, proxied)
        + "; all on CPU 0: " + _p50s(*one_cpu),
        cpu_note(dm, pm),
    ]  # fmt: skip


def _rtt_row(
    metric: str, directs: list[list[float]], proxied: list[list[float]], pct: int, target: str, check: bool
) -> Row:
    direct = median([percentile(run, pct) for run in directs])
    through = median([percentile(run, pct) for run in proxied])
    added = through - direct
    passed = added <= ADDED_P50_TARGET_US if check else None
    return Row(metric, fmt(direct, 1, " µs"), fmt(through, 1, " µs"), f"{added:+,.1f} µs", target, passed)


def _p50s(directs: list[list[float]], proxied: list[list[float]]) -> str:
    def p50s(runs: list[list[float]]) -> str:
        return ", ".join(fmt(percentile(run, 50), 1) for run in runs)

    return f"{p50s(directs)} → {p50s(proxied)} µs"
