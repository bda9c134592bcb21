"""Attribute tables for http toxics: parsing API attributes with messages a user can act on.

Each toxic type declares its attributes as a tuple of `Attr`; `parse_attributes` turns
the API's ``attributes`` object into constructor arguments. The rules are the engine's:
names match case-insensitively, ``None`` means "the default", an unknown name is
rejected with the list of valid ones, and a bad value is rejected with a message naming
the attribute, the value and what is allowed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from chaos_service.errors import InvalidToxic

#: Largest integer attribute accepted (Toxiproxy stores attributes as Go int64).
INT64_MAX = 2**63 - 1
#: Largest number of seconds accepted (about 31 years, as the engine's ttl).
MAX_SECONDS = 1e9
#: Longest text attribute (messages, globs), in characters.
MAX_TEXT = 4096

Kind = Literal["int", "seconds", "choice", "bool", "maybe_bool", "text", "method"]

# RFC 9110 token characters: what an HTTP method may be made of.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


@dataclass(frozen=True, slots=True)
class Attr:
    """One attribute of a toxic type.

    ``kind`` decides what is accepted: ``int`` (an integer from ``low`` to ``high``;
    integral floats such as ``100.0`` accepted), ``seconds`` (a number >= 0, or None),
    ``choice`` (one of ``choices``, case-insensitively), ``bool``, ``maybe_bool`` (true,
    false or None), ``text`` (any string) and ``method`` (an HTTP method, or "" for any).
    """

    name: str
    kind: Kind
    default: Any
    description: str
    low: int = 0
    high: int = INT64_MAX
    choices: tuple[str, ...] = ()


def parse_attributes(type_name: str, attrs: tuple[Attr, ...], raw: Mapping[str, Any]) -> dict[str, Any]:
    """Constructor arguments for a toxic from API attributes, every attribute present.

    Raises:
        InvalidToxic: an unknown attribute name or a value that is not allowed.
    """
    known = {attr.name.lower(): attr for attr in attrs}
    values = {attr.name: attr.default for attr in attrs}
    for key, value in raw.items():
        attr = known.get(str(key).lower())
        if attr is None:
            valid = ", ".join(sorted(a.name for a in attrs)) or "none"
            raise InvalidToxic(f"unknown attribute {key!r} for toxic type {type_name} (valid: {valid})")
        if value is not None:
            values[attr.name] = _parse(type_name, attr, value)
    return values


def _parse(type_name: str, attr: Attr, value: object) -> Any:
    where = f"attribute {attr.name!r} of toxic type {type_name}"
    if attr.kind == "int":
        return _integer(where, attr, value)
    if attr.kind == "seconds":
        return _seconds(where, value)
    if attr.kind in ("bool", "maybe_bool"):
        if not isinstance(value, bool):
            raise InvalidToxic(f"{where} must be true or false, got {value!r}")
        return value
    if not isinstance(value, str):
        raise InvalidToxic(f"{where} must be a string, got {type(value).__name__} {value!r}")
    if len(value) > MAX_TEXT:
        raise InvalidToxic(f"{where} is too long ({len(value)} characters, at most {MAX_TEXT})")
    if attr.kind == "choice":
        if value.lower() not in attr.choices:
            raise InvalidToxic(f"{where} must be one of {', '.join(attr.choices)}, got {value!r}")
        return value.lower()
    if attr.kind == "method":
        if value and not _TOKEN.fullmatch(value):
            raise InvalidToxic(f'{where} must be an HTTP method such as POST (or "" for any), got {value!r}')
        return value.upper()
    return value


def _integer(where: str, attr: Attr, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidToxic(f"{where} must be an integer, got {type(value).__name__} {value!r}")
    if isinstance(value, float) and not value.is_integer():
        raise InvalidToxic(f"{where} must be an integer, got {value!r}")
    if not attr.low <= value <= attr.high:
        allowed = f">= {attr.low}" if attr.high == INT64_MAX else f"from {attr.low} to {attr.high}"
        raise InvalidToxic(f"{where} must be an integer {allowed}, got {value!r}")
    return int(value)


def _seconds(where: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidToxic(f"{where} must be a number of seconds, got {type(value).__name__} {value!r}")
    if not math.isfinite(value) or not 0 <= value <= MAX_SECONDS:
        raise InvalidToxic(f"{where} must be a number of seconds from 0 to {MAX_SECONDS:g}, got {value!r}")
    return float(value)
