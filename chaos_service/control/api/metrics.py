"""Prometheus metrics: runs by outcome, active faults, probe success of live runs, API latency.

Store-backed values are read when /metrics is scraped, so every replica reports the same
totals; API latency is this replica's own.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chaos_service.control.store import Store
from chaos_service.control.store.catalog import HALT

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.runs = Gauge("chaos_runs", "Runs in the store by status.", ["status"], registry=self.registry)
        self.active_faults = Gauge("chaos_active_faults", "Faults applied and not yet removed.", registry=self.registry)
        self.halted = Gauge("chaos_halted", "1 while the control plane is halted.", registry=self.registry)
        self.probe_success = Gauge(
            "chaos_probe_success_ratio",
            "Share of a live run's probe attempts that succeeded in the last seconds.",
            ["run", "experiment", "probe"],
            registry=self.registry,
        )
        self.api_latency = Histogram(
            "chaos_api_request_duration_seconds",
            "Control-plane API latency by route.",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    async def render(self, store: Store) -> bytes:
        self.runs.clear()
        for status, count in (await store.count_runs_by_status()).items():
            self.runs.labels(status).set(count)
        self.active_faults.set(len(await store.open_faults()))
        self.halted.set(1 if await store.get_state(HALT) is not None else 0)
        self.probe_success.clear()
        for row in await store.list_runs(status="running", limit=200):
            latest = await store.latest_event(row.id, "status")
            for probe in (latest.data.get("probes") or []) if latest else []:
                if probe.get("total"):
                    self.probe_success.labels(row.id, row.experiment, probe["name"]).set(probe["ok"] / probe["total"])
        return generate_latest(self.registry)


class LatencyMiddleware:
    """Times every HTTP request by its route template (not its path, which would explode labels)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            self.metrics.api_latency.labels(scope["method"], template, str(status[0])).observe(
                time.perf_counter() - started
            )
