"""A minimal keep-alive client for the engine's Toxiproxy API (stdlib ``http.client`` only)."""

from __future__ import annotations

import http.client
import json
import time
from typing import Any

from bench.procs import BenchError

HOST = "127.0.0.1"
TIMEOUT = 10.0
#: The API server drops keep-alive connections idle for a few seconds; reconnect before then.
MAX_IDLE = 2.0


class Api:
    """One persistent HTTP/1.1 connection to the engine API; each call raises BenchError on a bad status."""

    def __init__(self, port: int) -> None:
        self._conn = http.client.HTTPConnection(HOST, port, timeout=TIMEOUT)
        self._last_used = 0.0

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._conn.close()

    def call(self, method: str, path: str, body: dict[str, Any] | None, expect: int) -> Any:
        """Send one request and return its decoded JSON body (None when empty)."""
        if time.monotonic() - self._last_used > MAX_IDLE:
            self._conn.close()  # the next request opens a fresh connection
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        self._conn.request(method, path, body=payload, headers=headers)
        response = self._conn.getresponse()
        data = response.read()
        self._last_used = time.monotonic()
        if response.status != expect:
            raise BenchError(f"{method} {path}: HTTP {response.status} (expected {expect}): {data[:200]!r}")
        return json.loads(data) if data else None

    def timed_call(self, method: str, path: str, body: dict[str, Any] | None, expect: int) -> float:
        """Like `call`, returning the wall time in milliseconds from sending to the full response."""
        start = time.perf_counter()
        self.call(method, path, body, expect)
        return (time.perf_counter() - start) * 1000

    def create_proxy(self, name: str, upstream_port: int, protocol: str = "tcp") -> int:
        """Create a proxy (``tcp``, ``http`` or ``websocket``) to 127.0.0.1:`upstream_port` on a free
        port; returns its listen port."""
        body = {"name": name, "upstream": f"{HOST}:{upstream_port}", "listen": f"{HOST}:0", "protocol": protocol}
        proxy = self.call("POST", "/proxies", body, 201)
        return int(proxy["listen"].rsplit(":", 1)[1])

    def delete_proxy(self, name: str) -> None:
        self.call("DELETE", f"/proxies/{name}", None, 204)

    def add_toxic(self, proxy: str, body: dict[str, Any]) -> None:
        self.call("POST", f"/proxies/{proxy}/toxics", body, 200)

    def remove_toxic(self, proxy: str, name: str) -> None:
        self.call("DELETE", f"/proxies/{proxy}/toxics/{name}", None, 204)
