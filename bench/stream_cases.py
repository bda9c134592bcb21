"""Benchmarks 8-10: LLM event streams through an ``http`` proxy and WebSocket echo through a
``websocket`` proxy, directly and through the engine, without toxics."""

from __future__ import annotations

import contextlib
import json
import math
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bench.api import Api
from bench.common import Measured, Settings, alternate_measured, cpu_note, values
from bench.procs import STREAM_WORKERS, BenchError, Engine, read_line, run_worker, start_server, stop
from bench.report import Result, Row, fmt, fmt_ratio, median, percentile
from chaos_service.sandbox.llm_stub.process import LlmStubProcess

SSE_RATE_TARGET = 5_000.0  # events/s through the engine
ADDED_P99_TARGET_US = 1_000.0
RATIO_TARGET = 0.5
PACE_MS = 1.0  # the stub's pace in the per-event latency runs (it does not pace below 1 ms)
EXTRA_EVENTS = 3  # besides the tokens: the role chunk, the finish chunk and ``data: [DONE]``
STREAMS = 200
MANY_PACE_MS = 10.0
WS_CONNECTIONS = 50
WS_SIZE = 32
WS_WARMUP = 0.3
WORKER_SECONDS = 120.0


@contextlib.contextmanager
def stub_and_engine() -> Iterator[tuple[int, Engine, Api]]:
    """The LLM stub (its port), a fresh engine and an API client, all stopped on exit."""
    with LlmStubProcess(log_level="warning") as stub, Engine() as engine, Api(engine.api_port) as api:
        port = urlsplit(stub.url).port
        if port is None:
            raise BenchError(f"no port in the stub's URL {stub.url!r}")
        yield port, engine, api


def stream_worker(role: str, *args: object) -> dict[str, Any]:
    return run_worker(role, *args, "--max-seconds", WORKER_SECONDS, timeout=WORKER_SECONDS + 30, module=STREAM_WORKERS)


# -- 8. one SSE stream ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Stream:
    """One unpaced stream read by the client: its events and their rate."""

    events: int
    seconds: float  # from the first read that completed an event to the last one
    after_first: int  # events completed after that first read

    @property
    def rate(self) -> float:
        return self.after_first / self.seconds if self.seconds > 0 else 0.0


def read_stream(port: int, tokens: int) -> Stream:
    """Stream `tokens` unpaced tokens from `port` into a raw-socket client process."""
    got = stream_worker("sse_read", "--port", port, "--tokens", tokens)
    check_events(got, tokens)
    return Stream(got["events"], (got["last_ns"] - got["first_ns"]) / 1e9, got["events"] - got["first_events"])


def check_events(got: dict[str, Any], tokens: int) -> None:
    if not got["complete"] or got["events"] != tokens + EXTRA_EVENTS:
        raise BenchError(f"a stream of {tokens} tokens brought {got['events']} events (complete: {got['complete']})")


@dataclass(frozen=True)
class Timed:
    """One paced stream: per event, when the tap and when the client received it (ns, one clock)."""

    tap: list[int]
    client: list[int]

    def delays_us(self) -> list[float]:
        """Each event's tap → client delay in µs, the first event (sent with the head) left out."""
        return [(c - t) / 1000 for t, c in zip(self.tap[1:], self.client[1:], strict=True)]

    def offsets_us(self) -> list[float]:
        """Each event's arrival at the client after the stream's first event, in µs."""
        return [(c - self.client[0]) / 1000 for c in self.client]


def timed_stream(tap: subprocess.Popen[bytes], port: int, tokens: int) -> Timed:
    """A stream paced PACE_MS apart read from `port` (the tap, or a proxy in front of it), with
    every event's arrival time at the client and at the tap."""
    got = stream_worker("sse_read", "--port", port, "--tokens", tokens, "--pace-ms", PACE_MS, "--times")
    check_events(got, tokens)
    tapped = json.loads(read_line(tap, 10))
    if tapped["events"] != got["events"]:
        raise BenchError(f"the tap saw {tapped['events']} events, the client {got['events']}")
    return Timed(tapped["arrivals"], got["arrivals"])


def bench_sse_one(settings: Settings, result: Result) -> None:
    """One LLM stream (`POST /v1/chat/completions`, `stream: true`, from the LLM stub) through an
    `http` proxy without toxics. Throughput: 50,000 unpaced tokens read by a raw-socket client
    process that undoes the chunked coding and counts events (SSE blocks ending in a blank line);
    events/s from the first read that completes an event to the last. Target: ≥ 5,000 events/s
    through the engine. Added per-event latency: the stub paces 2,000 tokens 1 ms apart and a
    timing tap process (a relay in front of the stub, in both the direct and the proxied run)
    timestamps each event as it leaves the stub; the client timestamps it on arrival (one
    monotonic clock). Per event, delay = client arrival - tap arrival; reports its p50/p99 and the
    added latency, proxied - direct. Target: added p99 ≤ 1 ms."""
    with stub_and_engine() as (stub_port, engine, api):
        proxy = api.create_proxy("llm", stub_port, "http")
        tokens = settings.sse_tokens
        rates = alternate_measured(settings.sse_rounds, engine.pid, lambda: read_stream(stub_port, tokens),
                                   lambda: read_stream(proxy, tokens))  # fmt: skip
        tap, tap_port = start_server("sse_tap", 600, "--upstream", stub_port, module=STREAM_WORKERS,
                                     stdin=subprocess.PIPE)  # fmt: skip
        try:
            tapped = api.create_proxy("tap", tap_port, "http")
            paced = settings.sse_paced_tokens
            timed = alternate_measured(settings.sse_latency_rounds, engine.pid,
                                       lambda: timed_stream(tap, tap_port, paced),
                                       lambda: timed_stream(tap, tapped, paced))  # fmt: skip
        finally:
            stop(tap)
    _sse_rate_rows(result, values(rates[0]), values(rates[1]), tokens)
    _sse_latency_rows(result, values(timed[0]), values(timed[1]))
    result.notes += [
        f"Throughput: {settings.sse_rounds} direct and {settings.sse_rounds} proxied streams of {tokens:,} tokens "
        f"({tokens + EXTRA_EVENTS:,} events with the role chunk, the finish chunk and `[DONE]`), alternated; "
        "medians. Per-run events/s (direct → proxied): " + _per_run(rates),
        "Throughput " + cpu_note(*rates),
        *_sse_latency_notes(values(timed[0]), values(timed[1]), paced, settings.sse_latency_rounds),
        "Latency runs " + cpu_note(*timed),
    ]


def _per_run(measured: tuple[Sequence[Measured[Stream]], Sequence[Measured[Stream]]]) -> str:
    def rates(runs: Sequence[Measured[Stream]]) -> str:
        return ", ".join(fmt(m.value.rate, 0) for m in runs)

    return f"{rates(measured[0])} → {rates(measured[1])}"


def _sse_rate_rows(result: Result, directs: list[Stream], proxied: list[Stream], tokens: int) -> None:
    direct, through = median([s.rate for s in directs]), median([s.rate for s in proxied])
    result.rows.append(
        Row(f"events/s, one unpaced stream of {tokens:,} tokens", fmt(direct, 0), fmt(through, 0),
            fmt_ratio(through / direct), "≥ 5,000 events/s through the engine", through >= SSE_RATE_TARGET)
    )  # fmt: skip


def _sse_latency_rows(result: Result, directs: list[Timed], proxied: list[Timed]) -> None:
    direct = [d for run in directs for d in run.delays_us()]
    through = [d for run in proxied for d in run.delays_us()]
    for pct in (50, 99):
        a, b = percentile(direct, pct), percentile(through, pct)
        target, passed = ("≤ +1 ms", b - a <= ADDED_P99_TARGET_US) if pct == 99 else ("", None)
        result.rows.append(
            Row(f"p{pct} event delay, tap → client ({PACE_MS:g} ms pace)", fmt(a, 1, " µs"), fmt(b, 1, " µs"),
                f"added {b - a:+,.1f} µs", target, passed)
        )  # fmt: skip
    base = median(direct)
    added = [d - base for d in through]
    worst = percentile(added, 99)
    result.rows.append(
        Row("p99 of per-event added delay (each proxied event - direct median)", "—", fmt(worst, 1, " µs"), "—",
            "≤ 1 ms", worst <= ADDED_P99_TARGET_US)
    )  # fmt: skip


def _sse_latency_notes(directs: list[Timed], proxied: list[Timed], tokens: int, rounds: int) -> list[str]:
    def stream_seconds(runs: list[Timed]) -> float:
        return median([(run.tap[-1] - run.tap[0]) / 1e9 for run in runs])

    gaps = [(b - a) / 1e6 for run in directs + proxied for a, b in zip(run.tap, run.tap[1:], strict=False)]
    drift = [p - d for dr, pr in zip(directs, proxied, strict=True)
             for d, p in zip(dr.offsets_us(), pr.offsets_us(), strict=True)]  # fmt: skip
    through = [d for run in proxied for d in run.delays_us()]
    return [
        f"Latency: {rounds} direct and {rounds} proxied streams of {tokens:,} tokens paced {PACE_MS:g} ms, "
        "alternated; percentiles over the pooled events of each kind (the first event of each stream, which "
        f"travels with the response head, left out); max proxied delay {fmt(max(through), 1, ' µs')}. Both kinds "
        "of run pass through the tap (one extra relay hop, outside the measured interval)",
        f"The stub's pace as seen at the tap: gaps between events p50 {percentile(gaps, 50):.3f} ms, p99 "
        f"{percentile(gaps, 99):.3f} ms; a stream took {stream_seconds(directs):.3f} s (direct) and "
        f"{stream_seconds(proxied):.3f} s (proxied) there. Why a tap: comparing each event's arrival relative to "
        "the stream's first event between a direct and a proxied run would charge the stub's own drift to the "
        f"proxy — on these runs that difference has p50 {percentile(drift, 50) / 1000:+.2f} ms and p99 "
        f"{percentile(drift, 99) / 1000:+.2f} ms",
    ]


# -- 9. many SSE streams --------------------------------------------------------------------------


@dataclass(frozen=True)
class Many:
    """One run of STREAMS concurrent streams, as the client process reports it."""

    events: int
    all_seconds: float
    window_events: int
    window_seconds: float
    ended_early: int  # streams that ended before the last one began
    first_event_ms: list[float]  # each stream's time to first event after the requests were sent

    @property
    def rate(self) -> float:
        """Events / (end of the last stream - first event of any stream)."""
        return self.events / self.all_seconds

    @property
    def window_rate(self) -> float:
        """Events per second while every stream was open (nan when they never all were)."""
        return self.window_events / self.window_seconds if self.window_seconds > 0 else math.nan


@dataclass(frozen=True)
class ManyCase:
    """One pace of the many-streams benchmark."""

    label: str
    pace_ms: float
    steady: bool  # rate while all streams are open (else: first event to last), paced_tokens each
    target: bool  # whether the ≥ 50% target is checked on this row

    def tokens(self, settings: Settings) -> int:
        return settings.many_paced_tokens if self.steady else settings.many_tokens

    def rate(self, run: Many) -> float:
        return run.window_rate if self.steady else run.rate


MANY_CASES = (
    ManyCase("unpaced", 0.0, False, True),
    ManyCase("pace 0.2 ms (interleaved, stub saturated)", 0.2, False, True),
    ManyCase(f"pace {MANY_PACE_MS:g} ms, while all are open", MANY_PACE_MS, True, False),
)
ManyRuns = tuple[list[Measured[Many]], list[Measured[Many]]]


def many_streams(port: int, tokens: int, pace_ms: float) -> Many:
    got = stream_worker("sse_many", "--port", port, "--streams", STREAMS, "--tokens", tokens, "--pace-ms", pace_ms)
    if got["events"] != STREAMS * (tokens + EXTRA_EVENTS):
        raise BenchError(f"{STREAMS} streams of {tokens} tokens brought {got['events']} events")
    return Many(got["events"], got["all_s"], got["window_events"], got["window_s"], got["ended_before_last_began"],
                got["first_event_ms"])  # fmt: skip


def many_series(settings: Settings, engine: Engine, case: ManyCase, port: int, proxy: int) -> ManyRuns:
    """Alternated direct and proxied runs of one pace."""
    tokens = case.tokens(settings)
    return alternate_measured(settings.many_rounds, engine.pid, lambda: many_streams(port, tokens, case.pace_ms),
                              lambda: many_streams(proxy, tokens, case.pace_ms))  # fmt: skip


def engine_us_per_event(runs: Sequence[Measured[Many]]) -> float:
    """The engine's CPU time per relayed event, in µs (median over runs)."""
    return median([(m.after.cpu_seconds - m.before.cpu_seconds) / m.value.events * 1e6 for m in runs])


def bench_sse_many(settings: Settings, result: Result) -> None:
    """200 concurrent LLM streams (one client process, asyncio + raw sockets; the 200 connections
    are opened first, then every request is sent at once) through one `http` proxy without toxics,
    against one LLM stub process, at three paces. Unpaced (600 tokens a stream): the stub writes
    each stream's events back to back without yielding, so it saturates but serves the streams
    nearly one after another. Pace 0.2 ms (600 tokens): below the stub's 1 ms timer resolution the
    pause only yields, so the stub is still saturated but its 200 streams interleave. For these
    two, total events/s = all events / (end of the last stream - first event of any). Target:
    proxied ≥ 50% of direct, on each. Extra row, no target: pace 10 ms (200 tokens a stream),
    events/s while all 200 streams are open (from the last stream's first event to the first
    stream's end), an offered load the stub can keep up with."""
    with stub_and_engine() as (stub_port, engine, api):
        proxy = api.create_proxy("llm", stub_port, "http")
        measured = [many_series(settings, engine, case, stub_port, proxy) for case in MANY_CASES]
    for case, runs in zip(MANY_CASES, measured, strict=True):
        _many_row(result, case, settings, runs)
    cases = list(zip(MANY_CASES, measured, strict=True))
    result.notes += [
        f"{settings.many_rounds} direct and {settings.many_rounds} proxied runs of each pace, alternated; medians. "
        "Per-run events/s (direct → proxied): "
        + "; ".join(f"{case.label}: " + _many_runs(runs, case.rate) for case, runs in cases),
        "Streams that ended before the last one began, per run (direct → proxied): "
        + "; ".join(f"{case.label}: " + _many_runs(runs, lambda m: m.ended_early) for case, runs in cases),
        "Events/s while all streams were open (n/a: they never all were), per run (direct → proxied): "
        + "; ".join(f"{case.label}: " + _many_runs(runs, lambda m: m.window_rate) for case, runs in cases[:2]),
        "Time from sending the requests to each stream's first event, p50 / max (medians over runs, direct → "
        "proxied): " + "; ".join(f"{case.label}: " + _first_events(runs) for case, runs in cases),
        "Engine CPU time per relayed event (median over the proxied runs): "
        + ", ".join(f"{case.label}: {engine_us_per_event(runs[1]):.1f} µs" for case, runs in cases)
        + " (unpaced, events coalesce into large reads; paced, each event is a read and a write of its own)",
        *(f"{case.label}: " + cpu_note(*runs) for case, runs in cases),
    ]


def _many_runs(measured: ManyRuns, stat: Callable[[Many], float]) -> str:
    def runs(ms: Sequence[Measured[Many]]) -> str:
        return ", ".join(fmt(stat(m.value), 0) for m in ms)

    return f"{runs(measured[0])} → {runs(measured[1])}"


def _first_events(measured: ManyRuns) -> str:
    def p50_max(ms: Sequence[Measured[Many]]) -> str:
        p50 = median([percentile(m.value.first_event_ms, 50) for m in ms])
        return f"{fmt(p50, 0)} / {fmt(median([max(m.value.first_event_ms) for m in ms]), 0)} ms"

    return f"{p50_max(measured[0])} → {p50_max(measured[1])}"


def _many_row(result: Result, case: ManyCase, settings: Settings, measured: ManyRuns) -> None:
    direct = median([case.rate(m.value) for m in measured[0]])
    through = median([case.rate(m.value) for m in measured[1]])
    ratio = through / direct
    target, passed = ("≥ 50%", ratio >= RATIO_TARGET) if case.target else ("", None)
    result.rows.append(
        Row(f"total events/s, {STREAMS} streams x {case.tokens(settings):,} tokens, {case.label}", fmt(direct, 0),
            fmt(through, 0), fmt_ratio(ratio), target, passed)
    )  # fmt: skip


# -- 10. WebSocket echo ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EchoCase:
    """One client configuration of the WebSocket echo benchmark."""

    label: str
    mode: str  # rr: request/response; stream: pipelined
    connections: int
    target: bool  # whether the ≥ 50% target is checked on this row


ECHO_CASES = (
    EchoCase("1 connection, request/response", "rr", 1, True),
    EchoCase("1 connection, pipelined (100 in flight)", "stream", 1, True),
    EchoCase(f"{WS_CONNECTIONS} connections, request/response each", "rr", WS_CONNECTIONS, True),
    EchoCase(f"{WS_CONNECTIONS} connections, pipelined (100 in flight each)", "stream", WS_CONNECTIONS, False),
)


def echo_rate(port: int, case: EchoCase, seconds: float) -> float:
    """Messages/s echoed within the client's timed window."""
    got = stream_worker("ws_client", "--port", port, "--mode", case.mode, "--connections", case.connections,
                        "--seconds", seconds, "--warmup", WS_WARMUP, "--size", WS_SIZE)  # fmt: skip
    if got["per_connection_min"] <= 0:
        raise BenchError(f"{case.label}: a connection echoed nothing in the window")
    return float(got["messages"]) / seconds


def echo_series(
    settings: Settings, engine: Engine, case: EchoCase, port: int, proxy: int
) -> tuple[list[Measured[float]], list[Measured[float]]]:
    """Alternated direct and proxied runs of one client configuration."""
    seconds = settings.ws_seconds
    return alternate_measured(
        settings.ws_rounds, engine.pid, lambda: echo_rate(port, case, seconds), lambda: echo_rate(proxy, case, seconds)
    )


def bench_ws_echo(settings: Settings, result: Result) -> None:
    """WebSocket echo through a `websocket` proxy without toxics: a `websockets` echo server process
    and a `websockets` client process (uvloop; compression off on both, as the proxy has it on its
    hops), 32-byte text messages, 0.3 s warm-up then a timed window; messages/s = echoes received
    within the window / its length. Rows: one connection request/response (send, await the echo,
    repeat); one connection pipelined (100 messages in flight); 50 connections request/response
    each; and, without a target, 50 connections pipelined. The issue's target (proxied ≥ 50% of
    direct, for "WebSocket echo") is checked on each of the first three rows."""
    seconds = settings.ws_seconds
    echo, port = start_server("ws_echo", 600, module=STREAM_WORKERS)
    measured: list[tuple[list[Measured[float]], list[Measured[float]]]] = []
    try:
        with Engine() as engine, Api(engine.api_port) as api:
            proxy = api.create_proxy("ws", port, "websocket")
            measured = [echo_series(settings, engine, case, port, proxy) for case in ECHO_CASES]
    finally:
        stop(echo)
    for case, (directs, proxied) in zip(ECHO_CASES, measured, strict=True):
        _echo_row(result, case, values(directs), values(proxied))
    result.notes += [
        f"{settings.ws_rounds} direct and {settings.ws_rounds} proxied runs of each row, alternated, each a fresh "
        f"client process timing a {seconds:g} s window; medians. Per-run messages/s (direct → proxied): "
        + "; ".join(f"{case.label}: " + _echo_runs(m) for case, m in zip(ECHO_CASES, measured, strict=True)),
        *(f"{case.label}: " + cpu_note(*m) for case, m in zip(ECHO_CASES, measured, strict=True)),
    ]


def _echo_runs(measured: tuple[list[Measured[float]], list[Measured[float]]]) -> str:
    def runs(ms: list[Measured[float]]) -> str:
        return ", ".join(fmt(m.value, 0) for m in ms)

    return f"{runs(measured[0])} → {runs(measured[1])}"


def _echo_row(result: Result, case: EchoCase, directs: list[float], proxied: list[float]) -> None:
    direct, through = median(directs), median(proxied)
    ratio = through / direct
    target, passed = ("≥ 50%", ratio >= RATIO_TARGET) if case.target else ("", None)
    result.rows.append(Row(f"messages/s, {case.label}", fmt(direct, 0), fmt(through, 0), fmt_ratio(ratio), target,
                           passed))  # fmt: skip
