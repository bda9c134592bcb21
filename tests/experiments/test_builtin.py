"""The built-in experiments, as shipped: each passes on the healthy sandbox and fails on the
seeded defect it is built to catch, naming the check that caught it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from chaos_service.experiments.loader import load_experiment
from chaos_service.experiments.record import RunOutcome, RunRecord
from chaos_service.experiments.runner import ExperimentRunner
from chaos_service.sandbox.stack import Sandbox
from tests.support.sandbox import wait_until_healthy

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
#: What each experiment's verdict must name when it runs against its defect.
CAUGHT_BY = {
    "postgres-partition.yaml": "recovery_time",
    "redis-outage.yaml": "success_rate",
    "websocket-partition.yaml": "lost_events",
}


def run(path: Path, sandbox: Sandbox) -> RunRecord:
    plan = load_experiment(path, sandbox.environment)
    return asyncio.run(ExperimentRunner(plan, sandbox.environment).run())


@pytest.mark.parametrize("name", sorted(CAUGHT_BY))
def test_a_built_in_experiment_passes_healthy_and_catches_its_defect(
    name: str, sandbox: Sandbox, sandbox_with: Callable[..., Sandbox]
) -> None:
    path = EXPERIMENTS / name
    plan = load_experiment(path, sandbox.environment)
    assert plan.catches is not None
    # The two runs share nothing, and mostly wait: run them side by side.
    with ThreadPoolExecutor(2) as pool:
        healthy_run = pool.submit(run, path, sandbox)
        defective_run = pool.submit(lambda: run(path, sandbox_with(plan.catches)))
        healthy, defective = healthy_run.result(), defective_run.result()
    wait_until_healthy(sandbox)
    assert healthy.outcome is RunOutcome.PASSED, healthy.reason
    assert all(window.applied_at is not None and window.removed_at is not None for window in healthy.faults)
    assert all(window.evidence for window in healthy.faults), [w.evidence for w in healthy.faults]
    assert defective.outcome is RunOutcome.FAILED, defective.reason
    assert CAUGHT_BY[name] in defective.reason, defective.reason
