"""Reconnect probe: a new WebSocket connection per attempt, timed from handshake to pong.

Each attempt signs a fresh token (`issue_token`), opens a new connection to the chat
endpoint, sends ``{"type": "ping"}`` and waits for ``{"type": "pong"}``, then closes.
Run on a schedule it times how fast clients can connect again after a fault: a
refused handshake, a close code or a missing pong shows on the attempt it happens to.
Messages that arrive before the pong (events of the user's runs) are skipped and
counted.

Details (seconds from the attempt's start): ``handshake_s`` (the 101 answer arrived:
the connection is open), ``pong_s`` (the pong arrived), ``rtt_s`` (ping sent to pong),
``closed_s`` (the closing handshake ended), ``skipped`` (messages before the pong).

A refused handshake (an HTTP status instead of 101) or a close by the server before
the pong (e.g. 4401 for a refused token) is an ERROR whose message names the status,
or the close code and reason. An ``error`` message or one that is not JSON instead of
the pong, or an attempt slower than ``max_latency``, is INVALID.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from chaos_service.probes.kinds.base import ProbeFailure, Stopwatch, positive, too_slow, verdict
from chaos_service.probes.records import Observation
from chaos_service.sandbox.chat.auth import issue_token
from chaos_service.sandbox.environment import Environment

#: Messages skipped while waiting for the pong before the attempt gives up on it.
MAX_SKIPPED = 10_000


class UnexpectedClose(ProbeFailure):
    """The server closed the connection before the pong."""

    def __init__(self, code: int | None, reason: str) -> None:
        self.code = code
        self.reason = reason
        described = "without a close frame" if code is None else f"with {code}" + (f" ({reason})" if reason else "")
        super().__init__(f"the server closed the connection {described}")


class ReconnectProbe:
    """Connect to ``url`` (``ws://…/ws``) as ``user`` with a token signed by ``secret``; each call is one attempt."""

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        user: str = "chaos-probe",
        token_ttl: float = 300.0,
        open_timeout: float = 5.0,
        pong_timeout: float = 5.0,
        close_timeout: float = 2.0,
        max_latency: float | None = None,
        name: str = "reconnect",
    ) -> None:
        for value, what in (
            (token_ttl, "token_ttl"),
            (open_timeout, "open_timeout"),
            (pong_timeout, "pong_timeout"),
            (close_timeout, "close_timeout"),
            (max_latency, "max_latency"),
        ):
            positive(value, what)
        self.name = name
        self.url = url
        self.secret = secret
        self.user = user
        self.token_ttl = token_ttl
        self.open_timeout = open_timeout
        self.pong_timeout = pong_timeout
        self.close_timeout = close_timeout
        self.max_latency = max_latency

    @classmethod
    def from_environment(cls, env: Environment, **options: Any) -> ReconnectProbe:
        """A probe of the sandbox's chat endpoint through its proxy, with the sandbox's secret."""
        return cls(env.endpoints["chat_ws"], env.auth.secret, **options)

    def uri(self) -> str:
        """The endpoint with a freshly signed token."""
        token = issue_token(self.secret, self.user, self.token_ttl)
        return f"{self.url}{'&' if '?' in self.url else '?'}token={quote(token)}"

    async def __call__(self) -> Observation:
        clock = Stopwatch()
        async with connect(
            self.uri(),
            open_timeout=self.open_timeout,
            close_timeout=self.close_timeout,
            proxy=None,
            compression=None,
        ) as connection:
            handshake = clock.elapsed()
            try:
                await connection.send(json.dumps({"type": "ping"}))
                sent = clock.elapsed()
                problem, skipped = await _pong(connection, self.pong_timeout)
            except ConnectionClosed as exc:
                raise UnexpectedClose(exc.rcvd.code if exc.rcvd else None, exc.rcvd.reason if exc.rcvd else "") from exc
            except BaseException:
                connection.transport.abort()  # a stalled or cancelled attempt never waits for a closing handshake
                raise
            answered = clock.elapsed()
        closed = clock.elapsed()
        details = {
            "handshake_s": handshake,
            "pong_s": answered,
            "rtt_s": answered - sent,
            "closed_s": closed,
            "skipped": skipped,
        }
        return verdict([problem, too_slow(answered, self.max_latency)], details)


async def _pong(connection: ClientConnection, timeout: float) -> tuple[str | None, int]:
    """Wait for the pong: why the answer is wrong (``None`` if it is right), and how many messages were skipped."""
    skipped = 0
    try:
        async with asyncio.timeout(timeout):
            while skipped < MAX_SKIPPED:
                raw = await connection.recv()
                try:
                    message = json.loads(raw)
                except ValueError:
                    return f"a message that is not JSON: {str(raw)[:80]!r}", skipped
                kind = message.get("type") if isinstance(message, dict) else None
                if kind == "pong":
                    return None, skipped
                if kind == "error":
                    return f"error instead of pong: {message.get('error')!r}", skipped
                skipped += 1
    except TimeoutError:
        raise TimeoutError(f"no pong within {timeout:g} s ({skipped} other message(s))") from None
    return f"no pong among {MAX_SKIPPED} messages", skipped
