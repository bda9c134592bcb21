"""What a toxic knows about a request, and how its match attributes select requests."""

from __future__ import annotations

import json
from collections.abc import Sequence
from fnmatch import fnmatchcase

_UNPARSED: object = object()


class RequestInfo:
    """A request as the proxy received it: method, target, headers and the whole body.

    ``headers`` are (name, value) pairs with lower-case names, as h11 delivers them.
    The ``model`` field of a JSON body is parsed on first use only.
    """

    __slots__ = ("_model", "body", "headers", "method", "target")

    def __init__(
        self, method: str, target: str, headers: Sequence[tuple[bytes, bytes]] = (), body: bytes = b""
    ) -> None:
        self.method = method.upper()
        self.target = target
        self.headers = headers
        self.body = body
        self._model: object = _UNPARSED

    @property
    def path(self) -> str:
        """The target without its query string (and without scheme and host in absolute form)."""
        target = self.target
        if "://" in target:
            slash = target.find("/", target.find("://") + 3)
            target = target[slash:] if slash >= 0 else "/"
        return target.split("?", 1)[0]

    def header(self, name: bytes) -> bytes | None:
        """The first value of header ``name`` (lower-case), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    @property
    def model(self) -> str | None:
        """The ``model`` field of a JSON object body, or None."""
        if self._model is _UNPARSED:
            self._model = request_model(self.body)
        return self._model  # type: ignore[return-value]


def request_model(body: bytes) -> str | None:
    """The ``model`` of a JSON object body; None for other bodies."""
    if not body.lstrip().startswith(b"{"):
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    model = parsed.get("model") if isinstance(parsed, dict) else None
    return model if isinstance(model, str) else None


def matches(method: str, path: str, model: str, request: RequestInfo) -> bool:
    """Whether a request is selected by match attributes ("" matches anything).

    ``method`` is compared case-insensitively; ``path`` and ``model`` are shell globs
    (``*``, ``?``, ``[...]``), case-sensitive, on the path without its query and on the
    JSON body's ``model`` (a request without one matches only an empty pattern).
    """
    if method and method.upper() != request.method:
        return False
    if path and not fnmatchcase(request.path, path):
        return False
    if model:
        value = request.model
        if value is None or not fnmatchcase(value, model):
            return False
    return True
