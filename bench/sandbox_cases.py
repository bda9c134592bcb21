"""Benchmark 11: 1,000 concurrent chat sessions, each doing an agent run, against the sandbox's chat
back-end, directly and through its ``chat_ws`` websocket proxy."""

from __future__ import annotations

import asyncio
import json
import os
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.common import QUICK, Settings
from bench.procs import BenchError, Usage, machine_percent, reset_peak_rss, usage
from bench.report import Result, Row, alternate, fmt, fmt_ratio, log, median, percentile
from chaos_service.runtime import run_async
from chaos_service.sandbox.chat.auth import issue_token
from chaos_service.sandbox.chat.events import AGENT_COMPLETED, AGENT_ERROR, EVENT_TYPES, RUN_GRAMMAR, run_shape
from chaos_service.sandbox.environment import Environment
from chaos_service.sandbox.stack import Sandbox

SESSIONS = 1000
BATCH = 100  # handshakes in flight at once, so the listen backlog never overflows
MESSAGE = "[[stub tokens=5]]"
ROUNDS = 3
QUICK_ROUNDS = 1
RATIO_TARGET = 0.5
OPEN_TIMEOUT = 30.0  # seconds, one batch of handshakes
RUN_TIMEOUT = 120.0  # seconds, the whole wave of runs (the back-end's run deadline is 30 s)
CLOSE_TIMEOUT = 30.0  # seconds, closing every session
SETTLE_TIMEOUT = 30.0  # seconds, until /health reports the expected number of sessions
HEALTH_TIMEOUT = 10.0  # seconds, one GET /health
POLL = 0.05  # seconds between /health polls
MAX_EVENTS = 100  # messages read per run before giving up on it (a run of 5 tokens has 7 events)
TOKEN_TTL = 3600.0
USER_PREFIX = "bench-"
LOG_KINDS = 3  # kinds of sandbox log line quoted in the notes
FOLD = re.compile(r"[0-9a-f]{8,}|[0-9]{3,}")  # ids and long numbers in log messages
LOG_PREFIX = re.compile(r"^\[(\w+)\] \S+ \S+ ")  # "[chat] 2026-01-01 12:00:00,000 "
MIB = 1024  # KiB


@dataclass(frozen=True)
class Run:
    """One session's run: when it finished (perf_counter s) and its latency, or why it did not complete."""

    latency_ms: float | None
    done: float = 0.0
    failure: str = ""


@dataclass(frozen=True)
class Wave:
    """SESSIONS sessions opened, each doing one run, then closed; with the back-end's and the engine's
    resource use. `failures` has one reason per run that did not complete (a session that could not be
    opened counts as one)."""

    open_seconds: float
    seen_open: int  # sessions /health reported once every handshake was done
    runs: list[Run]
    run_seconds: float  # first send → last agent_completed
    failures: list[str]
    chat_start: Usage  # before the first handshake (VmHWM reset just before)
    chat_opened: Usage  # every session open, before the first send
    chat_end: Usage  # every run finished
    engine_opened: Usage
    engine_end: Usage
    peak_reset: bool  # whether VmHWM could be reset, i.e. whether peak_rss covers this wave only
    left_open: int  # sessions /health still reported after closing every one
    logged: int  # lines the sandbox's processes logged (warning and above) during the wave

    @property
    def completed(self) -> int:
        return sum(run.latency_ms is not None for run in self.runs)

    @property
    def latencies_ms(self) -> list[float]:
        return [run.latency_ms for run in self.runs if run.latency_ms is not None]

    @property
    def rate(self) -> float:
        """Completed runs per second, from the first send to the last agent_completed."""
        return self.completed / self.run_seconds if self.run_seconds > 0 else float("nan")

    @property
    def peak_rss_mib(self) -> float:
        return self.chat_end.hwm_kib / MIB

    @property
    def chat_run_cpu(self) -> float:
        """The back-end's CPU seconds from the first send to the last run's end."""
        return self.chat_end.cpu_seconds - self.chat_opened.cpu_seconds

    @property
    def chat_busy_percent(self) -> float:
        """The back-end's CPU use during the runs, in percent of one core."""
        return 100 * self.chat_run_cpu / self.run_seconds if self.run_seconds > 0 else float("nan")

    @property
    def chat_open_cpu(self) -> float:
        return self.chat_opened.cpu_seconds - self.chat_start.cpu_seconds

    @property
    def engine_run_cpu(self) -> float:
        return self.engine_end.cpu_seconds - self.engine_opened.cpu_seconds

    @property
    def machine_percent(self) -> float:
        """How busy the whole machine was during the runs (percent of all cores)."""
        return machine_percent(self.engine_opened, self.engine_end)


class Crowd:
    """SESSIONS users of one running sandbox, each with a token, and the waves they make."""

    def __init__(self, environment: Environment, sandbox_log: Path) -> None:
        self.sandbox_log = sandbox_log
        self.health_url = environment.endpoints["health"]
        self.chat_pid = environment.processes["chat"]
        self.engine_pid = environment.processes["engine"]
        secret = environment.auth.secret
        self.users = [f"{USER_PREFIX}{n}" for n in range(SESSIONS)]
        self.tokens = [issue_token(secret, user, TOKEN_TTL) for user in self.users]

    def wave(self, url: str) -> Wave:
        """Open every session on `url`, run one message on each, close them all."""
        return run_async(self._wave(url))

    async def _wave(self, url: str) -> Wave:
        async with httpx.AsyncClient(timeout=HEALTH_TIMEOUT, trust_env=False) as health:
            await self._settle(health, 0)  # nothing left over from the previous wave
            logged_before = self.logged_lines()
            peak_reset = reset_peak_rss(self.chat_pid)
            chat_start = usage(self.chat_pid)
            started = time.perf_counter()
            sessions, failures = await open_sessions(url, list(zip(self.users, self.tokens, strict=True)))
            open_seconds = time.perf_counter() - started
            try:
                seen_open = await self._settle(health, len(sessions))
                chat_opened, engine_opened = usage(self.chat_pid), usage(self.engine_pid)
                loop = asyncio.get_running_loop()
                deadline = loop.time() + RUN_TIMEOUT
                first_send = time.perf_counter()
                runs = await asyncio.gather(*(one_run(conn, user, deadline) for user, conn in sessions))
                chat_end, engine_end = usage(self.chat_pid), usage(self.engine_pid)
            finally:
                await close_sessions([conn for _, conn in sessions])
            left_open = await self._settle(health, 0)
            logged = self.logged_lines() - logged_before
        failures += [run.failure for run in runs if run.latency_ms is None]
        last = max((run.done for run in runs if run.latency_ms is not None), default=first_send)
        return Wave(open_seconds, seen_open, list(runs), last - first_send, failures, chat_start, chat_opened,
                    chat_end, engine_opened, engine_end, peak_reset, left_open, logged)  # fmt: skip

    def logged_lines(self) -> int:
        """Lines in the sandbox's log so far."""
        return len(self.sandbox_log.read_text(errors="replace").splitlines())

    async def _settle(self, client: httpx.AsyncClient, sessions: int) -> int:
        """Poll /health until the back-end reports `sessions` open sessions (at most SETTLE_TIMEOUT s);
        the last count it reported."""
        deadline = time.monotonic() + SETTLE_TIMEOUT
        seen = -1
        for _ in range(int(SETTLE_TIMEOUT / POLL) + 1):
            response = await client.get(self.health_url)
            seen = int(response.json()["sessions"])
            if seen == sessions or time.monotonic() > deadline:
                break
            await asyncio.sleep(POLL)
        return seen


async def open_sessions(
    url: str, users: Sequence[tuple[str, str]]
) -> tuple[list[tuple[str, ClientConnection]], list[str]]:
    """Open one authenticated session per (user, token), BATCH handshakes at a time; the sessions
    opened and one failure reason per session that could not be."""
    opened: list[tuple[str, ClientConnection]] = []
    failures: list[str] = []
    for start in range(0, len(users), BATCH):
        batch = users[start : start + BATCH]
        results = await asyncio.gather(*(_connect(url, token) for _, token in batch), return_exceptions=True)
        for (user, _), got in zip(batch, results, strict=True):
            if isinstance(got, ClientConnection):
                opened.append((user, got))
            else:
                failures.append(f"could not open: {type(got).__name__}")
    return opened, failures


async def _connect(url: str, token: str) -> ClientConnection:
    # Compression off, as on the proxy's hops, so both paths carry the same bytes.
    return await connect(f"{url}?token={token}", compression=None, proxy=None, ping_interval=None,
                         open_timeout=OPEN_TIMEOUT, close_timeout=5)  # fmt: skip


async def close_sessions(connections: Sequence[ClientConnection]) -> None:
    """Close every session (at most CLOSE_TIMEOUT s); abort those that did not close in time."""
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await asyncio.gather(*(c.close() for c in connections), return_exceptions=True)
    except TimeoutError:
        for connection in connections:
            connection.transport.abort()


async def one_run(connection: ClientConnection, user: str, deadline: float) -> Run:
    """Send MESSAGE and read its run to the terminal event (by `deadline`, loop time). The run
    completes when it ends in agent_completed, its events match the run grammar, their seq counts
    from 0 without gaps and they all belong to `user`."""
    events: list[dict[str, Any]] = []
    sent = time.perf_counter()
    try:
        async with asyncio.timeout_at(deadline):
            await connection.send(json.dumps({"type": "message", "content": MESSAGE}))
            for _ in range(MAX_EVENTS):
                event = json.loads(await connection.recv())
                events.append(event)
                if event.get("type") not in EVENT_TYPES:
                    return Run(None, failure=f"unexpected message {event.get('type')!r}")
                if event["type"] in (AGENT_COMPLETED, AGENT_ERROR):
                    break
            else:
                return Run(None, failure=f"no terminal event among {MAX_EVENTS} messages")
    except TimeoutError:
        return Run(None, failure=f"no terminal event within {RUN_TIMEOUT:g} s")
    except ConnectionClosed as closed:
        return Run(None, failure=f"closed ({closed.rcvd.code if closed.rcvd else 'no close frame'})")
    done = time.perf_counter()
    last = events[-1]
    if last["type"] == AGENT_ERROR:
        return Run(None, failure=f"agent_error ({last.get('data', {}).get('reason')})")
    if not re.fullmatch(RUN_GRAMMAR, run_shape([str(e["type"]) for e in events])):
        return Run(None, failure="events out of grammar")
    if [e.get("seq") for e in events] != list(range(len(events))) or {e.get("user_id") for e in events} != {user}:
        return Run(None, failure="wrong seq or user")
    return Run((done - sent) * 1000, done)


# -- 11. the benchmark ----------------------------------------------------------------------------


def bench_chat_sessions(settings: Settings, result: Result) -> None:
    """1,000 concurrent chat sessions against the sandbox (`Sandbox`, ports "auto": private Postgres
    and Redis, the LLM stub, the engine with its four proxies, the chat back-end), each doing one
    agent run, directly against the chat back-end and through its `chat_ws` websocket proxy. A wave:
    open 1,000 authenticated WebSocket sessions (one user each, 100 handshakes at a time; compression
    off), wait until the back-end's `/health` reports them all, then every session sends one message
    `[[stub tokens=5]]` and reads its run to `agent_completed`; then every session is closed. The
    client is one asyncio (uvloop) `websockets` client in the benchmark's own process. Per wave: time
    to open the sessions; each run's latency from its send to its `agent_completed` (p50/p99 over the
    pooled runs of each path); runs/s = completed runs / (last `agent_completed` - first send); runs
    that did not complete (an `agent_error`, a close, a timeout, a malformed run or a session that
    could not be opened); and the chat back-end's peak RSS (VmHWM, reset before the wave) and CPU
    seconds over the runs, from /proc/PID/status and /proc/PID/stat. Targets: every run completes on
    both paths; runs/s through the proxy ≥ 50% of direct."""
    rounds = QUICK_ROUNDS if settings == QUICK else ROUNDS
    with running_sandbox("chaos-bench-sandbox-") as sandbox:
        environment = sandbox.environment
        assert environment is not None
        crowd = Crowd(environment, sandbox.log_path)
        direct, proxied = environment.direct["chat_ws"], environment.endpoints["chat_ws"]
        for url in (direct, proxied):
            if not url.startswith("ws://127.0.0.1:"):
                raise BenchError(f"not a local WebSocket URL: {url}")
        warmup = crowd.wave(proxied)
        log(f"    warm-up wave through the proxy: {warmup.completed:,} of {SESSIONS:,} runs completed")
        directs, proxieds = alternate(rounds, lambda: crowd.wave(direct), lambda: crowd.wave(proxied))
    _rows(result, directs, proxieds)
    result.notes += _notes(directs, proxieds, warmup, sandbox.startup, sandbox.logged)


@dataclass
class RunningSandbox:
    """A sandbox started for one benchmark: where it runs, how long it took to start, what it logged."""

    log_path: Path
    environment: Environment | None = None
    startup: float = 0.0
    logged: list[str] = field(default_factory=list)  # filled in once the sandbox has stopped


@contextmanager
def running_sandbox(prefix: str) -> Iterator[RunningSandbox]:
    """A sandbox (ports auto, in a temporary directory) for the block; stopped after it, whatever happens."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        running = RunningSandbox(Path(tmp) / "sandbox.log")
        with running.log_path.open("w") as log_to:
            sandbox = Sandbox(Path(tmp) / "sandbox", ports="auto", log_to=log_to)
            try:
                started = time.monotonic()
                running.environment = sandbox.start().environment
                running.startup = time.monotonic() - started
                yield running
            finally:
                sandbox.stop()
        running.logged = running.log_path.read_text(errors="replace").splitlines()


def _rows(result: Result, directs: list[Wave], proxied: list[Wave]) -> None:
    failed_direct = sum(len(w.failures) for w in directs)
    failed_proxied = sum(len(w.failures) for w in proxied)
    result.rows.append(
        Row(f"runs that did not complete ({len(directs)} wave(s) of {SESSIONS:,} each)", f"{failed_direct:,}",
            f"{failed_proxied:,}", "—", "0 on both paths", failed_direct == 0 and failed_proxied == 0)
    )  # fmt: skip
    rate_direct, rate_proxied = median([w.rate for w in directs]), median([w.rate for w in proxied])
    ratio = rate_proxied / rate_direct
    result.rows.append(
        Row(f"runs/s over the wave ({SESSIONS:,} concurrent runs)", fmt(rate_direct, 0), fmt(rate_proxied, 0),
            fmt_ratio(ratio), "≥ 50%", ratio >= RATIO_TARGET)
    )  # fmt: skip
    open_direct, open_proxied = median([w.open_seconds for w in directs]), median([w.open_seconds for w in proxied])
    result.rows.append(
        Row(f"time to open {SESSIONS:,} sessions ({BATCH} handshakes at a time)", fmt(open_direct, 2, " s"),
            fmt(open_proxied, 2, " s"), f"{open_proxied - open_direct:+.2f} s")
    )  # fmt: skip
    pooled_direct = [ms for w in directs for ms in w.latencies_ms]
    pooled_proxied = [ms for w in proxied for ms in w.latencies_ms]
    for pct in (50, 99):
        a, b = percentile(pooled_direct, pct), percentile(pooled_proxied, pct)
        result.rows.append(
            Row(f"p{pct} run latency, send → agent_completed", fmt(a, 0, " ms"), fmt(b, 0, " ms"),
                f"added {b - a:+,.0f} ms")
        )  # fmt: skip
    rss_direct, rss_proxied = median([w.peak_rss_mib for w in directs]), median([w.peak_rss_mib for w in proxied])
    result.rows.append(
        Row("chat back-end peak RSS (VmHWM) over the wave", fmt(rss_direct, 1, " MiB"), fmt(rss_proxied, 1, " MiB"),
            f"{rss_proxied - rss_direct:+.1f} MiB")
    )  # fmt: skip
    cpu_direct, cpu_proxied = median([w.chat_run_cpu for w in directs]), median([w.chat_run_cpu for w in proxied])
    result.rows.append(
        Row(f"chat back-end CPU time over the {SESSIONS:,} runs", fmt(cpu_direct, 2, " s"), fmt(cpu_proxied, 2, " s"),
            f"{cpu_proxied - cpu_direct:+.2f} s")
    )  # fmt: skip


def _per_wave(directs: list[Wave], proxied: list[Wave], stat: Callable[[Wave], str]) -> str:
    return f"{', '.join(stat(w) for w in directs)} → {', '.join(stat(w) for w in proxied)}"


def _latencies(wave: Wave) -> str:
    """p50 / p99 / max of a wave's run latencies, in ms."""
    ms = wave.latencies_ms
    return f"{percentile(ms, 50):,.0f} / {percentile(ms, 99):,.0f} / {max(ms, default=float('nan')):,.0f}"


def _notes(directs: list[Wave], proxied: list[Wave], warmup: Wave, startup: float, logged: list[str]) -> list[str]:
    rounds = len(directs)
    failures = Counter(reason for w in directs + proxied for reason in w.failures)
    notes = [
        f"Sandbox started in {startup:.1f} s. One unmeasured warm-up wave through the proxy "
        f"({warmup.completed:,} of {SESSIONS:,} runs completed, {warmup.rate:,.0f} runs/s), then {rounds} direct "
        f"and {rounds} proxied waves, alternated; medians of the per-wave values, latency percentiles over the "
        "pooled runs of each path. Each wave adds its runs and their events to Postgres, so later waves write to "
        "a slightly larger database; the alternation spreads that over both paths",
        "Per-wave runs/s (direct → proxied): " + _per_wave(directs, proxied, lambda w: fmt(w.rate, 0)),
        "Per-wave time to open the sessions, s (direct → proxied): "
        + _per_wave(directs, proxied, lambda w: fmt(w.open_seconds, 2)),
        "Per-wave run latency p50 / p99 / max, ms (direct → proxied): " + _per_wave(directs, proxied, _latencies),
        "Runs that did not complete, per wave (direct → proxied): "
        + _per_wave(directs, proxied, lambda w: str(len(w.failures)))
        + (f"; reasons: {', '.join(f'{reason} x{n}' for reason, n in failures.most_common())}" if failures else ""),
        "Sessions the back-end's /health reported once every handshake was done, per wave (direct → proxied): "
        + _per_wave(directs, proxied, lambda w: f"{w.seen_open:,}")
        + "; still reported after closing them all: "
        + _per_wave(directs, proxied, lambda w: f"{w.left_open:,}"),
        "Chat back-end memory, per wave (direct → proxied), RSS before the wave / peak during it (MiB): "
        + _per_wave(directs, proxied, lambda w: f"{w.chat_start.rss_kib / MIB:.0f} / {w.peak_rss_mib:.0f}")
        + (
            ""
            if all(w.peak_reset for w in directs + proxied)
            else " (VmHWM could not be reset: peaks are since the back-end started)"
        ),
        "Chat back-end CPU seconds, per wave (direct → proxied), opening the sessions / the runs: "
        + _per_wave(directs, proxied, lambda w: f"{w.chat_open_cpu:.2f} / {w.chat_run_cpu:.2f}")
        + "; busy during the runs, % of one core: "
        + _per_wave(directs, proxied, lambda w: fmt(w.chat_busy_percent, 0))
        + f"; CPU per completed run (medians): {_per_run_ms(directs):.2f} ms direct, {_per_run_ms(proxied):.2f} ms "
        "proxied",
        f"CPU during the runs: the engine process used a median {median([w.engine_run_cpu for w in proxied]):.2f} s "
        "in the proxied waves, and "
        f"{median([w.engine_run_cpu for w in directs]):.2f} s in the direct ones (on both paths it relays the "
        "back-end's Postgres, Redis and LLM traffic); the whole machine "
        f"({os.cpu_count()} cores, shared by the client, the engine, the back-end and its dependencies) was "
        f"{median([w.machine_percent for w in directs]):.0f}% busy during the direct runs and "
        f"{median([w.machine_percent for w in proxied]):.0f}% during the proxied runs (medians)",
        "Lines the sandbox's processes logged (level warning and above) during each wave (direct → proxied): "
        + _per_wave(directs, proxied, lambda w: f"{w.logged:,}")
        + f"; during the whole benchmark: {_log_summary(logged)}",
    ]
    return notes


def _per_run_ms(waves: list[Wave]) -> float:
    return median([w.chat_run_cpu / w.completed * 1000 for w in waves if w.completed])


def _log_summary(lines: list[str]) -> str:
    """How many lines, and the most frequent kinds (long numbers and ids folded, so repeats of one message
    count as one)."""
    if not lines:
        return "none"
    kinds: Counter[str] = Counter()
    for line in lines:
        match = LOG_PREFIX.match(line)
        name, message = (match.group(1), line[match.end() :]) if match else ("?", line)
        kinds[f"[{name}] {FOLD.sub('N', message)[:200]}"] += 1
    top = "; ".join(f"{n:,} x `{kind}`" for kind, n in kinds.most_common(LOG_KINDS))
    return f"{len(lines):,} line(s), {len(kinds):,} kind(s); most frequent: {top}"
