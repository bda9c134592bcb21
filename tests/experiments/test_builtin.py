"""The built-in experiments, as shipped, against the seeded defects they are built to catch: each
fails, and its verdict names the metric that caught it. (That each passes on the healthy sandbox
is what the demo shows: tests/demo/test_suite.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from chaos_service.demo.suite import BUILT_IN
from chaos_service.experiments.loader import load_experiment
from chaos_service.experiments.record import RunOutcome, RunRecord
from chaos_service.experiments.runner import ExperimentRunner
from chaos_service.sandbox.chat.config import DEFECTS
from chaos_service.sandbox.stack import Sandbox

#: What each experiment's verdict must name when it runs against its defect.
CAUGHT_BY = {
    "postgres-partition.yaml": "recovery_time",
    "redis-outage.yaml": "success_rate",
    "websocket-partition.yaml": "lost_events",
    "cascading-failure.yaml": "recovery_time",
    "llm-partial-outage.yaml": "success_rate",
    "postgres-latency-100-users.yaml": "ordering_violations",
    "websocket-reconnect-isolation.yaml": "cross_user_leaks",
}


def test_every_seeded_defect_is_caught_and_every_catching_experiment_is_listed() -> None:
    catches = {path.name: load_experiment(path).catches for path in sorted(BUILT_IN.glob("*.yaml"))}
    assert {name for name, defect in catches.items() if defect} == set(CAUGHT_BY)
    assert set(catches.values()) - {None} == set(DEFECTS)


EXCLUSIVE = sorted(name for name in CAUGHT_BY if load_experiment(BUILT_IN / name).settings.exclusive)


@pytest.mark.serial  # a load experiment runs alone, as in a suite
@pytest.mark.parametrize("name", EXCLUSIVE)
def test_a_load_experiment_fails_on_its_defect_naming_the_metric(
    name: str, sandbox_with: Callable[..., Sandbox]
) -> None:
    assert_caught({name: run_on_its_defect(name, sandbox_with)})


@pytest.mark.serial  # six sandboxes side by side: a machine's worth of load, so nothing else beside them
@pytest.mark.timeout(300)
def test_the_other_experiments_fail_on_their_defects_side_by_side_naming_the_metric(
    sandbox_with: Callable[..., Sandbox],
) -> None:
    together = [name for name in CAUGHT_BY if name not in EXCLUSIVE]
    with ThreadPoolExecutor(len(together)) as pool:
        records = dict(
            zip(together, pool.map(lambda name: run_on_its_defect(name, sandbox_with), together), strict=True)
        )
    assert_caught(records)


def run_on_its_defect(name: str, sandbox_with: Callable[..., Sandbox]) -> RunRecord:
    defect = load_experiment(BUILT_IN / name).catches
    assert defect is not None
    sandbox = sandbox_with(defect)  # a fresh one each: a defect can leave the back-end broken
    try:
        plan = load_experiment(BUILT_IN / name, sandbox.environment)
        return asyncio.run(ExperimentRunner(plan, sandbox.environment).run())
    finally:
        sandbox.stop()


def assert_caught(records: dict[str, RunRecord]) -> None:
    verdicts = {name: (record.outcome, record.reason) for name, record in records.items()}
    for name, (outcome, reason) in verdicts.items():
        assert outcome is RunOutcome.FAILED and CAUGHT_BY[name] in reason, verdicts
    assert all(window.removed_at is not None for record in records.values() for window in record.faults)
