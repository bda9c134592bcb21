"""The engine's domain values: directions, toxic entries and proxy definitions."""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, Self

from chaos_service.errors import InvalidToxic


class Direction(enum.Enum):
    """``upstream``: client → server bytes; ``downstream``: server → client bytes."""

    UPSTREAM = "upstream"
    DOWNSTREAM = "downstream"

    @classmethod
    def parse(cls, stream: str) -> Direction:
        """Parse a toxic's ``stream`` field, case-insensitively as Toxiproxy does.

        Raises:
            InvalidToxic: anything but upstream or downstream (including "").
        """
        try:
            return cls(stream.lower())
        except ValueError:
            raise InvalidToxic("stream was invalid, can be either upstream or downstream") from None


@dataclass(frozen=True, slots=True)
class ProxySpec:
    """A proxy as a client defines it (``listen`` and ``upstream`` as sent)."""

    name: str
    listen: str
    upstream: str
    enabled: bool = True
    protocol: str = "tcp"


class ToxicKind(Protocol):
    """What the API needs of a toxic, whatever its protocol: a frozen value built from
    the API's attributes, which it shows back in full."""

    type_name: ClassVar[str]

    @classmethod
    def from_attributes(cls, raw: dict[str, Any]) -> Self: ...

    def attribute_values(self) -> dict[str, Any]: ...


@dataclass(slots=True)
class ToxicEntry:
    """A toxic installed on a proxy: the API envelope around a pure toxic value."""

    name: str
    stream: str  # as sent: "Upstream" stays "Upstream"
    direction: Direction
    toxicity: float
    toxic: ToxicKind
    ttl: float | None = None
    #: Loop time at which the engine removes the toxic by itself (None: never).
    expires_at: float | None = None
    expiry: asyncio.TimerHandle | None = field(default=None, repr=False)

    @property
    def type_name(self) -> str:
        return self.toxic.type_name

    def cancel_expiry(self) -> None:
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None
