"""``GET /health``: each dependency checked through its proxy, and the back-end's own counts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chaos_service.sandbox.chat.service import ChatService


async def _check(probe: Callable[[], Awaitable[float]], timeout: float) -> dict[str, Any]:
    try:
        async with asyncio.timeout(timeout):
            latency = await probe()
    except Exception as exc:  # any failure is the answer, not an error of the endpoint
        message = str(exc) or type(exc).__name__
        return {"status": "down", "latency_ms": None, "error": message}
    return {"status": "ok", "latency_ms": round(latency, 2), "error": None}


async def health_report(service: ChatService) -> tuple[int, dict[str, Any]]:
    """The HTTP status (200, or 503 when Postgres is down) and the report."""
    timeout = service.settings.health_timeout
    postgres, redis, llm = await asyncio.gather(
        _check(service.store.ping, timeout), _check(service.fanout.ping, timeout), _check(service.llm.check, timeout)
    )
    if redis["status"] == "ok" and not service.fanout.healthy:
        redis = {**redis, "status": "degraded", "error": "events are being delivered directly"}
    if postgres["status"] != "ok":
        status = "down"
    elif redis["status"] != "ok" or llm["status"] != "ok":
        status = "degraded"
    else:
        status = "ok"
    report = {
        "status": status,
        "dependencies": {"postgres": postgres, "redis": redis, "llm": llm},
        "sessions": service.hub.sessions,
        "active_runs": service.active_runs,
        "defects": sorted(service.settings.defects),
    }
    return (503 if status == "down" else 200), report
