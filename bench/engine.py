"""Benchmark suite of ``chaos-service engine``: ``python -m bench.engine [--only …] [--quick] [--write PATH]``.

Runs each benchmark directly and through a fresh engine (alternating, medians), prints progress on
stderr and the Markdown report on stdout, and (re)writes the report to ``--write PATH``. Exit
status: 0 when every selected benchmark ran (whatever its verdict; ``--strict``: 1 if any missed
its target), 2 when one could not run.
"""

from __future__ import annotations

import argparse
import inspect
import re
import shlex
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from bench.common import FULL, QUICK, Settings
from bench.datastore_cases import bench_pgbench, bench_redis
from bench.network_cases import bench_bulk, bench_rtt
from bench.probe_cases import bench_probe_users
from bench.procs import ROOT, machine_cpu, raise_open_file_limit, stop_all
from bench.recovery_cases import bench_recovery
from bench.report import Result, load_average, log, render, verdict
from bench.sandbox_cases import bench_chat_sessions
from bench.stream_cases import bench_sse_many, bench_sse_one, bench_ws_echo
from bench.toxic_cases import bench_bandwidth_toxic, bench_churn, bench_latency_toxic


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    run: Callable[[Settings, Result], None]


BENCHMARKS = (
    Benchmark("redis", "redis-benchmark PING/SET, 50 clients, no toxics", bench_redis),
    Benchmark("pgbench", "pgbench select-only, 10 clients, no toxics", bench_pgbench),
    Benchmark("bulk", "1 GiB bulk transfer, no toxics", bench_bulk),
    Benchmark("rtt", "Added round-trip latency, no toxics", bench_rtt),
    Benchmark("latency", "100 ms latency toxic accuracy", bench_latency_toxic),
    Benchmark("bandwidth", "1000 KB/s bandwidth toxic accuracy", bench_bandwidth_toxic),
    Benchmark("churn", "Toxic churn with 1,000 open connections", bench_churn),
    Benchmark("sse_one", "One LLM event stream (SSE) through an http proxy, no toxics", bench_sse_one),
    Benchmark("sse_many", "200 concurrent LLM event streams through one http proxy, no toxics", bench_sse_many),
    Benchmark("ws_echo", "WebSocket echo through a websocket proxy, no toxics", bench_ws_echo),
    Benchmark(
        "chat_sessions", "1,000 concurrent chat sessions, each doing an agent run (sandbox)", bench_chat_sessions
    ),
    Benchmark(
        "probe_users", "1,000 chat virtual users, open-loop probes with every checker on (sandbox)", bench_probe_users
    ),
    Benchmark("recovery", "Recovery-time error against ground truth, 20 trials", bench_recovery),
)
NAMES = [b.name for b in BENCHMARKS]
BACKGROUND_SAMPLE = 1.0  # seconds


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.engine",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--only", metavar="NAME[,NAME]", help=f"run only these benchmarks: {', '.join(NAMES)}")
    parser.add_argument("--quick", action="store_true", help="a shorter smoke run (fewer, smaller rounds)")
    parser.add_argument("--write", metavar="PATH", type=Path, help="(re)write the Markdown report to PATH")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a benchmark misses its target")
    args = parser.parse_args(argv)
    args.selected = select(parser, args.only)
    return args


def select(parser: argparse.ArgumentParser, only: str | None) -> list[Benchmark]:
    if not only:
        return list(BENCHMARKS)
    wanted = [name.strip() for name in only.split(",") if name.strip()]
    unknown = sorted(set(wanted) - set(NAMES))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    return [b for b in BENCHMARKS if b.name in wanted]


def description(benchmark: Benchmark) -> str:
    """The benchmark function's docstring, as one paragraph."""
    return " ".join((inspect.getdoc(benchmark.run) or "").split())


def run_one(benchmark: Benchmark, settings: Settings) -> Result:
    """Run one benchmark; an exception becomes the result's error (Ctrl-C still stops the suite)."""
    result = Result(benchmark.name, benchmark.title, description(benchmark))
    background = background_cpu()
    result.notes.append(
        f"Background load: in the {BACKGROUND_SAMPLE:g} s before this benchmark, with none of its processes "
        f"running, the machine was {background:.0f}% busy (other users' work shares these cores)"
    )
    log(f"    background CPU before it: {background:.0f}% of the machine")
    started = time.monotonic()
    try:
        benchmark.run(settings, result)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        stop_all()  # nothing a benchmark started outlives it
        result.seconds = time.monotonic() - started
    return result


def background_cpu() -> float:
    """How busy the machine is (percent of all cores) over BACKGROUND_SAMPLE s while we do nothing."""
    before = machine_cpu()
    time.sleep(BACKGROUND_SAMPLE)
    after = machine_cpu()
    total = after[1] - before[1]
    return 100 * (after[0] - before[0]) / total if total > 0 else 0.0


def progress(result: Result) -> None:
    log(f"    → {result.verdict} in {result.seconds:.0f} s")
    if result.error:
        log(f"      error: {result.error}")
    for row in result.rows:
        log(
            f"      {row.metric}: direct {row.direct} | engine {row.proxied} | {row.comparison}"
            + (f" | target {row.target}: {verdict(row.passed)}" if row.target else "")
        )


def command_line(argv: list[str]) -> str:
    """The command that produced the report, as typed from the project root."""
    python = Path(sys.executable)
    shown = str(python.relative_to(ROOT)) if python.is_relative_to(ROOT) else str(python)
    return shlex.join([shown, "-m", "bench.engine", *argv])


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through every finally: children and servers are stopped


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    settings = QUICK if args.quick else FULL
    signal.signal(signal.SIGTERM, _terminate)
    raise_open_file_limit()
    results: list[Result] = []
    load_before = load_average()
    started = time.monotonic()
    try:
        for i, benchmark in enumerate(args.selected, 1):
            log(f"[{i}/{len(args.selected)}] {benchmark.name}: {benchmark.title}")
            results.append(run_one(benchmark, settings))
            progress(results[-1])
    except KeyboardInterrupt:
        log("interrupted: every process started by the benchmark has been stopped; no report written")
        return 130
    finally:
        stop_all()
    report = render(results, command_line(argv), time.monotonic() - started, args.quick, load_before)
    print(report)
    if args.write is not None:
        previous = args.write.read_text() if args.write.exists() else ""
        # The sections other benchmarks write (control plane, command-line start-up) are kept as they are.
        for kept in re.finditer(r"<!-- ([a-z-]+):start -->.*?<!-- \1:end -->", previous, re.DOTALL):
            report = report.rstrip("\n") + "\n\n" + kept.group(0) + "\n"
        args.write.write_text(report)
        log(f"report written to {args.write}")
    if any(r.error is not None for r in results):
        return 2
    return 1 if args.strict and any(r.verdict == "FAIL" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
