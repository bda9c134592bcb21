"""The terminal views of running experiments: live on a terminal, plain lines elsewhere."""

from __future__ import annotations

import asyncio
import io
import time

from rich.console import Console

from chaos_service.cli.views import LiveView, PlainView, summary_table, view_for
from chaos_service.experiments.faults.base import AppliedFault
from chaos_service.experiments.plan import ExperimentPlan
from chaos_service.experiments.record import RunOutcome, RunRecord
from chaos_service.experiments.runner import ExperimentRunner
from chaos_service.probes.records import Outcome, ProbeResult

PLAN = ExperimentPlan(path="experiments/redis-outage.yaml", title="Redis outage")


def running(phase: str = "method") -> ExperimentRunner:
    """A runner as it is 6 s into its 18 s, one fault on, 3 of 4 recent chat attempts ok."""
    runner = ExperimentRunner(PLAN, None)
    now = time.monotonic()
    runner.phase, runner.t0, runner.t_end = phase, now - 6.0, now + 12.0
    outcomes = [Outcome.OK, Outcome.OK, Outcome.ERROR, Outcome.OK]
    runner.results = {"chat": [ProbeResult("chat", i, now - 4 + i, now - 4 + i, now - 3.9 + i, o) for i, o in
                               enumerate(outcomes)]}  # fmt: skip
    runner.active = {"redis-down": AppliedFault("redis-down", "engine", {}, now - 2, now + 30, 34.0, "redis", "down")}
    return runner


def test_the_live_view_shows_phase_faults_probe_success_and_time_per_lane() -> None:
    console = Console(file=io.StringIO(), width=100, force_terminal=True, color_system=None)
    view = LiveView(console, total=3, lanes=2)
    view.started(0, 2, running())
    view.started(1, 3, running("recovery"))
    text = _rendered(console, view)
    assert "0/3 done, 0 passed" in text
    assert "2/3 redis-outage.yaml  method" in text and "3/3 redis-outage.yaml  recovery" in text
    assert "faults: redis-down" in text and "chat 3/4" in text
    assert "6/18 s, 12 s left" in text


def test_the_plain_view_prints_timestamped_lines_and_a_status_line_every_few_seconds() -> None:
    out = io.StringIO()
    view = PlainView(out, total=1, status_every=0.05)
    runner = running()

    async def show() -> None:
        async with view.showing():
            view.started(0, 1, runner)
            while "probes ok" not in out.getvalue():
                await asyncio.sleep(0.01)

    asyncio.run(show())
    first, status = out.getvalue().splitlines()[:2]
    assert first.endswith("experiment 1/1: Redis outage (experiments/redis-outage.yaml)") and first.startswith("[")
    assert "method: faults redis-down; probes ok (last 5 s) chat 3/4; 6/18 s, 12 s left" in status


def test_only_a_terminal_gets_the_live_view() -> None:
    assert isinstance(view_for(io.StringIO(), 1), PlainView)


def test_the_summary_table_aligns_one_row_per_run() -> None:
    out = io.StringIO()
    passed = RunRecord("1", "A", "x/a-long-name.yaml", [], "now", outcome=RunOutcome.PASSED, duration=18.2)
    failed = RunRecord("2", "B", "x/b.yaml", [], "now", outcome=RunOutcome.FAILED, reason="slo x", duration=25)
    summary_table([passed, failed], out)
    assert out.getvalue().splitlines()[1:] == [
        "EXPERIMENT        OUTCOME  TIME  REASON",
        "a-long-name.yaml  passed   18 s",
        "b.yaml            failed   25 s  slo x",
    ]


def _rendered(console: Console, view: LiveView) -> str:
    console.print(view.panel())
    output = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(output, str)
    return output
