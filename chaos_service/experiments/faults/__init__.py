"""Fault drivers: how the runner injects, verifies and removes each fault of a method.

`base` is the interface every driver implements; `engine` injects toxics through the
fault engine's API, `process` signals local processes, and `watchdog` is the detached
helper that resumes a paused process when its ttl is up.
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

__all__ = [
    "AppliedFault",
    "EngineFaultDriver",
    "FaultDriver",
    "FaultError",
    "FaultTargetError",
    "LocalProcessDriver",
    "driver_for",
    "drivers_for",
]
