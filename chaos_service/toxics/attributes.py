"""Toxic attributes: the API's ``attributes`` object checked against a toxic type's specs.

Shared by the toxics of every protocol (tcp, http, websocket). A toxic type lists its
attributes as a tuple of specs, in the order the API shows them, and `parse_attributes`
turns the API's object into constructor arguments:

* names match case-insensitively; an unknown name is rejected with the sorted list of
  the valid ones;
* a missing name and ``None`` (JSON null) both mean "the default", which is the toxic's
  dataclass field default: the one place defaults are written;
* any other value goes through its spec's ``parse``, which returns the value to store or
  raises `InvalidToxic` in one style, ``attribute 'delay' of toxic type ws_delay must be
  an integer from 0 to 86400000 (ms), got -5`` (see `rejection`).

The general specs live here: `Integer`, `Seconds`, `Text`, `Choice` and `Flag`. Specs
that only one protocol needs (an HTTP method, a close code…) live in that protocol's
package; they satisfy `AttributeSpec` and word their errors with `rejection`.
`AttributeToxic` gives a toxic base class ``from_attributes`` and ``attribute_values``.

Pure: no I/O, no clocks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, Self

from chaos_service.errors import InvalidToxic

#: Largest integer attribute accepted: Toxiproxy stores attributes as Go int64.
INT64_MAX = 2**63 - 1
#: Largest number of seconds accepted by default (about 31 years, as the engine's ttl).
MAX_SECONDS = 1e9
#: Longest text attribute accepted by default, in characters.
MAX_TEXT = 65_536
#: How much of a rejected value an error message quotes, in characters.
MAX_SHOWN = 80


class AttributeSpec(Protocol):
    """One attribute of a toxic type: its API name (the dataclass field it fills) and
    the check of a value that is not None."""

    @property
    def name(self) -> str: ...

    def parse(self, type_name: str, value: object) -> Any:
        """The value to store for ``value``, as sent by a client.

        Raises:
            InvalidToxic: the value is not allowed (worded with `rejection`).
        """
        ...


def parse_attributes(type_name: str, specs: Sequence[AttributeSpec], raw: Mapping[str, Any]) -> dict[str, Any]:
    """Constructor arguments for a toxic of ``type_name``: the attributes in ``raw`` that
    are not None, parsed, by field name. Absent ones are left to the field defaults.

    Raises:
        InvalidToxic: an unknown name (the message lists the valid ones) or a bad value.
    """
    known = {spec.name.lower(): spec for spec in specs}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        spec = known.get(str(key).lower())
        if spec is None:
            valid = ", ".join(sorted(known_spec.name for known_spec in specs)) or "none"
            raise InvalidToxic(f"unknown attribute {key!r} for toxic type {type_name} (valid: {valid})")
        if value is not None:
            values[spec.name] = spec.parse(type_name, value)
    return values


def rejection(type_name: str, name: str, allowed: str, got: str) -> InvalidToxic:
    """The error for a bad value: ``attribute 'NAME' of toxic type TYPE must be ALLOWED, got GOT``.

    ``got`` is usually ``shown(value)``; a spec may say something shorter about a value
    that is too long (``5000 characters``).
    """
    return InvalidToxic(f"attribute {name!r} of toxic type {type_name} must be {allowed}, got {got}")


def shown(value: object) -> str:
    """A received value as an error message quotes it: numbers bare (``-5``, ``1e+30``),
    anything else after its type (``str '100'``, ``bool True``), cut after `MAX_SHOWN`."""
    text = repr(value)
    if len(text) > MAX_SHOWN:
        text = text[: MAX_SHOWN - 1] + "…"
    return text if _is_number(value) else f"{type(value).__name__} {text}"


def integral(value: object) -> int | None:
    """``value`` as an int if it is an integer or an integral float (``100.0``), else None.

    Booleans are not integers here, though Python says they are.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# -- the general specs ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Integer:
    """An integer from ``minimum`` to ``maximum`` (inclusive) in ``unit``; integral
    floats (``100.0``) are accepted and stored as ints. The defaults (0 to int64) are a
    Toxiproxy attribute's range."""

    name: str
    minimum: int = 0
    maximum: int = INT64_MAX
    unit: str = ""
    description: str = ""

    def parse(self, type_name: str, value: object) -> int:
        number = integral(value)
        if number is not None and self.minimum <= number <= self.maximum:
            return number
        # Without a real upper bound the message names the lower one, unless it was the
        # int64 ceiling that the value broke.
        too_large = number is not None and number > self.maximum
        if self.maximum == INT64_MAX and not too_large:
            allowed = f"an integer >= {self.minimum}"
        else:
            allowed = f"an integer from {self.minimum} to {self.maximum}"
        if self.unit:
            allowed += f" ({self.unit})"
        raise rejection(type_name, self.name, allowed, shown(value))


@dataclass(frozen=True, slots=True)
class Seconds:
    """A number of seconds from 0 to ``maximum`` (finite), stored as a float."""

    name: str
    maximum: float = MAX_SECONDS
    description: str = ""

    def parse(self, type_name: str, value: object) -> float:
        # Compared before any float() so that a huge int is refused, not an OverflowError.
        if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= self.maximum:
            return float(value)  # NaN fails the comparison, and so does inf: maximum is finite
        raise rejection(type_name, self.name, f"a number of seconds from 0 to {self.maximum:g}", shown(value))


@dataclass(frozen=True, slots=True)
class Text:
    """A string of at most ``max_length`` characters. With ``integers`` an integer is
    accepted too, as its decimal digits (``3`` → ``"3"``)."""

    name: str
    max_length: int = MAX_TEXT
    integers: bool = False
    description: str = ""

    def parse(self, type_name: str, value: object) -> str:
        if self.integers and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        allowed = f"a string of at most {self.max_length} characters"
        if not isinstance(value, str):
            raise rejection(type_name, self.name, allowed, shown(value))
        if len(value) > self.max_length:
            raise rejection(type_name, self.name, allowed, f"{len(value)} characters")
        return value


@dataclass(frozen=True, slots=True)
class Choice:
    """One of ``choices`` (lower-case words), matched case-insensitively, stored lower-case."""

    name: str
    choices: tuple[str, ...]
    description: str = ""

    def parse(self, type_name: str, value: object) -> str:
        if isinstance(value, str) and value.lower() in self.choices:
            return value.lower()
        raise rejection(type_name, self.name, f"one of {', '.join(self.choices)}", shown(value))


@dataclass(frozen=True, slots=True)
class Flag:
    """``true`` or ``false``. A flag whose field defaults to None is three-valued: null
    (or absent) leaves it None."""

    name: str
    description: str = ""

    def parse(self, type_name: str, value: object) -> bool:
        if isinstance(value, bool):
            return value
        raise rejection(type_name, self.name, "true or false", shown(value))


# -- toxic types built from attributes -------------------------------------------------


class AttributeToxic:
    """Mixin of the toxic base classes: the API conversions of a frozen dataclass whose
    fields are its attributes.

    A subclass names its API type in ``type_name`` and lists its specs in ``attributes``
    (field names, in the order the API shows them); a base class that adds attributes to
    all its types (match attributes) extends `attribute_specs`. Fields need defaults:
    an absent attribute takes its field's default.
    """

    __slots__ = ()

    type_name: ClassVar[str]
    attributes: ClassVar[tuple[AttributeSpec, ...]] = ()

    @classmethod
    def attribute_specs(cls) -> tuple[AttributeSpec, ...]:
        """Every attribute of the type, in the order the API shows them."""
        return cls.attributes

    @classmethod
    def from_attributes(cls, raw: Mapping[str, Any]) -> Self:
        """Build the toxic from API attributes (see `parse_attributes`), then `check` it.

        Raises:
            InvalidToxic: an unknown attribute name or a value that is not allowed; the
                message names the attribute, the value and what is allowed.
        """
        toxic = cls(**parse_attributes(cls.type_name, cls.attribute_specs(), raw))
        toxic.check()
        return toxic

    def check(self) -> None:
        """Checks across attributes, raising `InvalidToxic`; none by default."""

    def attribute_values(self) -> dict[str, Any]:
        """Every attribute, JSON-ready. ``from_attributes`` of it gives an equal toxic: an
        update builds the new toxic from it merged with the PATCH's changes."""
        return {spec.name: getattr(self, spec.name) for spec in self.attribute_specs()}
