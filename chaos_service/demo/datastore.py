"""The demo's first part: a private Redis behind a tcp proxy, through a series of faults.

Each scenario injects faults through the engine's Toxiproxy API into connections opened
before the faults, sends Redis commands through the proxy with a real client, and
reports what the client saw.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from chaos_service.demo.common import toxics_applied
from chaos_service.sandbox.datastores import RedisServer


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: int
    failed: int
    latencies_ms: list[float]
    errors: list[str]

    def describe(self) -> str:
        parts = [f"{self.ok}/{self.ok + self.failed} ok"]
        if self.latencies_ms:
            parts.append(f"p50 {statistics.median(self.latencies_ms):8.2f} ms")
            parts.append(f"max {max(self.latencies_ms):8.2f} ms")
        if self.errors:
            parts.append(f"errors: {', '.join(sorted(set(self.errors)))}")
        return "  ".join(parts)


@dataclass(frozen=True, slots=True)
class Scenario:
    title: str
    toxics: list[dict[str, Any]]
    command: Callable[[redis.Redis], object]
    attempts: int
    timeout: float = 2.0


def connect(port: int, timeout: float) -> redis.Redis:
    """A connected client that reports failures as they happen (no automatic retries)."""
    client = redis.Redis(
        port=port, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )
    client.ping()
    return client


def measure(clients: list[redis.Redis], command: Callable[[redis.Redis], object]) -> Outcome:
    """Run ``command`` once on each client, timing it."""
    ok, latencies, errors = 0, [], []
    for client in clients:
        started = time.perf_counter()
        try:
            command(client)
        except redis.RedisError as exc:
            errors.append(type(exc).__name__)
        else:
            ok += 1
            latencies.append((time.perf_counter() - started) * 1000)
        finally:
            client.close()
    return Outcome(ok, len(clients) - ok, latencies, errors)


def ping(client: redis.Redis) -> object:
    return client.ping()


def get_big(client: redis.Redis) -> object:
    return client.get("demo:big")


def scenarios() -> list[Scenario]:
    return [
        Scenario("no faults", [], ping, 200),
        Scenario(
            "latency 100 ms ± 10 ms on replies",
            [{"type": "latency", "attributes": {"latency": 100, "jitter": 10}}],
            ping,
            10,
        ),
        Scenario(
            "bandwidth 50 KB/s, GET of 100 KB",
            [{"type": "bandwidth", "attributes": {"rate": 50}}],
            get_big,
            2,
            timeout=10.0,
        ),
        Scenario(
            "black hole (timeout 0) on requests",
            [{"type": "timeout", "stream": "upstream", "attributes": {"timeout": 0}}],
            ping,
            3,
            timeout=0.3,
        ),
        Scenario("reset_peer on requests", [{"type": "reset_peer", "stream": "upstream"}], ping, 3),
        Scenario("all toxics removed", [], ping, 200),
    ]


def run(api: httpx.Client, say: Callable[[str], None]) -> None:
    """Put a private Redis behind a tcp proxy and show each fault from redis-py's side."""
    with RedisServer() as server:
        created = api.post("/proxies", json={"name": "redis", "upstream": f"127.0.0.1:{server.port}"})
        created.raise_for_status()
        port = int(created.json()["listen"].rsplit(":", 1)[1])
        say(f"redis: a private Redis on 127.0.0.1:{server.port} behind tcp proxy {created.json()['listen']}")
        redis.Redis(port=server.port).set("demo:big", b"x" * 100_000)
        say(f"  {'(connections opened before the faults)':<38} result")
        for scenario in scenarios():
            clients = [connect(port, scenario.timeout) for _ in range(scenario.attempts)]
            with toxics_applied(api, "redis", scenario.toxics):
                say(f"  {scenario.title:<38} {measure(clients, scenario.command).describe()}")
        say("  a toxic with a ttl: latency 300 ms for 1 s, then the engine removes it by itself")
        toxic = {"type": "latency", "attributes": {"latency": 300}, "ttl": 1.0}
        warm = [connect(port, 2.0)]
        api.post("/proxies/redis/toxics", json=toxic).raise_for_status()
        added = time.monotonic()
        slow = measure(warm, ping)
        deadline = added + 5.0
        while api.get("/proxies/redis/toxics").json() and time.monotonic() < deadline:
            time.sleep(0.05)  # polling the API is the point here: this is what a user would see
        gone_after = time.monotonic() - added
        fast = measure([connect(port, 2.0) for _ in range(20)], ping)
        say(f"  {'while it lasts':<38} {slow.describe()}")
        say(f"  {f'gone after {gone_after:.2f} s':<38} {fast.describe()}")
        api.delete("/proxies/redis").raise_for_status()
