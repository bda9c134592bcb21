"""What flows through a relay: messages and close actions, and how toxics pick messages.

A `Message` is one WebSocket message as received (bytes, with a text/binary flag); it
is parsed as JSON at most once, and only when a toxic with a ``field`` asks (`Match`).
A `Close` is an action in the same ordered stream: it takes effect when everything
ahead of it has been sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

#: Stands for "not JSON" (binary, or text that does not parse) and "no such field".
_ABSENT: Final = object()


class Message:
    """One message read from a direction's source. Treat it as immutable.

    ``data`` is the payload as received (UTF-8 for a text message: the proxy relays
    text without decoding it); ``text`` tells a text message from a binary one.
    """

    __slots__ = ("_document", "data", "text")

    def __init__(self, data: bytes, text: bool = True) -> None:
        self.data = data
        self.text = text
        self._document: Any = None  # None: not parsed yet

    @classmethod
    def of(cls, data: str | bytes) -> Message:
        """A text message for ``str``, a binary one for ``bytes``."""
        return cls(data.encode(), True) if isinstance(data, str) else cls(data, False)

    @property
    def size(self) -> int:
        """Payload size in bytes."""
        return len(self.data)

    def document(self) -> Any:
        """The message parsed as JSON, or `_ABSENT` for binary or non-JSON text (cached)."""
        if self._document is None:
            if self.text:
                try:
                    self._document = (json.loads(self.data),)
                except ValueError:  # includes invalid UTF-8
                    self._document = _ABSENT
            else:
                self._document = _ABSENT
        return _ABSENT if self._document is _ABSENT else self._document[0]

    def __repr__(self) -> str:
        return f"Message({self.data!r}, text={self.text})"


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection once everything ahead of this action has been sent.

    ``code`` None, 1005 or 1006 abort the TCP connection without a close frame (the peer
    sees 1006). ``both`` closes the source side as well as the destination (``ws_close``);
    otherwise only the destination is closed (mirroring a close received from the source).
    """

    code: int | None
    reason: str = ""
    both: bool = False


Item = Message | Close


def render_value(value: Any) -> str:
    """A JSON value as `Match` compares it: strings as they are, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def lookup(document: Any, path: str) -> Any:
    """The value at a dotted ``path`` in a JSON document (digits index arrays), or `_ABSENT`."""
    node = document
    for part in path.split("."):
        if isinstance(node, dict):
            if part not in node:
                return _ABSENT
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _ABSENT
    return node


@dataclass(frozen=True, slots=True)
class Match:
    """Which messages a toxic acts on.

    ``field`` empty: every message. Otherwise the message must be JSON text with a value
    at that dotted path; with ``value`` non-empty, that value rendered by `render_value`
    (so ``true``, ``3``, ``null`` for non-strings) must equal it. Binary and non-JSON
    messages never match a ``field``.
    """

    field: str = ""
    value: str = ""

    def matches(self, message: Message) -> bool:
        if not self.field:
            return True
        document = message.document()
        if document is _ABSENT:
            return False
        found = lookup(document, self.field)
        if found is _ABSENT:
            return False
        return not self.value or render_value(found) == self.value
