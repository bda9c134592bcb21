"""The websocket protocol's runtime: terminate client WebSockets and relay them upstream.

For each client handshake the runtime first applies ``ws_refuse`` toxics, then opens a
WebSocket to ``ws://<upstream><path and query>`` carrying the client's end-to-end headers
(``Authorization``, ``Cookie``, ``Origin``, …) and subprotocols, and only then answers
the client: with the upstream's subprotocol on success, with the upstream's own status,
headers and body when it refuses, and with 502 when it cannot be reached. Compression
is off on both hops (the proxy relays messages, it does not need to shrink them).
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING

from websockets.asyncio.client import connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import InvalidStatus
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from chaos_service.engine.listener import Listener
from chaos_service.engine.model import Direction
from chaos_service.ws_faults import handshake
from chaos_service.ws_faults.connection import WsConnection
from chaos_service.ws_faults.wire import RelayClientConnection, RelayServerConnection, begin_close

if TYPE_CHECKING:
    from chaos_service.engine.model import ToxicEntry
    from chaos_service.engine.proxy import Proxy

log = logging.getLogger(__name__)


class _WireLogger(logging.LoggerAdapter[logging.Logger]):
    """websockets' own log: its per-connection INFO lines only when the engine logs at DEBUG."""

    def isEnabledFor(self, level: int) -> bool:
        return self.logger.isEnabledFor(level if level >= logging.WARNING else logging.DEBUG)


_server_log = _WireLogger(logging.getLogger("websockets.server"))
_client_log = _WireLogger(logging.getLogger("websockets.client"))

#: Seconds the upstream has to complete its handshake before the client gets a 502.
DIAL_TIMEOUT = 10.0
#: Seconds a client has to complete its handshake (the upstream's included).
OPEN_TIMEOUT = DIAL_TIMEOUT + 5.0
#: Largest message relayed, in bytes (websockets' default is 1 MiB); larger ones close
#: the connection with 1009.
MAX_MESSAGE = 16 * 1024 * 1024


class WebSocketRuntime:
    """Runs one websocket proxy while it is enabled: its listener and its connections."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.connections: set[WsConnection] = set()
        self._listener = Listener(proxy.name)
        self._server: Server | None = None
        self._generation = 0  # bumped by stop: a server that finishes starting late is closed
        self._stopped = True
        self._handshake_rng = random.Random(proxy.rng.getrandbits(64))
        self._dialing: dict[ServerConnection, asyncio.Task[RelayClientConnection]] = {}
        self._dialed: dict[ServerConnection, RelayClientConnection] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- ProxyRuntime -------------------------------------------------------------------

    def start(self, listener: socket.socket) -> None:
        self._listener.start(listener)  # websockets' server accepts, on a dup of it (below)
        self._stopped = False
        self._generation += 1
        # The server gets a duplicate of the listening socket, so that closing the server
        # never closes the socket `stop(keep_listener=True)` hands back.
        task = asyncio.get_running_loop().create_task(self._serve(listener.dup(), self._generation))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def stop(self, keep_listener: bool = False) -> socket.socket | None:
        """Stop accepting and close every connection (1001, "going away").

        The listening socket is closed unless ``keep_listener``, in which case it is
        returned still open.
        """
        self._stopped = True
        self._generation += 1
        if self._server is not None:
            self._server.server.close()
            self._server = None
        listener = self._listener.stop(keep_listener)
        self.close_connections()
        return listener

    def close_connections(self) -> None:
        """Close every connection (1001, "going away") and drop handshakes in progress;
        keep listening (the upstream changed)."""
        for client, task in list(self._dialing.items()):
            task.cancel()
            client.transport.abort()
        for client, upstream in list(self._dialed.items()):
            begin_close(upstream, 1001, "going away")
            client.transport.abort()
        self._dialed.clear()
        for connection in list(self.connections):
            connection.shutdown()

    def open_connections(self) -> int:
        return len(self.connections)

    def live_bytes(self) -> dict[Direction, int]:
        return dict.fromkeys(Direction, 0)  # counted into proxy.stats as messages arrive

    def toxic_added(self, entry: ToxicEntry) -> None:
        for connection in self.connections:
            connection.toxic_added(entry)

    def toxic_updated(self, entry: ToxicEntry) -> None:
        for connection in self.connections:
            connection.toxic_updated(entry)

    def toxic_removed(self, entry: ToxicEntry) -> None:
        for connection in self.connections:
            connection.toxic_removed(entry)

    # -- serving ------------------------------------------------------------------------

    async def _serve(self, sock: socket.socket, generation: int) -> None:
        try:
            server = await serve(
                self._handle,
                sock=sock,
                process_request=self._process_request,
                process_response=self._process_response,
                select_subprotocol=self._select_subprotocol,
                compression=None,
                server_header=None,
                create_connection=RelayServerConnection,
                max_size=MAX_MESSAGE,
                open_timeout=OPEN_TIMEOUT,
                logger=_server_log,
            )
        except BaseException:
            sock.close()
            raise
        if generation != self._generation:  # stopped while starting
            server.server.close()
            return
        self._server = server

    async def _process_request(self, client: ServerConnection, request: Request) -> Response | None:
        if self._stopped:
            return handshake.http_response(503, b"proxy stopped\n")
        refused = handshake.choose_refusal(self.proxy.ordered_toxics(), self._handshake_rng)
        if refused is not None:
            entry, toxic = refused
            self.proxy.stats.toxic_fired(entry.name)
            return handshake.refusal(toxic)
        dial = asyncio.get_running_loop().create_task(self._dial(request))
        self._dialing[client] = dial
        try:
            await asyncio.wait([dial])
        except asyncio.CancelledError:
            dial.cancel()
            raise
        finally:
            self._dialing.pop(client, None)
        if dial.cancelled():
            return handshake.http_response(503, b"proxy stopped\n")
        exc = dial.exception()
        if isinstance(exc, InvalidStatus):
            return handshake.upstream_refusal(exc.response)
        if exc is not None:
            log.info("proxy %s: upstream %s unreachable: %r", self.proxy.name, self.proxy.upstream, exc)
            text = f"upstream {self.proxy.upstream} unreachable: {exc}\n"
            return handshake.http_response(502, text.encode())
        upstream = dial.result()
        if client.connection_lost_waiter.done() or self._stopped:
            begin_close(upstream, 1001, "going away")
            return handshake.http_response(503, b"proxy stopped\n")
        self._dialed[client] = upstream
        client.connection_lost_waiter.add_done_callback(lambda _: self._abandon(client))
        return None

    async def _dial(self, request: Request) -> RelayClientConnection:
        upstream = await connect(
            handshake.upstream_uri(self.proxy.upstream, request),
            additional_headers=handshake.end_to_end_headers(request.headers),
            subprotocols=handshake.offered_subprotocols(request),
            compression=None,
            user_agent_header=None,
            proxy=None,
            open_timeout=DIAL_TIMEOUT,
            max_size=MAX_MESSAGE,
            create_connection=RelayClientConnection,
            logger=_client_log,
        )
        assert isinstance(upstream, RelayClientConnection)
        return upstream

    def _abandon(self, client: ServerConnection) -> None:
        """The client went away before its handler took the upstream connection."""
        upstream = self._dialed.pop(client, None)
        if upstream is not None:
            begin_close(upstream, 1001, "going away")

    def _select_subprotocol(self, client: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
        upstream = self._dialed.get(client)
        return None if upstream is None else upstream.subprotocol

    def _process_response(self, client: ServerConnection, request: Request, response: Response) -> None:
        upstream = self._dialed.get(client)
        if response.status_code == 101 and upstream is not None and upstream.response is not None:
            for name, value in handshake.upstream_response_headers(upstream.response):
                response.headers[name] = value

    async def _handle(self, client: ServerConnection) -> None:
        assert isinstance(client, RelayServerConnection)
        upstream = self._dialed.pop(client, None)
        if upstream is None:  # closed by a stop between the handshake and now
            begin_close(client, 1001, "going away")
            await client.wait_closed()
            return
        proxy = self.proxy
        connection = WsConnection(
            client,
            upstream,
            proxy.toxics,
            random.Random(proxy.rng.getrandbits(64)),
            proxy.stats.direction,
            proxy.stats.toxic_fired,
        )
        self.connections.add(connection)
        proxy.stats.connections += 1
        try:
            await connection.run()
        finally:
            self.connections.discard(connection)
