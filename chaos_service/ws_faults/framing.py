"""Serialising relayed data frames without `websockets.frames.Frame` objects.

The relay writes each message as one unfragmented text or binary frame, masked on the
proxy's client side (towards the upstream), never compressed: exactly what
``Frame(...).serialize(mask=...)`` produces, minus the object, the checks a relayed
message cannot fail, and the copy through ``io.BytesIO``.
"""

from __future__ import annotations

import secrets
import struct

from websockets.typing import BytesLike

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - the C extension ships with websockets' wheels
    from websockets.utils import apply_mask

_MEDIUM = struct.Struct("!BBH").pack
_LONG = struct.Struct("!BBQ").pack
_FIN_TEXT = 0x81
_FIN_BINARY = 0x82
_MASK_BIT = 0x80


def data_frame(data: BytesLike, text: bool, mask: bool) -> bytes:
    """The bytes of one final text (``text``) or binary frame carrying ``data``.

    ``mask``: the frame goes from a client to a server (RFC 6455 §5.3: a fresh random key).
    """
    head1 = _FIN_TEXT if text else _FIN_BINARY
    length = len(data)
    head2 = _MASK_BIT if mask else 0
    if length < 126:
        header = bytes((head1, head2 | length))
    elif length < 65536:
        header = _MEDIUM(head1, head2 | 126, length)
    else:
        header = _LONG(head1, head2 | 127, length)
    if mask:
        key = secrets.token_bytes(4)
        return b"".join((header, key, apply_mask(data, key)))
    return b"".join((header, data))
