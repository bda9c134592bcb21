"""Fault drivers: how the runner injects, verifies and removes each fault of a method.

`base` is the interface every driver implements; `engine` injects toxics through the
fault engine's API, `toxiproxy` through a real Toxiproxy's, `process` signals local
processes and `docker` acts on containers (import it from there: the docker SDK is only
loaded where an environment has containers). `watchdogs` starts the detached helpers that
undo a fault at its deadline where the target has no time limit of its own: `watchdog`
(resumes a paused process) and `restore_watchdog` (HTTP requests to Toxiproxy or Docker).
"""

from __future__ import annotations

from chaos_service.experiments.faults.base import (
    AppliedFault,
    FaultDriver,
    FaultError,
    FaultTargetError,
    driver_for,
    drivers_for,
)
from chaos_service.experiments.faults.engine import EngineFaultDriver
from chaos_service.experiments.faults.process import LocalProcessDriver
from chaos_service.experiments.faults.toxiproxy import ToxiproxyFaultDriver

__all__ = [
    "AppliedFault",
    "EngineFaultDriver",
    "FaultDriver",
    "FaultError",
    "FaultTargetError",
    "LocalProcessDriver",
    "ToxiproxyFaultDriver",
    "driver_for",
    "drivers_for",
]
