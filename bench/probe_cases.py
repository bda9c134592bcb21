"""Benchmark 12: 1,000 chat virtual users (open-loop WebSocket probes with every checker on) against the
sandbox: how accurately the probes keep their schedule and what they cost the process that runs them."""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from bench.common import QUICK, Settings
from bench.procs import BenchError, Usage, machine_percent, reset_peak_rss, usage
from bench.report import Result, Row, fmt, log, percentile
from bench.sandbox_cases import running_sandbox
from chaos_service.probes.checkers.delivery import DeliveryReport
from chaos_service.probes.checkers.sequence import check_run
from chaos_service.probes.kinds.chat import ChatVirtualUser
from chaos_service.probes.kinds.crowd import VirtualUsers
from chaos_service.probes.records import ProbeResult
from chaos_service.runtime import run_async
from chaos_service.sandbox.environment import Environment

USERS = 1000
PERIOD = 20.0  # seconds between one user's messages: 50 runs/s in all, half what the back-end sustains
DURATION = 60.0  # seconds of scheduled attempts: 3 per user
QUICK_DURATION = 20.0
DEADLINE = 15.0  # seconds an attempt may take from its scheduled start
LEAD = 1.0  # seconds from creating the users to the first scheduled attempt
CONTENT = "[[stub tokens=5]]"
LAG_TARGET_MS = 10.0
RUN_TIMEOUT = 2 * DURATION + DEADLINE  # the benchmark's own bound on the whole run, seconds
MIB = 1024  # KiB


class GcPauses:
    """The garbage collector's pauses while installed in `gc.callbacks`, in seconds, by generation."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self.full: list[float] = []  # when each full collection (generation 2) began, `time.monotonic`
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            if info["generation"] == 2:
                self.full.append(time.monotonic())
        else:
            self.pauses[info["generation"]].append(time.perf_counter() - self._began)


@dataclass(frozen=True)
class Measured:
    """One open-loop run of the users, with this process's resource use over it."""

    results: list[ProbeResult]
    users: list[ChatVirtualUser]
    start: float  # the first scheduled attempt, `time.monotonic`
    seconds: float  # first scheduled attempt → every attempt ended and every user closed
    cpu_process: float  # user+system CPU seconds of this whole process (all threads)
    cpu_thread: float  # of the thread running the event loop (the probes) only
    rss_before_kib: int
    peak_kib: int  # VmHWM after the run (reset before it when permitted)
    peak_reset: bool
    chat: tuple[Usage, Usage]  # the chat back-end before and after
    engine: tuple[Usage, Usage]
    gc: GcPauses  # the collector's pauses during the run
    sequence_seconds: float  # check_run over every run, once more after the run
    runs_checked: int
    invalid_runs: int  # runs whose events as delivered fail check_run
    delivery_seconds: float  # one delivery report per user
    reports: list[DeliveryReport]


def _cpu(who: int) -> float:
    usage_now = resource.getrusage(who)
    return usage_now.ru_utime + usage_now.ru_stime


async def _run_users(environment: Environment, duration: float) -> Measured:
    users = VirtualUsers.from_environment(environment, USERS, prefix="bench-vu-", period=PERIOD, deadline=DEADLINE,
                                          content=CONTENT)  # fmt: skip
    pid = os.getpid()
    pauses = GcPauses()
    peak_reset = reset_peak_rss(pid)
    rss_before = usage(pid).rss_kib
    chat_before, engine_before = usage(environment.processes["chat"]), usage(environment.processes["engine"])
    cpu_process, cpu_thread = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_THREAD)
    start = time.monotonic() + LEAD
    gc.callbacks.append(pauses)
    try:
        async with asyncio.timeout(LEAD + RUN_TIMEOUT):
            results = await users.run(start, start + duration)  # closes every user at the end
    finally:
        gc.callbacks.remove(pauses)
    seconds = time.monotonic() - start
    cpu_process, cpu_thread = _cpu(resource.RUSAGE_SELF) - cpu_process, _cpu(resource.RUSAGE_THREAD) - cpu_thread
    chat_after, engine_after = usage(environment.processes["chat"]), usage(environment.processes["engine"])
    peak = usage(pid).hwm_kib
    began = time.perf_counter()
    runs = [run.events for user in users.users for run in user.runs.values()]
    verdicts = [check_run(events) for events in runs]
    sequence_seconds = time.perf_counter() - began
    began = time.perf_counter()
    reports = list(users.delivery_reports().values())
    delivery_seconds = time.perf_counter() - began
    return Measured(results, users.users, start, seconds, cpu_process, cpu_thread, rss_before, peak, peak_reset,
                    (chat_before, chat_after), (engine_before, engine_after), pauses, sequence_seconds, len(runs),
                    sum(not v.valid for v in verdicts), delivery_seconds, reports)  # fmt: skip


def bench_probe_users(settings: Settings, result: Result) -> None:
    """1,000 chat virtual users (`VirtualUsers`, `chaos_service.probes.kinds.chat`) against the sandbox
    (`Sandbox`, ports "auto"), through its `chat_ws` websocket proxy, all in the benchmark's own process (one
    asyncio/uvloop event loop). Each user keeps one WebSocket connection (opened at its first attempt) and
    sends `[[stub tokens=5]]` every 20 s, open-loop (`OpenLoopRunner`): user i is phase-shifted by i * 20 s /
    1,000, so the users together start 50 runs/s, about half of what the back-end sustains on this machine,
    for 60 s (3 attempts per user; deadline 15 s each). Every checker is on: each attempt checks its run
    with `check_run` and a per-run delivery check (lost, duplicated, late seqs) and counts other users'
    events; after the run each user builds its `DeliveryReport`. Measured: scheduling lag (actual start -
    scheduled start of each attempt) p50/p99/max; the CPU seconds (`getrusage`: the whole process, and the
    event-loop thread alone) and peak RSS (VmHWM, reset before the run) of the benchmark process over the
    run; attempts OK / total; the time the checkers take (the sequence checks over every run, re-timed
    after the run, and the delivery reports). Targets: p99 scheduling lag ≤ 10 ms; every attempt OK."""
    duration = QUICK_DURATION if settings == QUICK else DURATION
    with running_sandbox("chaos-bench-probes-") as sandbox:
        environment = sandbox.environment
        assert environment is not None
        if not environment.endpoints["chat_ws"].startswith("ws://127.0.0.1:"):
            raise BenchError(f"not a local WebSocket URL: {environment.endpoints['chat_ws']}")
        log(f"    {USERS:,} users, one message every {PERIOD:g} s each, for {duration:g} s")
        measured = run_async(_run_users(environment, duration))
    _rows(result, measured)
    result.notes += _notes(measured, duration, sandbox.startup, sandbox.logged)


def _ms(seconds: Sequence[float], pct: float) -> float:
    return percentile(seconds, pct) * 1000


def _rows(result: Result, m: Measured) -> None:
    result.labels = ("Measured", "Per attempt / per user")
    attempts, users = len(m.results), len(m.users)
    ok = sum(r.ok for r in m.results)
    lags = [r.lag for r in m.results]
    add = result.rows.append
    add(Row("attempts OK / total", f"{ok:,} / {attempts:,}", f"{100 * ok / attempts:.2f}% OK", "—",
            "every attempt OK", ok == attempts))  # fmt: skip
    p50, p99 = _ms(lags, 50), _ms(lags, 99)
    add(Row("scheduling lag p50 (actual - scheduled start)", fmt(p50, 2, " ms"), "—", "—"))
    add(Row("scheduling lag p99", fmt(p99, 2, " ms"), "—", "—", f"≤ {LAG_TARGET_MS:g} ms", p99 <= LAG_TARGET_MS))
    add(Row("scheduling lag max", fmt(max(lags) * 1000, 2, " ms"), "—", "—"))
    for what, cpu in (("probe process CPU over the run (all threads)", m.cpu_process),
                      ("event-loop thread CPU over the run (the probes alone)", m.cpu_thread)):  # fmt: skip
        add(Row(what, fmt(cpu, 2, " s"), fmt(cpu / attempts * 1000, 2, " ms per attempt"),
                f"{100 * cpu / m.seconds:.0f}% of one core"))  # fmt: skip
    growth = m.peak_kib - m.rss_before_kib
    add(Row("probe process peak RSS (VmHWM)", fmt(m.peak_kib / MIB, 1, " MiB"), fmt(growth / users, 1, " KiB per user"),
            f"+{growth / MIB:.1f} MiB over the {m.rss_before_kib / MIB:.0f} MiB before the run"))  # fmt: skip
    add(Row(f"sequence checks (check_run over {m.runs_checked:,} runs)", fmt(m.sequence_seconds * 1000, 1, " ms"),
            fmt(m.sequence_seconds / max(1, m.runs_checked) * 1e6, 1, " µs per run"), "—"))  # fmt: skip
    add(Row(f"delivery reports ({len(m.reports):,} users)", fmt(m.delivery_seconds * 1000, 1, " ms"),
            fmt(m.delivery_seconds / max(1, len(m.reports)) * 1e6, 1, " µs per user"), "—"))  # fmt: skip
    latencies = [r.latency for r in m.results if r.ok]
    ttft = [float(r.details["first_token_s"]) for r in m.results if r.ok and r.details.get("first_token_s") is not None]
    add(Row("attempt latency p50 / p99 (scheduled start → agent_completed)",
            f"{_ms(latencies, 50):,.0f} / {_ms(latencies, 99):,.0f} ms", "—", "—"))  # fmt: skip
    add(Row("time to first token p50 / p99 (message sent → first agent_thinking)",
            f"{_ms(ttft, 50):,.0f} / {_ms(ttft, 99):,.0f} ms", "—", "—"))  # fmt: skip


def _notes(m: Measured, duration: float, startup: float, logged: list[str]) -> list[str]:
    first = [r.lag for r in m.results if r.scheduled - m.results[0].scheduled < PERIOD]
    later = [r.lag for r in m.results if r.scheduled - m.results[0].scheduled >= PERIOD]
    outcomes = Counter(r.outcome.value for r in m.results)
    errors = Counter((r.error or "")[:120] for r in m.results if not r.ok)
    connections = sum(len(u.connections) for u in m.users)
    lost = sum(r.lost for r in m.reports)
    chat_cpu = m.chat[1].cpu_seconds - m.chat[0].cpu_seconds
    late = sum(r.lag * 1000 > LAG_TARGET_MS for r in m.results)
    worst = sorted(m.results, key=lambda r: r.lag, reverse=True)[:3]
    engine_cpu = m.engine[1].cpu_seconds - m.engine[0].cpu_seconds
    return [
        f"Sandbox started in {startup:.1f} s. {len(m.users):,} users, each sending `{CONTENT}` every {PERIOD:g} s "
        f"from a phase of i * {PERIOD / len(m.users) * 1000:g} ms, for {duration:g} s: {len(m.results):,} attempts "
        f"scheduled ({len(m.results) / duration:.0f}/s), deadline {DEADLINE:g} s; the run took {m.seconds:.1f} s "
        "from the first scheduled attempt until every attempt had ended and every user was closed",
        f"Scheduling lag p50 / p99 / max, ms: first period (each user opens its connection at its first attempt): "
        f"{_ms(first, 50):.2f} / {_ms(first, 99):.2f} / {max(first, default=0) * 1000:.2f}; later periods: "
        f"{_ms(later, 50):.2f} / {_ms(later, 99):.2f} / {max(later, default=0) * 1000:.2f}",
        "Outcomes: "
        + ", ".join(f"{name} {n:,}" for name, n in sorted(outcomes.items()))
        + (f"; reasons: {', '.join(f'{reason} x{n}' for reason, n in errors.most_common(3))}" if errors else ""),
        f"Connections opened: {connections:,} ({sum(u.reconnects for u in m.users):,} reconnects, "
        f"{sum(u.connect_failures for u in m.users):,} failed handshakes)",
        f"Delivery over every user's report: {sum(r.expected for r in m.reports):,} events expected, "
        f"{sum(r.delivered for r in m.reports):,} delivered, {lost:,} lost, "
        f"{sum(r.duplicates for r in m.reports):,} duplicates, {sum(r.leaks for r in m.reports):,} leaked, "
        f"{sum(not r.ok for r in m.reports):,} report(s) not ok; runs failing check_run as delivered: "
        f"{m.invalid_runs:,} of {m.runs_checked:,}",
        "The sequence checks also ran inline in every attempt (their CPU is in the process's); the row re-times "
        "them over every run after the run. The process's CPU includes the sandbox's log-draining threads "
        "(this process started the sandbox); the event-loop thread's CPU is the probes alone. "
        "Garbage-collector pauses during the run, count / max (ms), by generation: "
        + ", ".join(f"{gen}: {len(p):,} / {max(p, default=0) * 1000:.1f}" for gen, p in m.gc.pauses.items())
        + "; full collections began at (from the first scheduled attempt; pause): "
        + ", ".join(
            f"{at - m.start:+.1f} s ({ms * 1000:.1f} ms)" for at, ms in zip(m.gc.full, m.gc.pauses[2], strict=False)
        )
        + f"; attempts that started more than {LAG_TARGET_MS:g} ms late: {late:,}; "
        "the largest lags: " + ", ".join(f"{r.lag * 1000:.1f} ms at {r.scheduled - m.start:+.1f} s" for r in worst),
        f"Peak RSS: VmHWM {'reset before the run' if m.peak_reset else 'could not be reset: peak since start'}",
        f"During the run the chat back-end used {chat_cpu:.1f} s CPU ({100 * chat_cpu / m.seconds:.0f}% of one "
        f"core), the engine {engine_cpu:.1f} s ({100 * engine_cpu / m.seconds:.0f}%); the whole machine "
        f"({os.cpu_count()} cores) was {machine_percent(m.engine[0], m.engine[1]):.0f}% busy",
        f"Lines the sandbox's processes logged (warning and above) during the benchmark: {len(logged):,}",
    ]
