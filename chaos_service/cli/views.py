"""How experiment runs are shown in a terminal while they run.

On a terminal, `LiveView` keeps one row per lane up to date in place (experiment, phase,
active faults, recent probe success, elapsed and remaining time) and prints what happens
above it. Anywhere else (a CI log, a pipe), `PlainView` prints timestamped lines, with a
status line per running experiment every few seconds. Both end with `summary_table`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import Any, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from chaos_service.experiments.progress import RECENT, RunStatus, run_status
from chaos_service.experiments.record import RunRecord
from chaos_service.experiments.runner import ExperimentRunner
from chaos_service.experiments.suite import display_name

STATUS_EVERY = 5.0
REFRESH_EVERY = 0.25
OUTCOME_STYLE = {"passed": "green", "failed": "red", "aborted": "yellow", "precondition_failed": "yellow"}


def status_of(runner: ExperimentRunner) -> RunStatus:
    return run_status(runner.phase, runner.active, runner.results, time.monotonic(), runner.t0, runner.t_end)


class _View:
    """What both views share: who runs where, and the line for an ended run."""

    def __init__(self, total: int, lanes: int) -> None:
        self.total = total
        self.lanes = lanes
        self.running: dict[int, tuple[int, ExperimentRunner]] = {}
        self.done: list[RunRecord] = []

    def started(self, lane: int, number: int, runner: ExperimentRunner) -> None:
        self.running[lane] = (number, runner)
        dry = " — dry run" if runner.dry_run else ""
        self.said(lane, runner, f"experiment {number}/{self.total}: {runner.plan.title} ({runner.plan.path}){dry}")

    def finished(self, lane: int, number: int, record: RunRecord) -> None:
        _, runner = self.running.pop(lane)
        self.done.append(record)
        reason = f": {record.reason}" if record.reason else ""
        self.said(lane, runner, f"{record.outcome.value.upper()}{reason}")

    def said(self, lane: int, runner: ExperimentRunner, message: str) -> None:
        raise NotImplementedError

    def prefix(self, runner: ExperimentRunner) -> str:
        elapsed = time.monotonic() - runner.t0 if runner.t0 else 0.0
        where = f"  {display_name(runner.plan.path, runner.plan.title)}" if self.lanes > 1 else ""
        return f"[{time.strftime('%H:%M:%S')}] +{elapsed:5.1f}s{where}"


class PlainView(_View):
    """Timestamped lines, for logs and pipes."""

    def __init__(self, out: TextIO, total: int, lanes: int = 1, status_every: float = STATUS_EVERY) -> None:
        super().__init__(total, lanes)
        self.out = out
        self.status_every = status_every

    def said(self, lane: int, runner: ExperimentRunner, message: str) -> None:
        print(f"{self.prefix(runner)}  {message}", file=self.out, flush=True)

    @contextlib.asynccontextmanager
    async def showing(self) -> AsyncIterator[None]:
        async def report() -> None:
            while True:
                await asyncio.sleep(self.status_every)
                for _, runner in list(self.running.values()):
                    self.said(0, runner, status_of(runner).describe())

        async with _running(report()):
            yield


class LiveView(_View):
    """A table redrawn in place, one row per lane, with events printed above it."""

    def __init__(self, console: Console, total: int, lanes: int = 1) -> None:
        super().__init__(total, lanes)
        self.console = console

    def said(self, lane: int, runner: ExperimentRunner, message: str) -> None:
        self.console.print(f"{self.prefix(runner)}  {message}", markup=False, highlight=False)

    def panel(self) -> Group:
        """Two lines per running experiment under a line of totals."""
        passed = sum(record.outcome.value == "passed" for record in self.done)
        lines = [Text(f"{len(self.done)}/{self.total} done, {passed} passed", style="bold")]
        for lane in sorted(self.running):
            number, runner = self.running[lane]
            status = status_of(runner)
            head = Text(f" {number}/{self.total} ")
            head.append(display_name(runner.plan.path, runner.plan.title), style="bold")
            head.append(f"  {status.phase}  ", style="cyan")
            head.append(f"{_bar(status.fraction)} {status.describe_time()}")
            faults = Text("     faults: ")
            faults.append(status.describe_faults(), style="red" if status.active_faults else "")
            faults.append(f"   probes ok, last {RECENT:g} s: {status.describe_probes()}")
            lines += [head, faults]
        return Group(*lines)

    @contextlib.asynccontextmanager
    async def showing(self) -> AsyncIterator[None]:
        # Redrawn from the event loop, not rich's own thread: the runners' state is not thread-safe.
        with Live(self.panel(), console=self.console, auto_refresh=False, transient=True) as live:

            async def redraw() -> None:
                while True:
                    live.update(self.panel(), refresh=True)
                    await asyncio.sleep(REFRESH_EVERY)

            async with _running(redraw()):
                yield


@contextlib.asynccontextmanager
async def _running(refresher: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """``refresher`` as a task for the duration of the block."""
    task = asyncio.create_task(refresher)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _bar(fraction: float, width: int = 8) -> str:
    filled = round(fraction * width)
    return "█" * filled + "░" * (width - filled)


def view_for(out: TextIO, total: int, lanes: int = 1) -> PlainView | LiveView:
    """The live view on a terminal, plain lines anywhere else."""
    if out.isatty():
        return LiveView(Console(file=out), total, lanes)
    return PlainView(out, total, lanes)


def summary_table(records: Sequence[RunRecord], out: TextIO) -> None:
    """Experiment, outcome, time and reason: one aligned row per run."""
    rows = [("EXPERIMENT", "OUTCOME", "TIME", "REASON")]
    for record in records:
        name = display_name(record.path, record.title)
        rows.append((name, record.outcome.value, f"{record.duration:.0f} s", record.reason[:100]))
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    print(file=out)
    for row in rows:
        cells = "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        print(f"{cells}  {row[3]}".rstrip(), file=out)
