"""Secret masking for every output of a run: the journal, the JUnit file and the HTML report.

A `Masker` turns any structure into a JSON-ready copy with secrets replaced by ``***``:

* values under keys that end with a secret word (``secret``, ``refresh_token``, ``password``,
  ``api_key``, ``authorization``, ``credentials``, ``cookie``, …), whole sub-trees included; numbers
  under count-like keys (``max_tokens``, ``token_count``) are kept;
* passwords inside URLs (``postgresql://user:pw@host`` → ``user:***@host``);
* secret query parameters (``?token=…``, ``&api_key=…``) and ``key=value`` or ``key: value``
  pairs in free text whose key ends with a secret word (``password=…``, ``Authorization: Bearer …``);
* bearer credentials in free text (``Bearer …``);
* any secret value found in the record's environment, rollbacks or metrics, wherever the
  same text appears again as a whole token (an error message quoting a token); only values
  that cannot be ordinary words are matched this way: at least 6 characters with a digit or
  a symbol, or at least 16 characters.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping
from enum import Enum
from pathlib import PurePath
from typing import Any

MASK = "***"

# A key names a secret when it ends with a secret word: ``refresh_token`` does, ``first_token_ms`` does not.
_SECRET_KEY = re.compile(
    r"(?:secret|passw(?:or)?d?|pwd|token|api_?key|apikey|access_?key|private_?key|secret_?key|authori[sz]ation"
    r"|credential|cookie|session_?id)s?$",
)
# Numbers under these keys are quantities (``max_tokens: 256``), not secrets.
_QUANTITY_KEY = re.compile(r"tokens|count|limit|^max|^min|_max$|_min$|len|size|ttl|timeout|rate|budget|total|used")
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s:/?#@\[\]]*):([^\s@/?#]+)@")
_QUERY_SECRET = re.compile(
    r"(?i)([?&;][\w.\-]*(?:token|secret|passw|pwd|api_?key|apikey|access_?key|signature|sig|auth)[\w.\-]*=)"
    r"([^&#\s\"'<>]+)"
)
# The key must end with the secret word (``auth_token=``, ``X-Api-Key:``, ``DB_PASSWORD=``), so
# that a name merely containing one (``slow-first-token-downstream: fired 3``) is left alone.
_PAIR_SECRET = re.compile(
    r"(?i)([\"']?\b([\w.\-]*(?:secret|passw(?:or)?d?|pwd|token|api[_\-]?key|access[_\-]?key|private[_\-]?key"
    r"|authori[sz]ation|credential|cookie)s?)[\"']?\s*[=:]\s*[\"']?)"
    r"((?:bearer|basic|token|digest)\s+)?([^\s&\"',;}<>]+)"
)
_BEARER = re.compile(r"(?i)\b(bearer\s+)([A-Za-z0-9\-._~+/]+=*)")
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")


def is_secret_key(key: str) -> bool:
    """Whether a mapping key names a secret (``auth_token``, ``DB_PASSWORD``, ``Authorization``)."""
    return bool(_SECRET_KEY.search(key.lower().replace("-", "_")))


def _is_quantity_key(key: str) -> bool:
    return bool(_QUANTITY_KEY.search(key.lower().replace("-", "_")))


class Masker:
    """Masks secrets in text and structures; ``known`` values are masked wherever they appear."""

    def __init__(self, known: Iterable[str] = ()) -> None:
        values = sorted({value for value in known if _distinctive(value)}, key=len, reverse=True)
        alternatives = "|".join(re.escape(value) for value in values)
        self._known_re = re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])") if values else None

    @classmethod
    def collecting(cls, *structures: Any) -> Masker:
        """A masker that also masks every secret value found in ``structures`` wherever it appears."""
        found: list[str] = []
        for structure in structures:
            _collect(structure, None, False, found)
        return cls(found)

    def text(self, value: str) -> str:
        """``value`` with every secret it contains replaced by ``***``."""
        if not value:
            return value
        if self._known_re is not None:
            value = self._known_re.sub(MASK, value)
        value = _URL_PASSWORD.sub(rf"\1:{MASK}@", value)
        value = _QUERY_SECRET.sub(rf"\1{MASK}", value)
        value = _PAIR_SECRET.sub(_mask_pair, value)
        return _BEARER.sub(rf"\1{MASK}", value)

    def value(self, obj: Any) -> Any:
        """A JSON-ready copy of ``obj`` (dataclasses, enums, paths, sets converted) with secrets masked."""
        return self._walk(obj, None, False)

    def _walk(self, obj: Any, key: str | None, secret: bool) -> Any:
        if obj is None or isinstance(obj, bool):
            return obj
        if isinstance(obj, Enum):
            obj = obj.value
        if isinstance(obj, int | float):
            if secret and not (key is not None and _is_quantity_key(key)):
                return MASK
            if isinstance(obj, float) and not math.isfinite(obj):
                return None
            return obj
        if isinstance(obj, str | bytes | PurePath):
            text = obj.decode("utf-8", "replace") if isinstance(obj, bytes) else str(obj)
            return MASK if secret and text else self.text(text)
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            obj = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        if isinstance(obj, Mapping):
            out: dict[str, Any] = {}
            for k, v in obj.items():
                name = self.text(str(k.value if isinstance(k, Enum) else k))
                out[name] = self._walk(v, name, secret or _secret_entry(name, v))
            return out
        if isinstance(obj, list | tuple | set | frozenset):
            items = sorted(obj, key=repr) if isinstance(obj, set | frozenset) else obj
            return [self._walk(item, key, secret) for item in items]
        return MASK if secret else self.text(repr(obj))


def _distinctive(value: str) -> bool:
    """Whether a secret value is unlike an ordinary word, so it can be masked wherever it appears."""
    if value == MASK or value.strip() != value:
        return False
    return len(value) >= 16 or (len(value) >= 6 and not value.isalpha())


def _secret_entry(key: str, value: Any) -> bool:
    """Whether ``key: value`` holds a secret; a bare ``auth`` key counts only when it holds text."""
    if is_secret_key(key):
        return True
    return key.lower() in {"auth", "password", "pass"} and isinstance(value, str | bytes)


def _mask_pair(match: re.Match[str]) -> str:
    prefix, key, scheme, value = match.group(1), match.group(2), match.group(3) or "", match.group(4)
    if value == MASK or (_NUMBER.fullmatch(value) and _is_quantity_key(key)):
        return match.group(0)
    return f"{prefix}{scheme}{MASK}"


def _collect(obj: Any, key: str | None, secret: bool, found: list[str]) -> None:
    """Gathers the secret values in ``obj``: text under secret keys, and passwords inside URLs."""
    if isinstance(obj, Enum):
        obj = obj.value
    if isinstance(obj, bytes):
        obj = obj.decode("utf-8", "replace")
    if isinstance(obj, str):
        if secret:
            found.append(obj)
            scheme = _BEARER.match(obj)
            if scheme:
                found.append(scheme.group(2))
        found.extend(match.group(2) for match in _URL_PASSWORD.finditer(obj))
        found.extend(match.group(2) for match in _QUERY_SECRET.finditer(obj))
        return
    if isinstance(obj, int | float) and not isinstance(obj, bool):
        if secret and not (key is not None and _is_quantity_key(key)) and abs(obj) >= 1000:
            found.append(str(obj))
        return
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            name = str(k)
            _collect(v, name, secret or _secret_entry(name, v), found)
    elif isinstance(obj, list | tuple | set | frozenset):
        for item in obj:
            _collect(item, key, secret, found)
