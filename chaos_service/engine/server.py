"""Running the engine: one asyncio process serving the API and every proxy."""

from __future__ import annotations

import logging
import random
import resource
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chaos_service.engine.api.app import create_app
from chaos_service.engine.api.decode import ProxyBody, parse_list
from chaos_service.engine.collection import PopulateFailed, ProxyCollection
from chaos_service.engine.model import ProxySpec
from chaos_service.errors import ChaosServiceError, InvalidInput
from chaos_service.serving import bind_tcp, serve_asgi

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


async def run_engine(settings: EngineSettings, on_ready: Callable[[str], None]) -> None:
    """Serve until SIGINT or SIGTERM; ``on_ready`` receives the API URL once it accepts.

    Raises:
        InvalidInput: the config file or the API address is unusable (nothing was started).
        ChaosServiceError: a proxy from the config file could not be started.
    """
    raise_open_file_limit()
    specs = load_config(settings.config) if settings.config else []
    api_socket = bind_tcp(settings.host, settings.port)
    collection = ProxyCollection(random.Random(settings.seed))
    try:
        if specs:
            try:
                await collection.populate(specs)
            except PopulateFailed as exc:
                raise ChaosServiceError(f"{settings.config}: {exc.cause}") from None
        await serve_asgi(create_app(collection), api_socket, on_ready)
    finally:
        collection.close()
        api_socket.close()
