"""The toxic contract: pure transformations of a stream of timestamped chunks.

Rules for everything in ``chaos_service.toxics``: no asyncio, no sockets, no sleeping and
no reading of clocks. Time arrives as arguments (``Chunk.at``, ``now``), randomness as a
``random.Random``, and a toxic answers with `Step` values that the engine carries out::

    source ─► Chunk(data, at) ─► toxic.on_chunk(chunk, state, rng) ─► [Step, ...]
                                                                        │
        Emit(data, at)        pass these bytes on, not before ``at`` ◄──┤
        EndStream(at, close)  end this direction (half-close, or      ◄─┤
                              close the whole connection) at ``at``     │
        Deadline(at, reset)   end the connection at ``at`` unless a   ◄─┘
                              later Deadline moves it (None cancels)

A stage releases its steps in order: an output is never released before the one produced
ahead of it, so a chunk may wait behind a slower earlier one but never overtakes it.
Released chunks carry their release time as their new ``at``, which is how two latency
toxics stack. Attribute values are integers in the units their `Attribute` names.
"""

from __future__ import annotations

import enum
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Self

from chaos_service.errors import InvalidToxic

#: Largest attribute value accepted: Toxiproxy stores attributes as Go int64.
INT64_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Chunk:
    """Bytes that became available to a stage at time ``at`` (seconds, monotonic)."""

    data: bytes
    at: float


@dataclass(frozen=True, slots=True)
class Emit:
    """Pass ``data`` to the next stage at ``at`` (``math.inf``: hold until removed)."""

    data: bytes
    at: float


@dataclass(frozen=True, slots=True)
class EndStream:
    """This direction ends at ``at``, after everything emitted before it.

    ``close_connection=False`` propagates end-of-stream (a half-close); ``True`` closes
    the whole connection once the bytes ahead of it have been written.
    """

    at: float
    close_connection: bool = False


@dataclass(frozen=True, slots=True)
class Deadline:
    """Close (or, with ``reset``, abort with a TCP RST) the connection at ``at``.

    A later Deadline from the same stage replaces this one; ``at=None`` cancels it.
    """

    at: float | None
    reset: bool = False


Step = Emit | EndStream | Deadline


class Removal(enum.Enum):
    """What removing a toxic does to a connection it was active on."""

    KEEP = "keep"  # the connection carries on
    CLOSE = "close"  # closed: the stream can no longer be trusted
    RESET = "reset"  # aborted with a TCP RST


@dataclass(frozen=True, slots=True)
class Attribute:
    """One integer attribute of a toxic type, as it appears in the API."""

    name: str
    unit: str
    description: str


class Toxic(ABC):
    """Base of every toxic type. Subclasses are frozen dataclasses of their attributes.

    Each subclass names its API type in ``type_name`` and documents its attributes in
    ``attributes`` (field names must match). Per-connection, per-direction state comes
    from `new_state` and is handed back on every call; it survives attribute updates.
    """

    type_name: ClassVar[str]
    attributes: ClassVar[tuple[Attribute, ...]] = ()

    @classmethod
    def from_attributes(cls, raw: dict[str, Any]) -> Self:
        """Build the toxic from API attributes: known names only, non-negative integers.

        Names match case-insensitively; missing attributes are 0; integral floats
        (``100.0``) are accepted as integers.

        Raises:
            InvalidToxic: an unknown attribute, a non-integer, a negative or too large value.
        """
        known = {a.name.lower(): a.name for a in cls.attributes}
        values = dict.fromkeys(known.values(), 0)
        for key, value in raw.items():
            name = known.get(key.lower())
            if name is None:
                valid = ", ".join(sorted(known.values())) or "none"
                raise InvalidToxic(
                    f"unknown attribute {key!r} for toxic type {cls.type_name} (valid: {valid})"
                )
            values[name] = _attribute_int(cls.type_name, name, value)
        return cls(**values)

    def attribute_values(self) -> dict[str, int]:
        """The attributes as the API shows them, every one present."""
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]

    def new_state(self) -> Any:
        """Fresh per-connection, per-direction state (None when the toxic keeps none)."""
        return None

    def start(self, now: float, state: Any) -> list[Step]:
        """Called when the toxic starts on a connection (at accept, add or update)."""
        return []

    def on_removal(self, state: Any) -> Removal:
        """What removing the toxic does to a connection it was active on."""
        return Removal.KEEP

    @abstractmethod
    def on_chunk(self, chunk: Chunk, state: Any, rng: random.Random) -> list[Step]:
        """Transform one chunk."""

    def on_eof(self, at: float, state: Any) -> list[Step]:
        """The direction's source reached end-of-stream at ``at``."""
        return [EndStream(at)]


def _attribute_int(type_name: str, name: str, value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidToxic(
            f"attribute {name!r} of toxic type {type_name} must be an integer, got {type(value).__name__}"
        )
    if isinstance(value, float):
        if not value.is_integer():
            raise InvalidToxic(
                f"attribute {name!r} of toxic type {type_name} must be an integer, got {value!r}"
            )
        value = int(value)
    if value < 0:
        raise InvalidToxic(f"attribute {name!r} of toxic type {type_name} must be >= 0, got {value}")
    if value > INT64_MAX:
        raise InvalidToxic(f"attribute {name!r} of toxic type {type_name} is too large: {value}")
    return value
