"""Helpers for the fault-driver tests: plans, environments and running a coroutine."""

from __future__ import annotations

import asyncio
import os
import select
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from chaos_service.experiments.plan import FaultPlan
from chaos_service.sandbox.environment import Auth, Environment, Proxy

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def fault(kind: str, target: str, name: str = "f1", **fields: Any) -> FaultPlan:
    return FaultPlan(name=name, fault=kind, target=target, at=0.0, duration=10.0, **fields)


def environment(
    engine_url: str, proxies: dict[str, Proxy] | None = None, *, processes: dict[str, int] | None = None
) -> Environment:
    return Environment(
        engine=engine_url,
        proxies=proxies or {},
        endpoints={},
        direct={},
        auth=Auth(secret="not-used"),
        processes=dict(processes or {}),
    )


def live_restore_watchdogs() -> list[int]:
    """The restore watchdogs this process started that still run."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
            parent = int(stat.rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent == os.getpid() and b"restore_watchdog.py" in cmdline:
            found.append(int(entry.name))
    return found


def await_exit(pid: int, timeout: float = 10.0) -> None:
    """Block until ``pid`` (not necessarily a child of this process) has exited."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        readable, _, _ = select.select([pidfd], [], [], timeout)
        assert readable, f"pid {pid} did not exit within {timeout} s"
    finally:
        os.close(pidfd)
