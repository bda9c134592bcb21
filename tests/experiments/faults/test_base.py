"""Choosing a driver for a fault."""

from __future__ import annotations

import pytest

from chaos_service.experiments.faults import (
    EngineFaultDriver,
    FaultDriver,
    FaultTargetError,
    LocalProcessDriver,
    driver_for,
    drivers_for,
)
from tests.experiments.faults.support import environment, fault


def test_each_fault_type_goes_to_its_driver() -> None:
    drivers = drivers_for(environment("http://127.0.0.1:8474"), run_id="r1")
    assert all(isinstance(driver, FaultDriver) for driver in drivers)
    for kind in ("latency", "partition", "down", "http_error", "sse_cut", "ws_drop", "ws_refuse"):
        assert isinstance(driver_for(fault(kind, "x"), drivers), EngineFaultDriver)
    for kind in ("pause", "kill"):
        assert isinstance(driver_for(fault(kind, "x"), drivers), LocalProcessDriver)
    engine = drivers[0]
    assert isinstance(engine, EngineFaultDriver)
    assert engine.toxic_name(fault("latency", "x", name="slow db"), "upstream") == "chaos-r1-slow_db-upstream"


def test_an_unknown_fault_type_names_the_known_ones() -> None:
    drivers = drivers_for(environment("http://127.0.0.1:8474"))
    with pytest.raises(FaultTargetError, match=r"fault 'f1': unknown fault type 'explode' \(known: bandwidth, .*kill"):
        driver_for(fault("explode", "x"), drivers)
