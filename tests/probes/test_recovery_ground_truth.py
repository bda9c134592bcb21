"""Measured recovery time against the truth: a fault removed at a known instant, on a target
that recovers a known delay later, through a real engine proxy."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from chaos_service.probes.stats.recovery import Measured
from tests.support.engine import EngineProcess
from tests.support.recovering import RecoveringServer, recovery_trial

pytestmark = pytest.mark.serial

PERIOD = 0.05


@pytest.fixture
def target(api: httpx.Client) -> Iterator[RecoveringServer]:
    with RecoveringServer() as server:
        response = api.post(
            "/proxies", json={"name": "recovering", "listen": "127.0.0.1:0", "upstream": server.address}
        )
        assert response.status_code == 201, response.text
        yield server


@pytest.mark.parametrize("recover_after", [0.0, 0.12, 0.3])
def test_recovery_time_is_within_one_probe_period_of_the_truth(
    engine: EngineProcess, target: RecoveringServer, recover_after: float
) -> None:
    trial = asyncio.run(
        recovery_trial(engine.url, "recovering", target, period=PERIOD, recover_after=recover_after, outage=0.2)
    )
    recovery = trial.recovery
    assert recovery.detected and recovery.detection_latency is not None
    assert 0 <= recovery.detection_latency.seconds <= PERIOD  # type: ignore[union-attr]
    assert isinstance(recovery.ttr_after_clear, Measured)
    assert recovery.ttr_after_clear.resolution == PERIOD
    assert trial.error is not None and abs(trial.error) <= PERIOD, trial


def test_no_recovery_inside_the_window_is_censored(engine: EngineProcess, target: RecoveringServer) -> None:
    trial = asyncio.run(
        recovery_trial(engine.url, "recovering", target, period=PERIOD, recover_after=60, outage=0.1, observe=0.4)
    )
    assert not isinstance(trial.recovery.ttr_after_clear, Measured)
    assert trial.error is None
    assert str(trial.recovery.ttr_after_clear).startswith(">")
