"""The http toxic contract: frozen values with pure decisions that an I/O shell carries out.

Every http toxic acts on responses and selects requests with three match attributes,
``method``, ``path`` and ``model`` (see `request.matches`). It has one of three roles:

* `AnswerToxic` (``http_error``, ``fail_attempts``): answers a request itself with a
  `Reply` instead of calling the upstream;
* `DelayToxic` (``http_delay``): holds the response headers back for a while;
* `StreamToxic` (``sse_*``): transforms a Server-Sent Events response event by event.

Nothing here performs I/O, sleeps or reads a clock: randomness arrives as a
``random.Random``, and a stream toxic answers each event with `Op` values::

    Send(data, event)     pass bytes on to the next toxic (``event=False``: a comment or a
                          fragment, which later toxics let through untouched)
    Pause(seconds, keepalive)
                          wait before the next op (``math.inf``: until the toxic is removed
                          or updated), sending an SSE comment every ``keepalive`` seconds
    Finish(reset)         end the response now: cleanly, or abort the connection (RST)
    FIRED                 the toxic took effect on this request (counted in the stats)
"""

from __future__ import annotations

import enum
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from chaos_service.http_faults.attributes import MAX_TEXT, Method
from chaos_service.http_faults.replies import Reply
from chaos_service.http_faults.request import RequestInfo, matches
from chaos_service.toxics.attributes import AttributeSpec, AttributeToxic, Integer, Text

#: The match attributes every http toxic accepts, shown after its own.
MATCH_ATTRIBUTES: tuple[AttributeSpec, ...] = (
    Method("method", 'HTTP method to act on, e.g. "POST" ("": any)'),
    Text("path", MAX_TEXT, description='glob on the request path, e.g. "/v1/chat/*" ("": any)'),
    Text("model", MAX_TEXT, description='glob on the JSON body\'s "model", e.g. "gpt-4*" ("": any)'),
)


@dataclass(frozen=True, slots=True)
class Send:
    data: bytes
    event: bool = True


@dataclass(frozen=True, slots=True)
class Pause:
    seconds: float
    keepalive: float = 0.0


@dataclass(frozen=True, slots=True)
class Finish:
    reset: bool = False


class Fired(enum.Enum):
    FIRED = "fired"


FIRED = Fired.FIRED
Op = Send | Pause | Finish | Fired


@dataclass(frozen=True, slots=True)
class HttpToxic(AttributeToxic, ABC):
    """Base of the http toxic types: the match attributes and the API conversions.

    Subclasses are frozen dataclasses whose fields are their ``attributes`` (declared in
    the same order), and name their API type in ``type_name``.
    """

    method: str = ""
    path: str = ""
    model: str = ""

    @classmethod
    def attribute_specs(cls) -> tuple[AttributeSpec, ...]:
        return cls.attributes + MATCH_ATTRIBUTES

    def matches(self, request: RequestInfo) -> bool:
        return matches(self.method, self.path, self.model, request)


@dataclass(frozen=True, slots=True)
class AnswerToxic(HttpToxic):
    """A toxic that may answer a request itself (the upstream is then not called)."""

    def new_state(self) -> Any:
        """State kept across requests while the toxic is installed (reset on update)."""
        return None

    @abstractmethod
    def answer(self, request: RequestInfo, state: Any, rng: random.Random) -> Reply | None:
        """The reply to send instead of the upstream's, or None to let the request through."""


@dataclass(frozen=True, slots=True)
class DelayToxic(HttpToxic):
    """A toxic that holds the response headers back."""

    @abstractmethod
    def delay_seconds(self, rng: random.Random) -> float:
        """How long to hold this request's response headers."""


@dataclass(frozen=True, slots=True)
class StreamToxic(HttpToxic):
    """A toxic that transforms an event stream (``text/event-stream`` responses only).

    Per-response state comes from `new_state` and survives updates of the toxic.
    """

    def new_state(self) -> Any:
        return None

    def start(self, state: Any) -> list[Op]:
        """Ops to run when the response starts, before its first event."""
        return []

    def on_event(self, event: bytes, state: Any, rng: random.Random) -> list[Op]:
        """Ops for one complete event (its raw bytes, blank line included)."""
        return [Send(event)]


@dataclass(slots=True)
class EventCount:
    """State of toxics that act once, after a number of events."""

    count: int = 0
    done: bool = False


@dataclass(frozen=True, slots=True)
class AfterEvents(StreamToxic):
    """A stream toxic that acts once, when ``after`` events have passed (at once for 0)."""

    after: int = 0

    def new_state(self) -> EventCount:
        return EventCount()

    def start(self, state: EventCount) -> list[Op]:
        return self._maybe_act(state)

    def on_event(self, event: bytes, state: EventCount, rng: random.Random) -> list[Op]:
        state.count += 1
        return [Send(event), *self._maybe_act(state)]

    def _maybe_act(self, state: EventCount) -> list[Op]:
        if state.done or state.count < self.after:
            return []
        state.done = True
        return [FIRED, *self.act()]

    @abstractmethod
    def act(self) -> list[Op]:
        """What the toxic does once ``after`` events have passed."""


AFTER = Integer("after", description="number of events to let through first")
