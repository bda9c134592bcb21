"""The protocols a proxy can speak: their toxic types, their streams and their runtime.

A runtime serves one enabled proxy: it owns the listener and the connections, applies
toxic changes to connections that are already open and counts traffic into the proxy's
`ProxyStats`. The collection and the API treat every protocol alike through this table.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from chaos_service.engine.model import Direction, ToxicEntry, ToxicKind
from chaos_service.errors import InvalidProxy

if TYPE_CHECKING:
    from chaos_service.engine.proxy import Proxy


class ProxyRuntime(Protocol):
    def start(self, listener: socket.socket) -> None: ...

    def stop(self, keep_listener: bool = False) -> socket.socket | None:
        """Stop serving and close every connection; hand the listener back if asked."""

    def close_connections(self) -> None: ...

    def open_connections(self) -> int: ...

    def live_bytes(self) -> dict[Direction, int]:
        """Bytes read so far on connections still open (counted at close for the others)."""

    def toxic_added(self, entry: ToxicEntry) -> None: ...

    def toxic_updated(self, entry: ToxicEntry) -> None: ...

    def toxic_removed(self, entry: ToxicEntry) -> None: ...


@dataclass(frozen=True, slots=True)
class ProtocolSpec:
    name: str
    toxic_types: Mapping[str, type[ToxicKind]]
    #: The streams its toxics may act on.
    streams: frozenset[Direction]
    runtime: Callable[[Proxy], ProxyRuntime]
    #: What a "message" is in its stats (None: the protocol has no messages).
    message_unit: str | None


def _protocols() -> dict[str, ProtocolSpec]:
    from chaos_service import http_faults, toxics, ws_faults
    from chaos_service.engine.tcp import TcpRuntime
    from chaos_service.http_faults.proxy import HttpRuntime
    from chaos_service.ws_faults.proxy import WebSocketRuntime

    both = frozenset(Direction)
    responses = frozenset({Direction.DOWNSTREAM})
    return {
        "tcp": ProtocolSpec("tcp", toxics.REGISTRY, both, TcpRuntime, None),
        "http": ProtocolSpec("http", http_faults.REGISTRY, responses, HttpRuntime, "request"),
        "websocket": ProtocolSpec("websocket", ws_faults.REGISTRY, both, WebSocketRuntime, "message"),
    }


_REGISTRY: dict[str, ProtocolSpec] = {}


def protocols() -> dict[str, ProtocolSpec]:
    """Every protocol by name (built on first use: runtimes import the engine)."""
    if not _REGISTRY:
        _REGISTRY.update(_protocols())
    return _REGISTRY


def protocol(name: str) -> ProtocolSpec:
    """The protocol called ``name``.

    Raises:
        InvalidProxy: no such protocol.
    """
    try:
        return protocols()[name]
    except KeyError:
        supported = ", ".join(sorted(protocols()))
        raise InvalidProxy(f"protocol {name!r} is not supported (supported: {supported})") from None
