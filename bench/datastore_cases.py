"""Benchmarks 1 and 2: the datastores' own load generators, directly and through the engine."""

from __future__ import annotations

import csv
import os
import re
import shutil
import socket
import subprocess
import time

from bench.api import Api
from bench.common import Settings, alternate_measured, cpu_note, values
from bench.procs import BenchError, Engine, run_tool, spawn, stop
from bench.report import Result, Row, fmt, fmt_ratio, log, median
from chaos_service.sandbox.datastores import PostgresServer, RedisServer

HOST = "127.0.0.1"
RATIO_TARGET = 0.5
REDIS_TESTS = ("PING_INLINE", "PING_MBULK", "SET")
REDIS_CLIENTS = 50
PG_CLIENTS, PG_THREADS = 10, 2


# -- 1. redis-benchmark ---------------------------------------------------------------------------


def redis_argv(port: int | str, requests: int) -> list[str]:
    return ["redis-benchmark", "-h", HOST, "-p", str(port), "-t", "ping,set",
            "-c", str(REDIS_CLIENTS), "-n", str(requests), "-q", "--csv"]  # fmt: skip


def parse_redis_csv(text: str) -> dict[str, float]:
    """requests/s per test from ``redis-benchmark --csv`` output."""
    rates = {row[0]: float(row[1]) for row in csv.reader(text.splitlines()) if row and row[0] in REDIS_TESTS}
    if set(rates) != set(REDIS_TESTS):
        raise BenchError(f"unexpected redis-benchmark output: {text[:300]!r}")
    return rates


def redis_benchmark(port: int, requests: int) -> dict[str, float]:
    return parse_redis_csv(run_tool(redis_argv(port, requests), timeout=180))


def bench_redis(settings: Settings, result: Result) -> None:
    """`redis-benchmark -t ping,set -c 50 -n N -q --csv` against a private Redis server, directly
    and through an engine proxy without toxics: requests/s of each test (PING_INLINE, PING_MBULK,
    SET) and the proxied/direct ratio. Target: proxied ≥ 50% of direct."""
    n = settings.redis_requests
    with RedisServer() as redis, Engine() as engine, Api(engine.api_port) as api:
        proxy = api.create_proxy("redis", redis.port)
        measured = alternate_measured(
            settings.redis_rounds,
            engine.pid,
            lambda: redis_benchmark(redis.port, n),
            lambda: redis_benchmark(proxy, n),
        )
        reference = socat_reference(redis.port, max(n // 4, 10_000), settings.redis_rounds)
    directs, proxied = values(measured[0]), values(measured[1])
    for test in REDIS_TESTS:
        direct = median([run[test] for run in directs])
        through = median([run[test] for run in proxied])
        ratio = through / direct
        result.rows.append(
            Row(
                f"{test} requests/s",
                fmt(direct, 0),
                fmt(through, 0),
                fmt_ratio(ratio),
                "≥ 50%",
                ratio >= RATIO_TARGET,
            )
        )
    result.notes += [
        f"Command: `{' '.join(redis_argv('PORT', n))}`; "
        f"{settings.redis_rounds} direct and {settings.redis_rounds} proxied runs, alternated; medians",
        "Per-run requests/s (direct → proxied): "
        + "; ".join(
            f"{t}: " + ", ".join(fmt(r[t], 0) for r in directs) + " → " + ", ".join(fmt(r[t], 0) for r in proxied)
            for t in REDIS_TESTS
        ),
        cpu_note(*measured),
    ]
    if reference:
        result.notes.append(
            "Reference, not a target: the same test through `socat` (a C relay forking a process per "
            f"connection), {len(reference)} run(s) after the others: "
            + ", ".join(
                f"{t} {fmt(median([r[t] for r in reference]), 0)} req/s "
                f"({fmt_ratio(median([r[t] for r in reference]) / median([d[t] for d in directs]))} of direct)"
                for t in REDIS_TESTS
            )
        )


def socat_reference(upstream: int, requests: int, rounds: int) -> list[dict[str, float]]:
    """redis-benchmark through a socat relay, as a yardstick for any user-space relay on this machine;
    [] when socat is not installed."""
    if shutil.which("socat") is None:
        return []
    port = free_port()
    relay = spawn(["socat", f"TCP-LISTEN:{port},bind={HOST},fork,reuseaddr,backlog=512", f"TCP:{HOST}:{upstream}"],
                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_listening(port, 10)
        log("    reference: redis-benchmark through socat …")
        return [redis_benchmark(port, requests) for _ in range(rounds)]
    finally:
        stop(relay)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise BenchError(f"nothing listens on {HOST}:{port} after {timeout:.0f}s") from None
            time.sleep(0.05)


# -- 2. pgbench -----------------------------------------------------------------------------------


def pgbench(port: int, args: list[str], timeout: float) -> str:
    argv = ["pgbench", "-h", HOST, "-p", str(port), "-U", "postgres", *args, "postgres"]
    return run_tool(argv, timeout, env={**os.environ, "PGCONNECT_TIMEOUT": "10"})


def select_only_args(seconds: int) -> list[str]:
    return ["-S", "-c", str(PG_CLIENTS), "-j", str(PG_THREADS), "-T", str(seconds)]


def parse_pgbench(text: str) -> tuple[float, float]:
    """(tps without initial connection time, average latency in ms) from pgbench's report."""
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", text)
    latency = re.search(r"latency average = ([\d.]+) ms", text)
    if tps is None or latency is None:
        raise BenchError(f"unexpected pgbench output: {text[-400:]!r}")
    return float(tps.group(1)), float(latency.group(1))


def bench_pgbench(settings: Settings, result: Result) -> None:
    """`pgbench -S -c 10 -j 2 -T S` (select-only, after `pgbench -i -s 10`) against a private
    PostgreSQL server, directly and through an engine proxy without toxics: transactions/s and the
    proxied/direct ratio, plus pgbench's average latency. Target: proxied ≥ 50% of direct."""
    seconds = settings.pg_seconds
    with PostgresServer() as pg, Engine() as engine, Api(engine.api_port) as api:
        log(f"    pgbench -i -s {settings.pg_scale} …")
        pgbench(pg.port, ["-i", "-s", str(settings.pg_scale), "-q"], timeout=300)
        proxy = api.create_proxy("postgres", pg.port)

        def run(port: int) -> tuple[float, float]:
            return parse_pgbench(pgbench(port, select_only_args(seconds), timeout=seconds + 60))

        measured = alternate_measured(settings.pg_rounds, engine.pid, lambda: run(pg.port), lambda: run(proxy))
    directs, proxied = values(measured[0]), values(measured[1])
    _pgbench_rows(result, directs, proxied)
    result.notes += [
        f"Command: `pgbench -h 127.0.0.1 -p PORT -U postgres {' '.join(select_only_args(seconds))} postgres` "
        f"after `pgbench -i -s {settings.pg_scale}`; {settings.pg_rounds} direct and {settings.pg_rounds} "
        "proxied runs, alternated; medians",
        "Per-run tps (direct → proxied): "
        + ", ".join(fmt(d[0], 0) for d in directs)
        + " → "
        + ", ".join(fmt(p[0], 0) for p in proxied),
        cpu_note(*measured),
    ]


def _pgbench_rows(result: Result, directs: list[tuple[float, float]], proxied: list[tuple[float, float]]) -> None:
    tps_direct, tps_through = median([d[0] for d in directs]), median([p[0] for p in proxied])
    lat_direct, lat_through = median([d[1] for d in directs]), median([p[1] for p in proxied])
    ratio = tps_through / tps_direct
    result.rows += [
        Row(
            "transactions/s",
            fmt(tps_direct, 0),
            fmt(tps_through, 0),
            fmt_ratio(ratio),
            "≥ 50%",
            ratio >= RATIO_TARGET,
        ),
        Row(
            "average latency",
            fmt(lat_direct, 3, " ms"),
            fmt(lat_through, 3, " ms"),
            f"+{(lat_through - lat_direct) * 1000:,.0f} µs",
        ),
    ]
