"""The tcp protocol: a listener that accepts clients, dials the upstream and proxies bytes."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import socket
from typing import TYPE_CHECKING, Any

from chaos_service.engine.connection import Connection
from chaos_service.engine.listen import split_host_port
from chaos_service.engine.listener import Listener
from chaos_service.engine.model import Direction

if TYPE_CHECKING:
    from chaos_service.engine.model import ToxicEntry
    from chaos_service.engine.proxy import Proxy

log = logging.getLogger(__name__)

#: How long a new client waits for the upstream to accept before it is closed.
DIAL_TIMEOUT = 10.0


class TcpRuntime:
    """Runs one tcp proxy while it is enabled: its listener and its connections."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.connections: set[Connection] = set()
        self._listener = Listener(proxy.name)
        self._opening: set[asyncio.Task[None]] = set()

    def start(self, listener: socket.socket) -> None:
        self._listener.start(listener, self._accepted)

    def stop(self, keep_listener: bool = False) -> socket.socket | None:
        """Stop accepting and close every connection.

        The listening socket is closed (new clients get ECONNREFUSED) unless
        ``keep_listener``, in which case it is returned still open.
        """
        listener = self._listener.stop(keep_listener)
        self.close_connections()
        return listener

    def close_connections(self) -> None:
        for task in list(self._opening):
            task.cancel()
        for connection in list(self.connections):
            connection.close()

    # -- stats --------------------------------------------------------------------------

    def open_connections(self) -> int:
        return len(self.connections)

    def live_bytes(self) -> dict[Direction, int]:
        totals = dict.fromkeys(Direction, 0)
        for connection in self.connections:
            for direction, count in connection.bytes_read().items():
                totals[direction] += count
        return totals

    def _closed(self, connection: Connection) -> None:
        self.connections.discard(connection)
        for direction, count in connection.bytes_read().items():
            self.proxy.stats.direction(direction).bytes += count

    # -- toxics -------------------------------------------------------------------------

    def toxic_added(self, entry: ToxicEntry) -> None:
        for connection in self.connections:
            connection.link(entry.direction).add_toxic(entry)

    def toxic_updated(self, entry: ToxicEntry) -> None:
        for connection in self.connections:
            connection.link(entry.direction).update_toxic(entry)

    def toxic_removed(self, entry: ToxicEntry) -> None:
        for connection in list(self.connections):
            if not connection.closed:
                connection.link(entry.direction).remove_toxic(entry.name)

    # -- connections --------------------------------------------------------------------

    async def _accepted(self, client: socket.socket) -> None:
        # Opened in a task of its own: dialing the upstream must not hold up the next accept.
        task = asyncio.get_running_loop().create_task(self._open(client))
        self._opening.add(task)
        task.add_done_callback(self._opening.discard)

    async def _open(self, client: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        upstream: socket.socket | None = None
        connection: Connection | None = None
        try:
            upstream = await asyncio.wait_for(_dial(self.proxy.upstream), DIAL_TIMEOUT)
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = Connection(
                loop,
                random.Random(self.proxy.rng.getrandbits(64)),
                self.proxy.toxics,
                self._closed,
                self.proxy.stats.toxic_fired,
            )
            self.connections.add(connection)
            self.proxy.stats.connections += 1
            await connection.attach(loop, client, upstream)
        except (OSError, TimeoutError) as exc:
            # Like Toxiproxy: the client was accepted, so it sees the close, not a refusal.
            log.info("proxy %s: upstream %s unreachable: %s", self.proxy.name, self.proxy.upstream, exc)
            self._abandon(connection, client, upstream)
        except asyncio.CancelledError:
            self._abandon(connection, client, upstream)
            raise

    @staticmethod
    def _abandon(connection: Connection | None, *socks: socket.socket | None) -> None:
        if connection is not None:
            connection.close()  # forgets it and closes whatever transports it has
        for sock in socks:
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()


async def _dial(upstream: str) -> socket.socket:
    """Connect to ``host:port``, resolving the name on every dial as Toxiproxy does."""
    loop = asyncio.get_running_loop()
    address = split_host_port(upstream, "upstream")
    candidates: list[tuple[int, Any]]
    try:
        ip = ipaddress.ip_address(address.host)
        candidates = [(socket.AF_INET6 if ip.version == 6 else socket.AF_INET, (str(ip), address.port))]
    except ValueError:
        infos = await loop.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM)
        candidates = [(info[0], info[4]) for info in infos]
    error: OSError = OSError(f"no address for {upstream}")
    for family, sockaddr in candidates:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
        except BaseException:
            sock.close()
            raise
    raise error
