"""What websocket toxic attributes add to the shared ones (`chaos_service.toxics.attributes`).

Websocket toxics declare their attributes with the shared specs (times bounded by
`MAX_MS`) and, for what only WebSocket has, the specs here: a JSON field path
(`FieldPath`), a close code (`CloseCode`) and a close reason (`CloseReason`).
"""

from __future__ import annotations

from dataclasses import dataclass

from chaos_service.toxics.attributes import integral, rejection, shown

#: Longest time attribute (ms): one day. Longer delays overflow nothing but help no test.
MAX_MS = 86_400_000
#: A close frame's reason must fit in 123 bytes of UTF-8 (RFC 6455 §5.5: 125 minus the code).
MAX_REASON_BYTES = 123

#: Close codes ws_close may send: the ones a server sends in practice, 1006 (abort) and
#: the registered and private ranges. 1005 and 1015 are never on the wire; 1002, 1003,
#: 1007, 1009 and 1010 describe protocol failures that a fault proxy should not fake.
CLOSE_CODES = frozenset({1000, 1001, 1006, 1008, 1011, 1012, 1013})
CLOSE_CODES_TEXT = "1000, 1001, 1006 (abort without a close frame), 1008, 1011, 1012, 1013 or 3000-4999"


@dataclass(frozen=True, slots=True)
class FieldPath:
    """A dotted path into a JSON message (``type``, ``data.kind``, ``choices.0.delta``); "": none."""

    name: str

    def parse(self, type_name: str, value: object) -> str:
        if isinstance(value, str) and (not value or all(value.split("."))):
            return value
        allowed = "a dotted path such as 'type' or 'data.kind' (no empty segments)"
        raise rejection(type_name, self.name, allowed, shown(value))


@dataclass(frozen=True, slots=True)
class CloseCode:
    """A WebSocket close code from `CLOSE_CODES` or 3000-4999 (integral floats accepted)."""

    name: str

    def parse(self, type_name: str, value: object) -> int:
        code = integral(value)
        if code is not None and (code in CLOSE_CODES or 3000 <= code <= 4999):
            return code
        raise rejection(type_name, self.name, f"one of {CLOSE_CODES_TEXT}", shown(value))


@dataclass(frozen=True, slots=True)
class CloseReason:
    """A close reason: a string of at most 123 bytes once encoded as UTF-8."""

    name: str

    def parse(self, type_name: str, value: object) -> str:
        allowed = f"a string of at most {MAX_REASON_BYTES} bytes of UTF-8"
        if not isinstance(value, str):
            raise rejection(type_name, self.name, allowed, shown(value))
        size = len(value.encode())
        if size > MAX_REASON_BYTES:
            raise rejection(type_name, self.name, allowed, f"{size} bytes")
        return value
