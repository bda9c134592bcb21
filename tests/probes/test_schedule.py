"""Open-loop scheduling: attempts start on time whatever earlier ones do, and every outcome is recorded."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from chaos_service.errors import InvalidInput
from chaos_service.probes.records import Observation, Outcome, ProbeResult
from chaos_service.probes.schedule import OpenLoopRunner, Schedule


class ScriptedProbe:
    """Attempt ``i`` does what ``behaviour(i)`` says: "ok", "invalid", "raise", "hang" or "client-timeout"."""

    name = "scripted"

    def __init__(self, behaviour: dict[int, str]) -> None:
        self.behaviour = behaviour
        self.calls = 0
        self.release = asyncio.Event()

    async def __call__(self) -> Observation:
        index = self.calls
        self.calls += 1
        action = self.behaviour.get(index, "ok")
        if action == "hang":
            await self.release.wait()
        if action == "raise":
            raise ConnectionRefusedError("refused")
        if action == "client-timeout":
            raise TimeoutError("socket timed out")
        if action == "invalid":
            return Observation(valid=False, reason="wrong value", details={"value": 41})
        return Observation(details={"value": 42})


def run(probe: ScriptedProbe, schedule: Schedule, attempts: int) -> list[ProbeResult]:
    async def main() -> list[ProbeResult]:
        start = time.monotonic() + 0.01
        runner = OpenLoopRunner(probe, schedule)
        return await runner.run(start, start + schedule.phase + (attempts - 0.5) * schedule.period)

    return asyncio.run(main())


def test_every_outcome_is_recorded_in_scheduled_order() -> None:
    probe = ScriptedProbe({1: "invalid", 2: "raise", 3: "hang", 4: "client-timeout"})
    results = run(probe, Schedule(period=0.02, deadline=0.05), attempts=6)
    assert [r.index for r in results] == list(range(6))
    assert [r.outcome for r in results] == [
        Outcome.OK,
        Outcome.INVALID,
        Outcome.ERROR,
        Outcome.TIMEOUT,
        Outcome.ERROR,
        Outcome.OK,
    ]
    assert results[0].details == {"value": 42} and results[0].ok
    assert results[1].error == "wrong value" and results[1].details == {"value": 41}
    assert results[2].error == "ConnectionRefusedError: refused"
    assert results[4].error == "TimeoutError: socket timed out"
    hung = results[3]
    assert hung.finished == pytest.approx(hung.scheduled + 0.05)  # failed at its deadline, attributed to its start
    assert hung.error == "no answer by the deadline"


def test_attempts_start_on_schedule_while_earlier_ones_hang() -> None:
    probe = ScriptedProbe(dict.fromkeys(range(10), "hang"))
    results = run(probe, Schedule(period=0.01, deadline=0.2), attempts=10)
    assert probe.calls == 10
    assert all(r.outcome is Outcome.TIMEOUT for r in results)
    dues = [r.scheduled for r in results]
    assert [round(b - a, 6) for a, b in itertools.pairwise(dues)] == [0.01] * 9
    assert max(r.lag for r in results) < 0.05


def test_latency_counts_from_the_scheduled_start() -> None:
    results = run(ScriptedProbe({}), Schedule(period=0.01, deadline=1.0), attempts=3)
    for result in results:
        assert result.latency == pytest.approx(result.finished - result.scheduled)
        assert result.latency >= result.lag >= 0


def test_the_phase_shifts_every_attempt() -> None:
    results = run(ScriptedProbe({}), Schedule(period=0.02, deadline=1.0, phase=0.005), attempts=3)
    assert results[1].scheduled - results[0].scheduled == pytest.approx(0.02)


def test_a_stop_event_ends_the_schedule_early() -> None:
    async def main() -> list[ProbeResult]:
        stop = asyncio.Event()
        runner = OpenLoopRunner(
            ScriptedProbe({}), Schedule(period=0.01, deadline=1.0), on_result=lambda r: r.index == 2 and stop.set()
        )
        start = time.monotonic()
        return await runner.run(start, start + 60, stop)

    results = asyncio.run(main())
    assert 3 <= len(results) < 10


@pytest.mark.parametrize(
    ("period", "deadline", "phase", "message"),
    [
        (0, 1, 0, "period must be > 0 s"),
        (1, 0, 0, "deadline must be > 0 s"),
        (1, 1, -1, "phase must be >= 0 s"),
    ],
)
def test_bad_schedules_are_refused(period: float, deadline: float, phase: float, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        Schedule(period=period, deadline=deadline, phase=phase)
