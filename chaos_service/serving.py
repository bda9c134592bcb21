"""Serving an ASGI app on a socket we bound ourselves, until SIGINT or SIGTERM.

Binding first lets a server listen on port 0 and report the real port, and lets a
command fail with a clear message (exit 2) before anything starts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import Callable

import uvicorn
from starlette.types import ASGIApp

from chaos_service.engine.listen import format_address
from chaos_service.errors import InvalidInput


def bind_tcp(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """Bind and listen (port 0 picks a free one; IPv4 preferred for host names).

    Raises:
        InvalidInput: the address cannot be bound.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        infos.sort(key=lambda info: info[0] != socket.AF_INET)
        family, _, _, _, sockaddr = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(backlog)
    except OSError as exc:
        raise InvalidInput(f"cannot listen on {format_address(host, port)}: {exc.strerror or exc}") from None
    return sock


def socket_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{format_address(host, port)}"


async def serve_asgi(app: ASGIApp, sock: socket.socket, on_ready: Callable[[str], None]) -> None:
    """Serve ``app`` on ``sock`` until SIGINT or SIGTERM; ``on_ready`` gets the URL at once."""
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            loop="none",
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=5,
        )
    )
    # uvicorn re-raises the signal that stopped it; a no-op handler lets callers clean up.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    # The socket already listens: clients queue in its backlog until uvicorn serves.
    on_ready(socket_url(sock))
    await serving


#: Toxiproxy's LOG_LEVEL names that Python's logging does not know.
_GO_LEVELS = {"trace": "DEBUG", "panic": "CRITICAL", "fatal": "CRITICAL", "warning": "WARNING"}


def configure_logging(level: str | None = None) -> None:
    """Log to stderr at ``level``, or at $LOG_LEVEL (Toxiproxy's variable), or info."""
    name = (level or os.environ.get("LOG_LEVEL") or "info").lower()
    logging.basicConfig(
        level=_GO_LEVELS.get(name, name.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # httpx logs every request at INFO: a line per proxied request would drown the log.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
