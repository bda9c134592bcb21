"""What a running experiment looks like right now: phase, active faults, probe success, time.

Pure: a `RunStatus` is taken from the runner's state and a clock reading, and described as
text, so that the terminal views (live or plain) and their tests share one source.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from chaos_service.probes.records import ProbeResult

#: Probe success is shown over the most recent attempts only, so that it shows a fault's effect.
RECENT = 5.0


@dataclass(frozen=True)
class ProbeTally:
    """One probe's attempts that finished within the last `RECENT` seconds."""

    name: str
    ok: int
    total: int

    def describe(self) -> str:
        return f"{self.name} {self.ok}/{self.total}"


@dataclass(frozen=True)
class RunStatus:
    phase: str
    active_faults: tuple[str, ...]
    probes: tuple[ProbeTally, ...]
    elapsed: float
    #: The planned length of the run; 0 until the run has started.
    planned: float

    @property
    def remaining(self) -> float:
        return max(0.0, self.planned - self.elapsed)

    @property
    def fraction(self) -> float:
        """How far through its planned length the run is, 0..1."""
        return min(1.0, self.elapsed / self.planned) if self.planned > 0 else 0.0

    def describe_faults(self) -> str:
        return ", ".join(self.active_faults) or "none"

    def describe_probes(self) -> str:
        return ", ".join(tally.describe() for tally in self.probes) or "-"

    def describe_time(self) -> str:
        return f"{self.elapsed:.0f}/{self.planned:.0f} s, {self.remaining:.0f} s left"

    def describe(self) -> str:
        """One line: ``method: faults partition; probes ok (last 5 s) chat 3/4; 12/25 s, 13 s left``."""
        return (
            f"{self.phase}: faults {self.describe_faults()}; probes ok (last {RECENT:g} s) "
            f"{self.describe_probes()}; {self.describe_time()}"
        )


def run_status(
    phase: str,
    active_faults: Iterable[str],
    results: Mapping[str, Sequence[ProbeResult]],
    now: float,
    t0: float,
    t_end: float,
) -> RunStatus:
    """The status at monotonic time ``now`` of a run that started at ``t0`` and ends at ``t_end``."""
    if t0 <= 0:
        return RunStatus(phase, tuple(active_faults), (), 0.0, 0.0)
    since = now - RECENT
    tallies = []
    for name, probe_results in results.items():
        # Results are kept in completion order, so a slow attempt can sit among newer ones.
        recent = [result.ok for result in probe_results if result.scheduled >= since]
        tallies.append(ProbeTally(name, sum(recent), len(recent)))
    return RunStatus(phase, tuple(active_faults), tuple(tallies), max(0.0, now - t0), max(0.0, t_end - t0))
