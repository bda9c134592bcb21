"""The http protocol's runtime: a listener, its client connections and the upstream client.

An http proxy is an HTTP/1.1 reverse proxy to ``http://<upstream>``: requests are
forwarded with their headers (hop-by-hop ones removed, ``Host`` rewritten) and responses
stream back as they arrive. Its toxics act on responses, per request (see `plan`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import TYPE_CHECKING

import h11
import httpx

from chaos_service.engine.listener import Listener
from chaos_service.engine.model import Direction
from chaos_service.http_faults.exchange import ProxyContext, new_rng, serve_request
from chaos_service.http_faults.server import ClientConnection
from chaos_service.tls import client_context

if TYPE_CHECKING:
    from chaos_service.engine.model import ToxicEntry
    from chaos_service.engine.proxy import Proxy
    from chaos_service.engine.stats import ProxyStats

log = logging.getLogger(__name__)

#: How long a request waits for the upstream to accept its connection (then 502).
CONNECT_TIMEOUT = 10.0




class UpstreamClients:
    """Makes upstream clients: HTTP/1.1, pooled, no read timeout (the client decides how
    long to wait), sharing one TLS context (building one takes milliseconds).

    Each client connection gets an upstream client of its own, so a keep-alive connection
    to the upstream follows a keep-alive connection from the client: the pool's
    bookkeeping (linear in its connections, per request) stays small however many
    streams are open, and closing a client connection closes its upstream connection.
    """

    def __call__(self) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=64, keepalive_expiry=30.0)
        transport = httpx.AsyncHTTPTransport(verify=client_context(), limits=limits)
        return httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(None, connect=CONNECT_TIMEOUT),
            follow_redirects=False,
            trust_env=False,
        )


class HttpRuntime:
    """Runs one http proxy while it is enabled: the `ProxyRuntime` of protocol ``http``."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.stats: ProxyStats = proxy.stats
        self.connections: set[ClientConnection] = set()
        self._context: ProxyContext | None = None
        self._clients: UpstreamClients | None = None
        #: Each client connection's own upstream client (see `UpstreamClients`).
        self._upstreams: dict[ClientConnection, httpx.AsyncClient] = {}
        self._listener = Listener(proxy.name)

    def start(self, listener: socket.socket) -> None:
        if self._clients is None:
            self._clients = UpstreamClients()
        self._context = ProxyContext(self.proxy)
        self._listener.start(listener, self._accepted)

    def stop(self, keep_listener: bool = False) -> socket.socket | None:
        """Stop accepting, close every connection and cancel the requests in flight.

        The listening socket is closed unless ``keep_listener``: then it is returned open.
        """
        listener = self._listener.stop(keep_listener)
        for connection in list(self.connections):
            connection.close()  # its task closes its upstream client as it ends
        if self._context is not None:
            self._context.runs.clear()
            self._context = None
        return listener

    def close_connections(self) -> None:
        """The upstream changed: end the requests in flight (they talk to the old one).

        Idle keep-alive connections stay open: their next request goes to the new
        upstream, and closing them would only race with clients reusing them.
        """
        for connection in list(self.connections):
            if connection.busy:
                connection.close()

    # -- stats --------------------------------------------------------------------------

    def open_connections(self) -> int:
        return len(self.connections)

    def live_bytes(self) -> dict[Direction, int]:
        # Bytes are counted as they are read, straight into the proxy's stats.
        return dict.fromkeys(Direction, 0)

    # -- toxics -------------------------------------------------------------------------

    def toxic_added(self, entry: ToxicEntry) -> None:
        pass  # requests are planned when they arrive: nothing in flight changes

    def toxic_updated(self, entry: ToxicEntry) -> None:
        if self._context is not None:
            self._context.states.pop(entry.name, None)
            self._context.runs.updated(entry.name, entry.toxic)  # type: ignore[arg-type]

    def toxic_removed(self, entry: ToxicEntry) -> None:
        if self._context is not None:
            self._context.states.pop(entry.name, None)
            self._context.runs.removed(entry.name)

    # -- connections (the `server.Host` protocol) -----------------------------------------

    async def handle(self, connection: ClientConnection, request: h11.Request, body: bytes) -> None:
        assert self._context is not None and self._clients is not None, "a request on a stopped proxy"
        client = self._upstreams.get(connection)
        if client is None:
            client = self._upstreams[connection] = self._clients()
        await serve_request(self._context, connection, client, request, body)

    async def closed(self, connection: ClientConnection) -> None:
        self.connections.discard(connection)
        client = self._upstreams.pop(connection, None)
        if client is not None:
            await client.aclose()

    async def _accepted(self, client: socket.socket) -> None:
        connection = ClientConnection(self, new_rng(self.proxy))
        self.connections.add(connection)
        self.stats.connections += 1
        try:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            loop = asyncio.get_running_loop()
            await loop.connect_accepted_socket(lambda c=connection: c, client)  # type: ignore[misc]
        except (OSError, asyncio.CancelledError) as exc:
            if connection.transport is None:  # never got going: nobody else will close it
                self.connections.discard(connection)
                with contextlib.suppress(OSError):
                    client.close()
            if isinstance(exc, asyncio.CancelledError):
                raise
            log.info("proxy %s: client connection failed: %s", self.proxy.name, exc)
