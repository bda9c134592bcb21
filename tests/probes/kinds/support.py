"""Running probes from synchronous tests, and faults on the session sandbox that always come off.

`Faults` adds toxics and disables proxies through the engine API of the shared sandbox;
`faults` (registered by this directory's conftest) removes whatever a test added and
re-enables every proxy it disabled, whatever the test did. Each toxic also carries a
ttl, so even a killed test run leaves no fault behind for long.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from chaos_service.probes.records import Observation, ProbeResult
from chaos_service.probes.schedule import OpenLoopRunner, Probe, Schedule

#: Seconds a toxic lives if a test never removes it.
TOXIC_TTL = 60
#: How much earlier than its nominal delay a fault may show: the engine arms its timers
#: slightly ahead of the due time, and the clock is read at a slightly different moment.
SLACK = 0.01
_names = itertools.count(1)


def attempt(probe: Probe) -> Observation:
    """One attempt, outside any schedule (an exception propagates)."""

    async def once() -> Observation:
        return await probe()

    return asyncio.run(once())


def scheduled(probe: Probe, attempts: int, period: float = 0.05, deadline: float = 5.0) -> list[ProbeResult]:
    """``attempts`` attempts of ``probe`` run open-loop by `OpenLoopRunner`, in scheduled order."""

    async def main() -> list[ProbeResult]:
        start = time.monotonic() + 0.01
        runner = OpenLoopRunner(probe, Schedule(period=period, deadline=deadline))
        return await runner.run(start, start + (attempts - 0.5) * period)

    results = asyncio.run(main())
    assert len(results) == attempts
    return results


class Faults:
    """Faults on the sandbox's proxies, applied through the engine API."""

    def __init__(self, engine: str) -> None:
        self.api = httpx.Client(base_url=engine, timeout=10.0, trust_env=False)
        self.toxics: list[tuple[str, str]] = []
        self.disabled_proxies: set[str] = set()

    def add(self, proxy: str, type: str, stream: str = "downstream", **attributes: Any) -> str:
        """Add a toxic; its name."""
        name = f"probe_test_{type}_{next(_names)}"
        body = {"name": name, "type": type, "stream": stream, "attributes": attributes, "ttl": TOXIC_TTL}
        response = self.api.post(f"/proxies/{proxy}/toxics", json=body)
        assert response.status_code == 200, response.text
        self.toxics.append((proxy, name))
        return name

    def remove(self, proxy: str, name: str) -> None:
        response = self.api.delete(f"/proxies/{proxy}/toxics/{name}")
        assert response.status_code in (204, 404), response.text
        self.toxics.remove((proxy, name))

    @contextmanager
    def toxic(self, proxy: str, type: str, stream: str = "downstream", **attributes: Any) -> Iterator[str]:
        """A toxic for the ``with`` block."""
        name = self.add(proxy, type, stream, **attributes)
        try:
            yield name
        finally:
            self.remove(proxy, name)

    def enable(self, proxy: str, enabled: bool) -> None:
        response = self.api.post(f"/proxies/{proxy}", json={"enabled": enabled})
        assert response.status_code == 200, response.text
        (self.disabled_proxies.discard if enabled else self.disabled_proxies.add)(proxy)

    @contextmanager
    def disabled(self, proxy: str) -> Iterator[None]:
        """A proxy switched off (refusing connections, open ones closed) for the ``with`` block."""
        self.enable(proxy, False)
        try:
            yield
        finally:
            self.enable(proxy, True)

    def fired(self, proxy: str, name: str) -> int:
        """How often a toxic took effect (counts survive its removal)."""
        stats = self.api.get(f"/proxies/{proxy}/stats").json()
        return int(stats["toxics"].get(name, {}).get("fired", 0))

    def clear(self) -> None:
        """Remove every toxic added and re-enable every proxy disabled."""
        for proxy, name in list(self.toxics):
            self.remove(proxy, name)
        for proxy in list(self.disabled_proxies):
            self.enable(proxy, True)
        self.api.close()
