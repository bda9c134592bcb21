"""Telling a game day's webhook what happened: one JSON POST per firing, retried when the receiver is
unreachable or failing (connection errors, timeouts, 5xx), never raising.

The payload is ``{"schedule", "firing", "fire_time" (ISO-8601 UTC), "outcome", "runs"}`` plus
``"reason"`` when the firing was skipped; what the receiver answered is kept with the firing.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import httpx

log = logging.getLogger(__name__)

USER_AGENT = "chaos-service-gamedays"


def payload(
    schedule_id: str, firing_id: int, fire_time: datetime, outcome: str, runs: list[dict[str, Any]], reason: str = ""
) -> dict[str, Any]:
    """The JSON body posted for one firing."""
    body: dict[str, Any] = {
        "schedule": schedule_id,
        "firing": firing_id,
        "fire_time": fire_time.astimezone(UTC).isoformat(),
        "outcome": outcome,
        "runs": runs,
    }
    if reason:
        body["reason"] = reason
    return body


async def notify(
    url: str, payload: dict[str, Any], *, timeout: float = 10.0, attempts: int = 3, backoff: float = 0.5
) -> dict[str, Any]:
    """POST ``payload`` as JSON to ``url``: ``{"status": code, "attempts": n}`` for the last answer, or
    ``{"error": message, "attempts": n}`` when none came. Connection errors, timeouts and 5xx answers are
    retried up to ``attempts`` times in all, waiting ``backoff`` seconds, then twice that, and so on."""
    attempts = max(1, attempts)
    attempt = 1
    result: dict[str, Any] = {}
    try:
        async with httpx.AsyncClient(timeout=timeout, headers={"user-agent": USER_AGENT}) as client:
            for attempt in range(1, attempts + 1):
                try:
                    response = await client.post(url, json=payload)
                except httpx.UnsupportedProtocol:
                    raise
                except httpx.TransportError as exc:
                    result = {"error": _describe(exc), "attempts": attempt}
                else:
                    result = {"status": response.status_code, "attempts": attempt}
                    if response.status_code < 500:
                        return result
                if attempt < attempts:
                    await asyncio.sleep(backoff * 2 ** (attempt - 1))
    except (httpx.HTTPError, httpx.InvalidURL, ValueError, TypeError) as exc:
        # A URL httpx cannot use or a payload that is not JSON: retrying would not help.
        result = {"error": _describe(exc), "attempts": attempt}
    log.warning("webhook %s: %s", url, result)
    return result


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
