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
toxics stack. Attribute values are integers in the units their `Integer` spec names.
"""

from __future__ import annotations

import enum
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from chaos_service.toxics.attributes import AttributeToxic, Integer


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


class Toxic(AttributeToxic, ABC):
    """Base of every toxic type. Subclasses are frozen dataclasses of their attributes.

    Each subclass names its API type in ``type_name`` and lists its attributes in
    ``attributes`` as `Integer` specs (field names, every field defaulting to 0), which
    keeps Toxiproxy's rules: missing or null is 0, values are integers from 0 to int64
    (integral floats accepted). Per-connection, per-direction state comes from
    `new_state` and is handed back on every call; it survives attribute updates.
    """

    attributes: ClassVar[tuple[Integer, ...]] = ()

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
