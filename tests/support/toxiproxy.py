"""A stand-in for a real Toxiproxy: a second engine behind a front that records every API call.

No Toxiproxy binary runs on the test machines, so a second instance of the engine plays it.
The front forwards each request unchanged and keeps (method, path, JSON body), so a test can
assert that only Toxiproxy's plain v2 API was used: no ``stats`` endpoint, no ``ttl`` or
``protocol`` field — nothing a real Toxiproxy would ignore or refuse.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.support.engine import EngineProcess

#: Toxiproxy v2's routes (method, path pattern).
V2_ROUTES = [
    (method, re.compile(pattern))
    for method, pattern in [
        ("GET", r"/version"),
        ("GET", r"/proxies"),
        ("POST", r"/proxies"),
        ("POST", r"/populate"),
        ("POST", r"/reset"),
        ("GET", r"/proxies/[^/]+"),
        ("POST", r"/proxies/[^/]+"),
        ("PATCH", r"/proxies/[^/]+"),
        ("DELETE", r"/proxies/[^/]+"),
        ("GET", r"/proxies/[^/]+/toxics"),
        ("POST", r"/proxies/[^/]+/toxics"),
        ("GET", r"/proxies/[^/]+/toxics/[^/]+"),
        ("POST", r"/proxies/[^/]+/toxics/[^/]+"),
        ("PATCH", r"/proxies/[^/]+/toxics/[^/]+"),
        ("DELETE", r"/proxies/[^/]+/toxics/[^/]+"),
    ]
]
#: The fields of a toxic that Toxiproxy reads.
V2_TOXIC_FIELDS = {"name", "type", "stream", "toxicity", "attributes"}


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: Any


class ToxiproxyStandIn:
    """``url`` looks like a Toxiproxy; `calls` is everything asked of it."""

    def __init__(self) -> None:
        self.engine = EngineProcess("--seed", "2").start()
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._upstream = httpx.Client(base_url=self.engine.url, timeout=10.0, trust_env=False)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def client(self) -> httpx.Client:
        """A client that talks to the engine directly (not recorded)."""
        return self.engine.client()

    def not_plain_v2(self) -> list[str]:
        """Every recorded call a real Toxiproxy would not understand as sent."""
        with self._lock:
            calls = list(self.calls)
        problems = []
        for call in calls:
            creates_toxic = call.method == "POST" and call.path.endswith("/toxics") and isinstance(call.body, dict)
            extra = set(call.body) - V2_TOXIC_FIELDS if creates_toxic else set()
            if not any(method == call.method and pattern.fullmatch(call.path) for method, pattern in V2_ROUTES):
                problems.append(f"{call.method} {call.path}: not a Toxiproxy v2 route")
            elif extra:
                problems.append(f"{call.method} {call.path}: fields Toxiproxy does not have: {sorted(extra)}")
        return problems

    def record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._upstream.close()
        self.engine.stop()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stand_in = self

        class Forward(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                stand_in.record(Call(self.command, self.path.split("?")[0], body))
                answer = stand_in._upstream.request(
                    self.command, self.path, content=raw, headers={"Content-Type": "application/json"}
                )
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("content-type", "application/json"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PATCH = do_DELETE = _forward

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Forward


@pytest.fixture(scope="module")
def toxiproxy_stand_in() -> Iterator[ToxiproxyStandIn]:
    """One stand-in per test module."""
    stand_in = ToxiproxyStandIn()
    yield stand_in
    stand_in.close()


@pytest.fixture
def toxiproxy(toxiproxy_stand_in: ToxiproxyStandIn) -> Iterator[ToxiproxyStandIn]:
    """The module's stand-in with nothing recorded yet; its proxies are deleted after the test."""
    toxiproxy_stand_in.calls.clear()
    yield toxiproxy_stand_in
    with toxiproxy_stand_in.client() as client:
        for proxy in client.get("/proxies").json():
            client.delete(f"/proxies/{proxy}")
