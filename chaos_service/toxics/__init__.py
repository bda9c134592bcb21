"""Toxics: pure, one module per type, and the registry of the types the engine knows.

Nothing in this package imports asyncio or touches a socket (see `base`). Its
`attributes` module is the attribute parsing that the http and websocket toxics share.
"""

from __future__ import annotations

from typing import Any

from chaos_service.errors import InvalidToxic
from chaos_service.toxics.attributes import Integer
from chaos_service.toxics.bandwidth import Bandwidth
from chaos_service.toxics.base import Chunk, Deadline, Emit, EndStream, Removal, Step, Toxic
from chaos_service.toxics.latency import Latency
from chaos_service.toxics.limit_data import LimitData
from chaos_service.toxics.noop import Noop
from chaos_service.toxics.reset_peer import ResetPeer
from chaos_service.toxics.slicer import Slicer
from chaos_service.toxics.slow_close import SlowClose
from chaos_service.toxics.timeout import Timeout

#: Every tcp toxic type, by its API name (the same set as Toxiproxy 2.12).
REGISTRY: dict[str, type[Toxic]] = {
    cls.type_name: cls
    for cls in (Latency, Bandwidth, SlowClose, Timeout, ResetPeer, Slicer, LimitData, Noop)
}


def build_toxic(type_name: str, attributes: dict[str, Any] | None) -> Toxic:
    """Create a toxic of a registered type from API attributes.

    Raises:
        InvalidToxic: the type is unknown or the attributes are not valid for it.
    """
    cls = REGISTRY.get(type_name)
    if cls is None:
        raise InvalidToxic("invalid toxic type")
    return cls.from_attributes(attributes or {})


__all__ = [
    "REGISTRY",
    "Bandwidth",
    "Chunk",
    "Deadline",
    "Emit",
    "EndStream",
    "Integer",
    "Latency",
    "LimitData",
    "Noop",
    "Removal",
    "ResetPeer",
    "Slicer",
    "SlowClose",
    "Step",
    "Timeout",
    "Toxic",
    "build_toxic",
]
