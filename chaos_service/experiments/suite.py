"""Running several experiments: one after another on each lane, the lanes side by side.

A lane is one environment (one sandbox or system under test). With one lane the
experiments run in the given order; with several, each free lane takes the longest
experiment still waiting, which keeps the lanes' finishing times close, and an
experiment with ``settings.exclusive`` (a load test, whose latency the others would
disturb) runs with nothing beside it. An observer
hears when each run starts, what it says and how it ends. `interrupt` stops the runs in
progress (their faults are removed, their verdict is ``aborted``) and starts no more.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from chaos_service.experiments.plan import ExperimentPlan
from chaos_service.experiments.record import RunRecord
from chaos_service.experiments.runner import ExperimentRunner
from chaos_service.sandbox.environment import Environment

#: Makes a plan for a lane's environment (a plan names its targets by resolved address).
Replan = Callable[[ExperimentPlan, Environment], ExperimentPlan]


class SuiteObserver(Protocol):
    def started(self, lane: int, number: int, runner: ExperimentRunner) -> None: ...

    def said(self, lane: int, runner: ExperimentRunner, message: str) -> None: ...

    def finished(self, lane: int, number: int, record: RunRecord) -> None: ...


def planned_length(plan: ExperimentPlan) -> float:
    """How long a run of ``plan`` takes when nothing stops it early, in seconds."""
    settings = plan.settings
    if not plan.method:
        return settings.warmup + settings.steady_window
    return settings.warmup + plan.method_end + settings.recovery_window


def running_order(plans: Sequence[ExperimentPlan], lanes: int) -> list[int]:
    """Indexes of ``plans`` in the order lanes take them: as given for one lane; else the
    exclusive ones first (while every lane is free anyway), then the longest first."""
    indexes = list(range(len(plans)))
    if lanes > 1:
        indexes.sort(key=lambda index: (not plans[index].settings.exclusive, -planned_length(plans[index])))
    return indexes


class SuiteRunner:
    def __init__(
        self,
        plans: Sequence[ExperimentPlan],
        lanes: Sequence[Environment],
        observer: SuiteObserver,
        *,
        dry_run: bool = False,
        replan: Replan | None = None,
    ) -> None:
        if not lanes:
            raise ValueError("a suite needs at least one lane")
        self.plans = list(plans)
        self.lanes = list(lanes)
        self.observer = observer
        self.dry_run = dry_run
        self.replan = replan
        self.runners: dict[int, ExperimentRunner] = {}
        self._interrupted = ""
        # Taking the next experiment: an exclusive one waits for the running ones to end, and
        # nothing starts beside it.
        self._turn = asyncio.Condition()
        self._alone = False

    def interrupt(self, reason: str) -> None:
        """Abort the runs in progress and start no more."""
        self._interrupted = self._interrupted or reason
        for runner in list(self.runners.values()):
            runner.interrupt(reason)

    async def run(self, *, handle_signals: bool = True) -> list[RunRecord]:
        """The records of the runs made, in the plans' order. SIGINT and SIGTERM interrupt."""
        waiting = running_order(self.plans, len(self.lanes))
        records: dict[int, RunRecord] = {}
        loop = asyncio.get_running_loop()
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.interrupt, f"interrupted by {signal.Signals(sig).name}")
        try:
            lanes = (self._lane(lane, waiting, records) for lane in range(min(len(self.lanes), len(self.plans))))
            await asyncio.gather(*lanes)
        finally:
            if handle_signals:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)
        return [records[index] for index in sorted(records)]

    async def _lane(self, lane: int, waiting: list[int], records: dict[int, RunRecord]) -> None:
        environment = self.lanes[lane]
        while True:
            async with self._turn:
                await self._turn.wait_for(lambda: not self._alone)
                if not waiting or self._interrupted:
                    return
                index = waiting.pop(0)
                alone = self.plans[index].settings.exclusive and len(self.lanes) > 1
                if alone:
                    self._alone = True
                    await self._turn.wait_for(lambda: not self.runners)
                    if self._interrupted:
                        self._alone = False
                        self._turn.notify_all()
                        return
                plan = self.plans[index]
                if self.replan is not None:
                    plan = self.replan(plan, environment)
                runner = ExperimentRunner(plan, environment, dry_run=self.dry_run)
                runner.notify = self._teller(lane, runner)
                self.runners[lane] = runner
            self.observer.started(lane, index + 1, runner)
            try:
                records[index] = await runner.run()
            finally:
                async with self._turn:
                    del self.runners[lane]
                    if alone:
                        self._alone = False
                    self._turn.notify_all()
            self.observer.finished(lane, index + 1, records[index])

    def _teller(self, lane: int, runner: ExperimentRunner) -> Callable[[str], None]:
        def tell(message: str) -> None:
            self.observer.said(lane, runner, message)

        return tell


def display_name(path: str, title: str) -> str:
    """An experiment's file name (its title if it has no file), for one-line displays."""
    return Path(path).name if path else title
