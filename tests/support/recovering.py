"""Recovery-time ground truth: a real HTTP server that answers 503 until a chosen instant.

It runs on its own thread and event loop on 127.0.0.1 and shares the process's
monotonic clock (`time.monotonic`) with the probes, so "healthy from t" is exact: a
request that reaches it at or after ``healthy_from`` gets 200, any earlier one 503.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import httpx

from chaos_service.probes.kinds.http import HttpProbe
from chaos_service.probes.schedule import OpenLoopRunner, Schedule
from chaos_service.probes.stats.recovery import Measured, Recovery, measure_recovery

RESPONSE = b"HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\ncontent-length: %d\r\nconnection: keep-alive\r\n\r\n%s"


class RecoveringServer:
    def __init__(self) -> None:
        self.healthy_from = -math.inf  # healthy from the start
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._thread = threading.Thread(target=self._run, name="recovering-server", daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def fail_until(self, instant: float) -> None:
        """Answer 503 to every request that arrives before ``instant`` (monotonic seconds)."""
        self.healthy_from = instant

    def start(self) -> Self:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the recovering server did not start")
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._handlers:
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.lower().split(b"\r\n")
                        if line.startswith(b"content-length:")
                    ),
                    0,
                )
                if length:
                    await reader.readexactly(length)
                healthy = time.monotonic() >= self.healthy_from
                body = b"ok" if healthy else b"warming up"
                status, reason = (200, b"OK") if healthy else (503, b"Service Unavailable")
                writer.write(RESPONSE % (status, reason, len(body), body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            self._handlers.discard(task)


@dataclass(frozen=True)
class Trial:
    """One fault with a known recovery: what the probes measured against the truth."""

    recovery: Recovery
    truth: float  # the target answers again this long after the fault was removed
    period: float

    @property
    def error(self) -> float | None:
        """Measured minus true recovery time; None if the measurement was censored."""
        ttr = self.recovery.ttr_after_clear
        return None if not isinstance(ttr, Measured) else ttr.seconds - self.truth


async def recovery_trial(
    engine_url: str,
    proxy: str,
    server: RecoveringServer,
    *,
    period: float,
    recover_after: float,
    outage: float,
    observe: float | None = None,
) -> Trial:
    """Probe ``http://<proxy>/`` every ``period`` s; disable the proxy for ``outage`` s, then
    re-enable it with the server answering 503 for ``recover_after`` s more; keep probing
    for ``observe`` s after that (default: the recovery and 12 periods)."""
    observe = recover_after + 12 * period if observe is None else observe
    async with httpx.AsyncClient(base_url=engine_url, timeout=10) as api:
        listen = (await api.get(f"/proxies/{proxy}")).json()["listen"]
        probe = HttpProbe(f"http://{listen}/", expected_status=200, timeout=period * 5)
        runner = OpenLoopRunner(probe, Schedule(period=period, deadline=period * 5))
        start = time.monotonic() + period
        window_end = start + 4 * period + outage + observe
        probing = asyncio.create_task(runner.run(start, window_end))
        await asyncio.sleep(start + 4 * period - time.monotonic())  # a healthy baseline first
        t_inject = time.monotonic()
        (await api.post(f"/proxies/{proxy}", json={"enabled": False})).raise_for_status()
        await asyncio.sleep(outage)
        (await api.post(f"/proxies/{proxy}", json={"enabled": True})).raise_for_status()
        t_clear = time.monotonic()
        server.fail_until(t_clear + recover_after)
        results = await probing
    recovery = measure_recovery(results, t_inject=t_inject, t_clear=t_clear, window_end=window_end, period=period)
    return Trial(recovery, recover_after, period)
