"""The interface between the experiment runner and whatever injects a fault.

A `FaultDriver` turns one `FaultPlan` into a change in the system under test and back:

* `FaultDriver.check` resolves the target without changing anything (the dry run);
* `FaultDriver.apply` injects the fault with a time limit (``ttl``) that is enforced
  outside this process — by the engine for toxics, by a detached watchdog for a paused
  process — so a fault never outlives the run that applied it, even if that run is
  killed with SIGKILL;
* `FaultDriver.verify` returns evidence that the fault took effect, if there is any yet;
* `FaultDriver.remove` undoes it, and is idempotent: a fault that is already gone
  (expired, or removed by someone else) is not an error.

The runner picks a driver per fault with `driver_for` from the list `drivers_for` builds
for an environment: the engine driver (toxics, ``partition``, ``down``), a Toxiproxy driver
for ``tcp`` proxies served by a real Toxiproxy, the Docker driver for containers and the
local process driver (``pause``, ``kill``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from chaos_service.errors import ChaosServiceError, InvalidInput
from chaos_service.experiments.plan import FaultPlan

if TYPE_CHECKING:
    from chaos_service.sandbox.environment import Environment


class FaultTargetError(InvalidInput):
    """A fault cannot be applied to its target as written: nothing was changed.

    Unknown fault type, unknown proxy or process, a toxic that the proxy's protocol does
    not have, bad attributes, or an engine that cannot be reached to find out.
    """


class FaultError(ChaosServiceError):
    """Applying or removing a fault failed at run time (the message says what is left behind)."""


@dataclass(frozen=True)
class AppliedFault:
    """A fault that a driver injected: everything needed to verify and remove it.

    ``handle`` is plain JSON-compatible data naming what was created — for the engine
    ``{"proxy": ..., "toxics": [...]}``, for a process ``{"pid": ..., "signal": ...}`` —
    so it can be recorded in a journal or a store and removed later by another process.
    ``applied_at`` and ``expires_at`` are `time.monotonic` values: by ``expires_at`` the
    fault is gone whether or not `FaultDriver.remove` was called.
    """

    name: str
    driver: str
    handle: dict[str, Any]
    applied_at: float
    expires_at: float
    ttl: float
    target: str = ""
    kind: str = ""  # the fault type, e.g. "latency", "partition", "pause"

    def describe(self) -> str:
        """One line for logs and journals, e.g. ``latency on redis (engine, ttl 40 s)``."""
        return f"{self.kind or self.name} on {self.target or '?'} ({self.driver}, ttl {self.ttl:g} s)"


@runtime_checkable
class FaultDriver(Protocol):
    """Injects and removes the faults of one kind of target."""

    #: Short name recorded in `AppliedFault.driver`, e.g. ``engine`` or ``process``.
    name: str
    #: The fault types it injects, for messages that list what is known.
    fault_types: tuple[str, ...]

    def handles(self, fault: FaultPlan) -> bool:
        """Whether this driver is the one for ``fault`` (by its type, and where several drivers
        take the same type, by its target)."""
        ...

    async def check(self, fault: FaultPlan) -> None:
        """Resolve the target and validate the fault without changing anything.

        Raises:
            FaultTargetError: the fault cannot be applied as written (the message says why).
        """
        ...

    async def apply(self, fault: FaultPlan, ttl: float) -> AppliedFault:
        """Inject ``fault``; it disappears by itself after ``ttl`` seconds at the latest.

        Raises:
            FaultTargetError: the target does not resolve (as `check`).
            FaultError: injecting failed; nothing of it is left behind.
        """
        ...

    async def verify(self, applied: AppliedFault) -> str | None:
        """Evidence that the fault took effect (a short sentence), or None if there is none yet.

        Returns quickly; it never waits for traffic. It is asked again once the fault is
        removed: a driver whose counters outlive the fault then reports the final count.
        """
        ...

    async def remove(self, applied: AppliedFault) -> None:
        """Undo the fault. A fault that is already gone is fine.

        Raises:
            FaultError: the fault could not be removed (it still expires by its ttl).
        """
        ...


def drivers_for(environment: Environment, *, run_id: str = "") -> list[FaultDriver]:
    """The drivers for ``environment``, in the order `driver_for` asks them.

    A Toxiproxy named by the environment takes the faults on ``tcp`` proxies; the engine
    takes every other proxy fault. Containers go to the Docker driver, local processes to
    the process driver. ``run_id`` makes the names of what the drivers create unique per
    run (toxic names), so concurrent runs of the same experiment never collide.
    """
    from chaos_service.experiments.faults.engine import EngineFaultDriver
    from chaos_service.experiments.faults.process import LocalProcessDriver

    drivers: list[FaultDriver] = []
    if environment.toxiproxy:
        from chaos_service.experiments.faults.toxiproxy import ToxiproxyFaultDriver

        drivers.append(ToxiproxyFaultDriver(environment, run_id=run_id))
    drivers.append(EngineFaultDriver(environment, run_id=run_id))
    if environment.containers:
        from chaos_service.experiments.faults.docker import DockerDriver

        drivers.append(DockerDriver(environment))
    drivers.append(LocalProcessDriver(environment))
    return drivers


def driver_for(fault: FaultPlan, drivers: list[FaultDriver]) -> FaultDriver:
    """The first driver that handles ``fault``.

    Raises:
        FaultTargetError: no driver knows the fault's type.
    """
    for driver in drivers:
        if driver.handles(fault):
            return driver
    known = sorted({kind for driver in drivers for kind in driver.fault_types})
    raise FaultTargetError(
        f"fault {fault.name!r}: unknown fault type {fault.fault!r} (known: {', '.join(known) or 'none'})"
    )


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_name(text: str) -> str:
    """``text`` with every run of characters other than letters, digits, ``_ . -`` made ``_``."""
    return _UNSAFE.sub("_", text).strip("_") or "fault"
