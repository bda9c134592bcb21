"""Message faults for WebSocket streams: toxic types for ``websocket`` proxies.

Each type lives in its own module (pure: no asyncio, no sockets, see `base`); the
runtime that terminates and relays the connections is `proxy.WebSocketRuntime`.
Importing this package registers nothing anywhere: `REGISTRY` is the explicit table
the engine's protocol table points to.
"""

from __future__ import annotations

from chaos_service.ws_faults.base import MessageToxic, WsToxic
from chaos_service.ws_faults.close import CloseAfter
from chaos_service.ws_faults.delay import Delay
from chaos_service.ws_faults.drop import Drop
from chaos_service.ws_faults.duplicate import Duplicate
from chaos_service.ws_faults.refuse import Refuse
from chaos_service.ws_faults.reorder import Reorder

#: Every websocket toxic type, by its API name.
REGISTRY: dict[str, type[WsToxic]] = {
    cls.type_name: cls for cls in (Drop, Delay, Duplicate, Reorder, CloseAfter, Refuse)
}

__all__ = ["REGISTRY", "CloseAfter", "Delay", "Drop", "Duplicate", "MessageToxic", "Refuse", "Reorder", "WsToxic"]
