"""Helpers for the fault-driver tests: plans, environments and running a coroutine."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
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
