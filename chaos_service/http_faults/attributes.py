"""What http toxic attributes add to the shared ones (`chaos_service.toxics.attributes`).

Http toxics declare their attributes with the shared specs; text attributes (messages,
globs) use the shorter `MAX_TEXT` here, and the ``method`` match attribute its own spec.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from chaos_service.toxics.attributes import rejection, shown

#: Longest text attribute (messages, globs, methods), in characters.
MAX_TEXT = 4096

# RFC 9110 token characters: what an HTTP method may be made of.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


@dataclass(frozen=True, slots=True)
class Method:
    """An HTTP method (any RFC 9110 token, stored upper-case), or "" for any method."""

    name: str
    description: str = ""

    def parse(self, type_name: str, value: object) -> str:
        if isinstance(value, str) and len(value) <= MAX_TEXT and (not value or _TOKEN.fullmatch(value)):
            return value.upper()
        raise rejection(type_name, self.name, 'an HTTP method such as POST (or "" for any)', shown(value))
