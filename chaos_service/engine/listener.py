"""The listening socket of a running proxy: the accept loop and the hand-back on stop.

Every protocol runtime holds one `Listener`. Between `Listener.start` and
`Listener.stop` it owns the bound, listening socket that the collection handed over;
``stop(keep_listener=True)`` gives the socket back open, so that a proxy replacing this
one (a changed protocol or upstream) serves the same address without a window in which
clients are refused.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

#: Pause after the accept call fails (e.g. out of file descriptors) before trying again.
ACCEPT_RETRY_DELAY = 0.1

#: Called with each accepted client socket, inside the accept loop: the next client is
#: accepted when it returns, and cancelling the loop cancels it. It owns the socket.
OnClient = Callable[[socket.socket], Awaitable[None]]


class Listener:
    """One proxy's listening socket while it serves; ``proxy_name`` is for the log."""

    def __init__(self, proxy_name: str) -> None:
        self.proxy_name = proxy_name
        self.sock: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None

    def start(self, sock: socket.socket, on_client: OnClient | None = None) -> None:
        """Own ``sock`` (bound, listening, non-blocking) until `stop`.

        With ``on_client``, accept clients on it in a task of the running loop. Without,
        the caller accepts some other way (a server library given a ``dup`` of it).
        """
        self.sock = sock
        if on_client is not None:
            self._accepting = asyncio.get_running_loop().create_task(self._accept_loop(sock, on_client))

    def stop(self, keep_listener: bool = False) -> socket.socket | None:
        """Stop accepting. The socket is closed (new clients get ECONNREFUSED) unless
        ``keep_listener``: then it is returned still open, and no longer owned here.

        Clients already accepted are the caller's to close.
        """
        if self._accepting is not None:
            self._accepting.cancel()
            self._accepting = None
        sock, self.sock = self.sock, None
        if sock is not None and not keep_listener:
            sock.close()
            sock = None
        return sock

    async def _accept_loop(self, sock: socket.socket, on_client: OnClient) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                client, _ = await loop.sock_accept(sock)
            except OSError as exc:
                log.warning("proxy %s: accept failed: %s", self.proxy_name, exc)
                await asyncio.sleep(ACCEPT_RETRY_DELAY)
                continue
            await on_client(client)
