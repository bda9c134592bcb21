"""Attribute parsing for websocket toxics: the API boundary, with messages that say what to send.

Each toxic type declares its attributes as a tuple of `IntAttribute` / `TextAttribute`
/ `CodeAttribute` specs whose names match its dataclass fields. `WsToxic.from_attributes`
(in `base`) matches keys case-insensitively, treats ``None`` as "default", rejects
unknown names (listing the valid ones) and lets each spec check its value; every error is
an `InvalidToxic` naming the attribute, the value received and what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chaos_service.errors import InvalidToxic

#: Longest time attribute (ms): one day. Longer delays overflow nothing but help no test.
MAX_MS = 86_400_000
#: Longest text attribute (characters) other than a close reason.
MAX_TEXT = 65_536
#: A close frame's reason must fit in 123 bytes of UTF-8 (RFC 6455 §5.5: 125 minus the code).
MAX_REASON_BYTES = 123


def _prefix(type_name: str, name: str) -> str:
    return f"attribute {name!r} of toxic type {type_name}"


@dataclass(frozen=True, slots=True)
class IntAttribute:
    """An integer in ``[minimum, maximum]``; integral floats (``100.0``) are accepted.

    Whether the attribute may be absent (``null`` in the API) is up to the field's default.
    """

    name: str
    minimum: int
    maximum: int
    unit: str = ""

    def parse(self, type_name: str, value: object) -> int:
        allowed = f"an integer from {self.minimum} to {self.maximum}" + (f" ({self.unit})" if self.unit else "")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidToxic(f"{_prefix(type_name, self.name)} must be {allowed}, got {value!r}")
        if isinstance(value, float):
            if not value.is_integer():
                raise InvalidToxic(f"{_prefix(type_name, self.name)} must be {allowed}, got {value!r}")
            value = int(value)
        if not self.minimum <= value <= self.maximum:
            raise InvalidToxic(f"{_prefix(type_name, self.name)} must be {allowed}, got {value}")
        return value


@dataclass(frozen=True, slots=True)
class TextAttribute:
    """A string of at most ``max_length`` characters; integers are accepted as their digits."""

    name: str
    max_length: int = MAX_TEXT

    def parse(self, type_name: str, value: object) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise InvalidToxic(f"{_prefix(type_name, self.name)} must be a string, got {value!r}")
        if len(value) > self.max_length:
            raise InvalidToxic(
                f"{_prefix(type_name, self.name)} must be at most {self.max_length} characters, got {len(value)}"
            )
        return value


@dataclass(frozen=True, slots=True)
class ReasonAttribute:
    """A close reason: a string of at most 123 bytes once encoded as UTF-8."""

    name: str

    def parse(self, type_name: str, value: object) -> str:
        if not isinstance(value, str):
            raise InvalidToxic(f"{_prefix(type_name, self.name)} must be a string, got {value!r}")
        size = len(value.encode())
        if size > MAX_REASON_BYTES:
            raise InvalidToxic(
                f"{_prefix(type_name, self.name)} must be at most {MAX_REASON_BYTES} bytes of UTF-8, got {size}"
            )
        return value


@dataclass(frozen=True, slots=True)
class FieldAttribute:
    """A dotted path into a JSON message (``type``, ``data.kind``, ``choices.0.delta``); empty: none."""

    name: str

    def parse(self, type_name: str, value: object) -> str:
        if not isinstance(value, str):
            raise InvalidToxic(
                f"{_prefix(type_name, self.name)} must be a dotted path such as 'type' or 'data.kind', got {value!r}"
            )
        if value and any(not part for part in value.split(".")):
            raise InvalidToxic(
                f"{_prefix(type_name, self.name)} must be a dotted path such as 'type' or 'data.kind'"
                f" (no empty segments), got {value!r}"
            )
        return value


#: Close codes ws_close may send: the ones a server sends in practice, 1006 (abort) and
#: the registered and private ranges. 1005 and 1015 are never on the wire; 1002, 1003,
#: 1007, 1009 and 1010 describe protocol failures that a fault proxy should not fake.
CLOSE_CODES = frozenset({1000, 1001, 1006, 1008, 1011, 1012, 1013})
CLOSE_CODES_TEXT = "1000, 1001, 1006 (abort without a close frame), 1008, 1011, 1012, 1013 or 3000-4999"


@dataclass(frozen=True, slots=True)
class CodeAttribute:
    """A WebSocket close code from `CLOSE_CODES` or 3000-4999."""

    name: str

    def parse(self, type_name: str, value: object) -> int:
        code = IntAttribute(self.name, 1000, 4999).parse(type_name, value) if _is_number(value) else None
        if code is None or not (code in CLOSE_CODES or 3000 <= code <= 4999):
            raise InvalidToxic(f"{_prefix(type_name, self.name)} must be one of {CLOSE_CODES_TEXT}, got {value!r}")
        return code


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


AttributeSpec = IntAttribute | TextAttribute | ReasonAttribute | FieldAttribute | CodeAttribute


def parse_attributes(type_name: str, specs: tuple[AttributeSpec, ...], raw: dict[str, Any]) -> dict[str, Any]:
    """Check API attributes against ``specs``; returns the given ones by field name.

    Keys match case-insensitively; ``None`` values are left out (the default applies).

    Raises:
        InvalidToxic: an unknown name (the message lists the valid ones) or a bad value.
    """
    known = {spec.name.lower(): spec for spec in specs}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        spec = known.get(str(key).lower())
        if spec is None:
            valid = ", ".join(sorted(known)) or "none"
            raise InvalidToxic(f"unknown attribute {key!r} for toxic type {type_name} (valid: {valid})")
        if value is not None:
            values[spec.name] = spec.parse(type_name, value)
    return values
