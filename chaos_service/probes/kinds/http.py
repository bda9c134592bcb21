"""HTTP probe: one request per attempt, checked for its status, its latency and a JSON field.

Each attempt opens a new connection (no keep-alive between attempts), so every attempt
sees the target as a new client does. The proxy settings of the environment are not
used: the probe measures the target, not an intermediary.

Details (seconds from the attempt's start): ``status``, ``headers_s`` (the response
headers arrived), ``total_s`` (the body was read), ``bytes`` (body length) and, when a
field is checked, ``field`` (its value, or ``None`` when it is missing).

Outcomes: an unexpected status of 400 or more is an ERROR (the target answered with an
error); any other unexpected status, a slower answer than ``max_latency``, or a JSON
field that is missing or differs is INVALID.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Collection, Mapping
from typing import Any

import httpx

from chaos_service.probes.kinds.base import UNCHECKED, ProbeFailure, Stopwatch, positive, too_slow, verdict
from chaos_service.probes.records import Observation
from chaos_service.sandbox.environment import Environment

#: How much of an error body an ERROR's message quotes.
BODY_EXCERPT = 200
_MISSING = object()


class UnexpectedStatus(ProbeFailure):
    """The target answered with an error status the probe did not expect."""


class HttpProbe:
    """``method`` ``url``; each call is one attempt.

    ``expected_status`` is a status or a collection of statuses (default: any 2xx).
    ``json_field`` is a dotted path into the JSON body (``dependencies.postgres.status``;
    a list index is a number) whose value must equal ``json_value``.
    """

    def __init__(
        self,
        url: str,
        *,
        method: str = "GET",
        expected_status: int | Collection[int] | None = None,
        max_latency: float | None = None,
        json_field: str | None = None,
        json_value: object = UNCHECKED,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        timeout: float = 5.0,
        verify: bool | ssl.SSLContext = True,
        name: str = "http",
    ) -> None:
        positive(timeout, "timeout")
        positive(max_latency, "max_latency")
        self.name = name
        self.url = url
        self.method = method.upper()
        self.expected_status: frozenset[int] | None = (
            None
            if expected_status is None
            else frozenset([expected_status] if isinstance(expected_status, int) else expected_status)
        )
        self.max_latency = max_latency
        self.json_field = json_field
        self.json_value = json_value
        self.headers = dict(headers or {})
        self.body = body
        self.timeout = timeout
        # built once: creating a TLS context loads the CA bundle, too slow to do per attempt
        self._verify = httpx.create_ssl_context(verify) if verify is True else verify

    @classmethod
    def health(cls, env: Environment, **options: Any) -> HttpProbe:
        """A probe of the sandbox back-end's ``/health``: 200 with ``status`` == ``ok``."""
        options.setdefault("expected_status", 200)
        options.setdefault("json_field", "status")
        options.setdefault("json_value", "ok")
        options.setdefault("name", "health")
        return cls(env.endpoints["health"], **options)

    def expects(self, status: int) -> bool:
        if self.expected_status is None:
            return 200 <= status < 300
        return status in self.expected_status

    async def __call__(self) -> Observation:
        clock = Stopwatch()
        async with (
            httpx.AsyncClient(timeout=self.timeout, verify=self._verify, trust_env=False) as client,
            client.stream(self.method, self.url, headers=self.headers, content=self.body) as response,
        ):
            headers_at = clock.elapsed()
            body = await response.aread()
            total = clock.elapsed()
        status = response.status_code
        if not self.expects(status) and status >= 400:
            excerpt = body[:BODY_EXCERPT].decode("utf-8", "replace")
            raise UnexpectedStatus(f"HTTP {status} after {headers_at * 1000:.1f} ms: {excerpt}")
        details: dict[str, Any] = {"status": status, "headers_s": headers_at, "total_s": total, "bytes": len(body)}
        reasons = [
            None if self.expects(status) else f"unexpected status {status}",
            too_slow(total, self.max_latency),
        ]
        if self.json_field is not None:
            value, problem = _field(body, self.json_field)
            details["field"] = value
            if problem is None and self.json_value is not UNCHECKED and value != self.json_value:
                problem = f"{self.json_field} is {value!r}, expected {self.json_value!r}"
            reasons.append(problem)
        return verdict(reasons, details)


def _field(body: bytes, path: str) -> tuple[Any, str | None]:
    """The value at a dotted path in a JSON body, or why there is none."""
    try:
        value: Any = json.loads(body)
    except ValueError:
        return None, "the body is not JSON"
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part, _MISSING)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            value = _MISSING
        if value is _MISSING:
            return None, f"the body has no {path}"
    return value, None
