"""Open-loop probe scheduling.

Attempt ``i`` is due at ``start + phase + i * period`` and starts then, whether or not
earlier attempts finished, so a slow or hung system is sampled as often as a healthy
one (no coordinated omission). Each attempt has a deadline; one that has not answered
by then ends as `Outcome.TIMEOUT` at the deadline, attributed to its scheduled start.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from chaos_service.errors import InvalidInput
from chaos_service.probes.records import Observation, Outcome, ProbeResult

Clock = Callable[[], float]


class Probe(Protocol):
    """One kind of check against a target; each call is one attempt."""

    name: str

    def __call__(self) -> Awaitable[Observation]: ...


@dataclass(frozen=True, slots=True)
class Schedule:
    period: float  # seconds between scheduled starts
    deadline: float  # seconds an attempt may take, from its scheduled start
    phase: float = 0.0  # offset of the first attempt: N probes phase-shifted by period/N resolve period/N

    def __post_init__(self) -> None:
        if not self.period > 0:
            raise InvalidInput(f"a probe's period must be > 0 s, not {self.period:g}")
        if not self.deadline > 0:
            raise InvalidInput(f"a probe's deadline must be > 0 s, not {self.deadline:g}")
        if self.phase < 0:
            raise InvalidInput(f"a probe's phase must be >= 0 s, not {self.phase:g}")

    def due(self, start: float, index: int) -> float:
        return start + self.phase + index * self.period


class OpenLoopRunner:
    """Runs one probe on its schedule and keeps every result, in scheduled order."""

    def __init__(
        self,
        probe: Probe,
        schedule: Schedule,
        *,
        clock: Clock = time.monotonic,
        on_result: Callable[[ProbeResult], None] | None = None,
    ) -> None:
        self.probe = probe
        self.schedule = schedule
        self.clock = clock
        self.on_result = on_result
        self.results: list[ProbeResult] = []

    async def run(self, start: float, until: float, stop: asyncio.Event | None = None) -> list[ProbeResult]:
        """Start every attempt due in ``[start, until)`` (or until ``stop`` is set); wait for all to end."""
        attempts: list[asyncio.Task[ProbeResult]] = []
        index = 0
        while (due := self.schedule.due(start, index)) < until and not (stop is not None and stop.is_set()):
            wait = due - self.clock()
            if wait > 0:
                if stop is None:
                    await asyncio.sleep(wait)
                else:
                    try:
                        async with asyncio.timeout(wait):
                            await stop.wait()
                        break
                    except TimeoutError:
                        pass
            attempts.append(asyncio.create_task(self._attempt(index, due)))
            index += 1
        results = list(await asyncio.gather(*attempts))
        self.results.extend(results)
        return results

    async def _attempt(self, index: int, due: float) -> ProbeResult:
        started = self.clock()
        deadline = due + self.schedule.deadline
        timer = asyncio.timeout(max(0.0, deadline - started))
        try:
            async with timer:
                observation = await self.probe()
        except TimeoutError as exc:
            if timer.expired():
                error = "no answer by the deadline"
                result = ProbeResult(self.probe.name, index, due, started, deadline, Outcome.TIMEOUT, error)
            else:  # the probe's own client timed out first: an error, when it happened
                result = ProbeResult(self.probe.name, index, due, started, self.clock(), Outcome.ERROR, _describe(exc))
        except Exception as exc:  # every failure of the target is a result, never a crash of the prober
            result = ProbeResult(self.probe.name, index, due, started, self.clock(), Outcome.ERROR, _describe(exc))
        else:
            outcome = Outcome.OK if observation.valid else Outcome.INVALID
            result = ProbeResult(
                self.probe.name, index, due, started, self.clock(), outcome, observation.reason, observation.details
            )
        if self.on_result is not None:
            self.on_result(result)
        return result


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
