"""Running the engine: one asyncio process serving the API and every proxy."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import resource
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from chaos_service.engine.api.app import create_app
from chaos_service.engine.api.decode import ProxyBody, parse_list
from chaos_service.engine.collection import PopulateFailed, ProxyCollection
from chaos_service.engine.listen import format_address
from chaos_service.engine.model import ProxySpec
from chaos_service.errors import ChaosServiceError, InvalidInput

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EngineSettings:
    host: str = "127.0.0.1"
    port: int = 8474
    config: Path | None = None
    seed: int | None = None


def load_config(path: Path) -> list[ProxySpec]:
    """Read a ``-config`` file: a JSON array of proxies, as ``POST /populate`` takes.

    Raises:
        InvalidInput: unreadable, or not a valid list of proxies (the message names the file).
    """
    try:
        body = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read config file: {exc.strerror}") from None
    try:
        return [item.spec() for item in parse_list(body, ProxyBody, "proxy")]
    except InvalidInput as exc:
        raise InvalidInput(f"{path}: {exc}") from None


def raise_open_file_limit() -> None:
    """Allow as many sockets as the hard limit permits (two per proxied connection)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def bind_api(host: str, port: int) -> socket.socket:
    """Bind the API socket (port 0 picks a free one).

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
        sock.listen(1024)
    except OSError as exc:
        raise InvalidInput(f"cannot listen on {format_address(host, port)}: {exc.strerror or exc}") from None
    return sock


async def run_engine(settings: EngineSettings, on_ready: Callable[[str], None]) -> None:
    """Serve until SIGINT or SIGTERM; ``on_ready`` receives the API URL once it accepts.

    Raises:
        InvalidInput: the config file or the API address is unusable (nothing was started).
        ChaosServiceError: a proxy from the config file could not be started.
    """
    raise_open_file_limit()
    specs = load_config(settings.config) if settings.config else []
    api_socket = bind_api(settings.host, settings.port)
    collection = ProxyCollection(random.Random(settings.seed))
    try:
        if specs:
            try:
                await collection.populate(specs)
            except PopulateFailed as exc:
                raise ChaosServiceError(f"{settings.config}: {exc.cause}") from None
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(collection),
                loop="none",
                lifespan="off",
                log_config=None,
                access_log=False,
                server_header=False,
                timeout_graceful_shutdown=5,
            )
        )
        # uvicorn re-raises the signal that stopped it; a no-op handler lets us clean up.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: None)
        serving = asyncio.create_task(server.serve(sockets=[api_socket]))
        # The socket already listens: clients queue in its backlog until uvicorn serves.
        host, port = api_socket.getsockname()[:2]
        on_ready(f"http://{format_address(host, port)}")
        await serving
    finally:
        collection.close()
        api_socket.close()


#: Toxiproxy's LOG_LEVEL names that Python's logging does not know.
_GO_LEVELS = {"trace": "DEBUG", "panic": "CRITICAL", "fatal": "CRITICAL", "warning": "WARNING"}


def configure_logging(level: str | None = None) -> None:
    """Log to stderr at ``level``, or at $LOG_LEVEL (Toxiproxy's variable), or info."""
    name = (level or os.environ.get("LOG_LEVEL") or "info").lower()
    logging.basicConfig(
        level=_GO_LEVELS.get(name, name.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


__all__ = ["ChaosServiceError", "EngineSettings", "configure_logging", "load_config", "run_engine"]
