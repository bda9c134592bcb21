"""Request bodies, decoded the way Toxiproxy's Go server decodes them.

Only the first JSON value of a body counts; object keys match field names exactly or,
failing that, case-insensitively; unknown keys are ignored; ``null`` means "not given".
Types are strict (``"enabled": "true"`` is an error, not a truthy string).
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from chaos_service.engine.model import ProxySpec
from chaos_service.errors import InvalidInput

_decoder = json.JSONDecoder(parse_constant=lambda name: _reject_constant(name))


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class ProxyBody(_Body):
    name: str | None = None
    listen: str | None = None
    upstream: str | None = None
    enabled: bool | None = None
    protocol: str | None = None

    def spec(self) -> ProxySpec:
        """The proxy definition, with Toxiproxy's defaults for what was not given."""
        return ProxySpec(
            name=self.name or "",
            listen=self.listen or "",
            upstream=self.upstream or "",
            enabled=True if self.enabled is None else self.enabled,
            protocol=self.protocol or "tcp",
        )


class ToxicBody(_Body):
    name: str | None = None
    type: str | None = None
    stream: str | None = None
    toxicity: float | None = None
    attributes: dict[str, Any] | None = None
    ttl: float | None = None


class ToxicUpdateBody(_Body):
    toxicity: float | None = None
    attributes: dict[str, Any] | None = None
    ttl: float | None = None


Model = TypeVar("Model", bound=_Body)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid character {name[0]!r} looking for beginning of value")


def _bad(message: str) -> InvalidInput:
    return InvalidInput(f"bad request body: {message}")


def decode_json(body: bytes) -> Any:
    """The first JSON value in ``body``; trailing bytes are ignored.

    Raises:
        InvalidInput: empty, not UTF-8, or not JSON (``bad request body: ...``).
    """
    try:
        text = body.decode("utf-8").lstrip()
    except UnicodeDecodeError:
        raise _bad("not valid UTF-8") from None
    if not text:
        raise _bad("EOF")
    try:
        value, _ = _decoder.raw_decode(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text):
            raise _bad("unexpected EOF") from None
        raise _bad(f"{exc.msg} at offset {exc.pos}") from None
    except ValueError as exc:
        raise _bad(str(exc)) from None
    try:  # "\ud800" decodes to a lone surrogate, which no response or frame can carry
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise _bad("a string contains an unpaired UTF-16 surrogate escape") from None
    return value


def fold_keys(raw: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """Map JSON keys onto ``names`` case-insensitively (later keys win, as in Go)."""
    by_lower = {name.lower(): name for name in names}
    folded: dict[str, Any] = {}
    for key, value in raw.items():
        target = by_lower.get(key.lower())
        if target is not None:
            folded[target] = value
    return folded


def parse_model(raw: Any, model: type[Model], what: str) -> Model:
    """Validate one decoded JSON object against ``model``.

    Raises:
        InvalidInput: not an object, or a field of the wrong type.
    """
    if not isinstance(raw, dict):
        raise _bad(f"expected a JSON object for {what}, got {_json_type(raw)}")
    try:
        return model.model_validate(fold_keys(raw, list(model.model_fields)))
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        raise _bad(f"{what}.{field}: {error['msg']}") from None


def parse_body(body: bytes, model: type[Model], what: str) -> Model:
    return parse_model(decode_json(body), model, what)


def parse_list(body: bytes, model: type[Model], what: str) -> list[Model]:
    raw = decode_json(body)
    if not isinstance(raw, list):
        raise _bad(f"expected a JSON array of {what}s, got {_json_type(raw)}")
    return [parse_model(item, model, what) for item in raw]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "object", list: "array", str: "string", bool: "boolean"}.get(type(value), "number")
