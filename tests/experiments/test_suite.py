"""Several experiments over one or more lanes: order, exclusive runs, interruption."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from chaos_service.experiments.plan import ExperimentPlan, FaultPlan, Settings
from chaos_service.experiments.record import RunOutcome, RunRecord
from chaos_service.experiments.runner import ExperimentRunner
from chaos_service.experiments.suite import SuiteRunner, planned_length, running_order
from chaos_service.sandbox.environment import Auth, Environment

LANE = Environment(
    engine="http://127.0.0.1:9", proxies={}, endpoints={}, direct={}, auth=Auth(secret="s"), processes={}
)


def plan(name: str, seconds: float = 0.2, *, exclusive: bool = False) -> ExperimentPlan:
    """A plan with no probes and no faults: it only observes for ``seconds``."""
    settings = Settings(warmup=seconds / 2, steady_window=seconds / 2, recovery_window=seconds, exclusive=exclusive)
    return ExperimentPlan(path=f"{name}.yaml", title=name, settings=settings)


@dataclass
class Log:
    """What the observer heard: (event, lane, name, monotonic time)."""

    events: list[tuple[str, int, str, float]] = field(default_factory=list)

    def started(self, lane: int, number: int, runner: ExperimentRunner) -> None:
        self.events.append(("start", lane, runner.plan.title, time.monotonic()))

    def said(self, lane: int, runner: ExperimentRunner, message: str) -> None:
        pass

    def finished(self, lane: int, number: int, record: RunRecord) -> None:
        self.events.append(("end", lane, record.title, time.monotonic()))

    def spans(self) -> dict[str, tuple[float, float]]:
        starts = {name: at for kind, _, name, at in self.events if kind == "start"}
        return {name: (starts[name], at) for kind, _, name, at in self.events if kind == "end"}


def test_one_lane_keeps_the_given_order_and_several_take_exclusive_then_longest_first() -> None:
    plans = [plan("short", 1), plan("long", 9), plan("load", 2, exclusive=True), plan("mid", 5)]
    assert running_order(plans, 1) == [0, 1, 2, 3]
    assert running_order(plans, 2) == [2, 1, 3, 0]
    assert planned_length(plans[0]) == 0.5 + 0.5  # no method: warm-up and one steady window
    with_fault = ExperimentPlan(
        path="f.yaml", title="f", method=(FaultPlan(name="x", fault="latency", target="p", at=1.0, duration=2.0),)
    )
    assert planned_length(with_fault) == 5.0 + 3.0 + 30.0


def test_records_come_back_in_the_plans_order_and_lanes_run_side_by_side() -> None:
    plans = [plan("a", 0.4), plan("b", 0.4), plan("c", 0.4), plan("d", 0.4)]
    log = Log()
    records = asyncio.run(SuiteRunner(plans, [LANE, LANE], log).run(handle_signals=False))
    assert [record.title for record in records] == ["a", "b", "c", "d"]
    assert all(record.outcome is RunOutcome.PASSED for record in records), [r.reason for r in records]
    spans = log.spans()
    overlapping = [(x, y) for x in spans for y in spans if x < y and _overlap(spans[x], spans[y])]
    assert overlapping, spans  # two lanes: some runs were side by side
    assert {lane for _, lane, _, _ in log.events} == {0, 1}


def test_an_exclusive_experiment_runs_with_nothing_beside_it() -> None:
    plans = [plan("a", 0.3), plan("b", 0.6), plan("alone", 0.3, exclusive=True), plan("c", 0.3), plan("d", 0.6)]
    log = Log()
    records = asyncio.run(SuiteRunner(plans, [LANE, LANE, LANE], log).run(handle_signals=False))
    assert len(records) == 5
    spans = log.spans()
    for name, span in spans.items():
        if name != "alone":
            assert not _overlap(span, spans["alone"]), (name, spans)


def test_an_interrupt_aborts_the_runs_in_progress_and_starts_no_more() -> None:
    class InterruptingOnWarmUp(Log):
        """Interrupts the suite when the first run says it is warming up: the run is under way."""

        def said(self, lane: int, runner: ExperimentRunner, message: str) -> None:
            if message.startswith("warm-up"):
                suite.interrupt("interrupted by test")

    plans = [plan("a", 4.0), plan("b", 4.0), plan("c", 0.2)]
    suite = SuiteRunner(plans, [LANE], InterruptingOnWarmUp())
    started = time.monotonic()
    records = asyncio.run(suite.run(handle_signals=False))
    assert time.monotonic() - started < 2.0
    assert [(record.title, record.outcome) for record in records] == [("a", RunOutcome.ABORTED)]
    assert records[0].reason == "interrupted by test"


def _overlap(first: tuple[float, float], second: tuple[float, float]) -> bool:
    return first[0] < second[1] and second[0] < first[1]
