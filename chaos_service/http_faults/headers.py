"""Header rules of a reverse proxy: what is forwarded each way, and what is not."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

RawHeaders = Sequence[tuple[bytes, bytes]]

#: Headers that describe one connection, not the message (RFC 9110 section 7.6.1), plus
#: the legacy ones proxies drop too. Never forwarded.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)


def _connection_tokens(headers: RawHeaders) -> set[bytes]:
    """Header names listed in ``Connection`` (hop-by-hop too)."""
    tokens: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            tokens.update(token.strip().lower() for token in value.split(b","))
    return tokens


def _without(headers: RawHeaders, drop: Iterable[bytes]) -> list[tuple[bytes, bytes]]:
    dropped = HOP_BY_HOP | _connection_tokens(headers) | set(drop)
    return [(name, value) for name, value in headers if name.lower() not in dropped]


def upstream_request_headers(headers: RawHeaders, *, identity: bool = False) -> list[tuple[bytes, bytes]]:
    """The client's request headers to send upstream.

    ``Host`` and the framing headers are left to the upstream client (which sets them
    for the upstream address and the buffered body); ``Expect`` was answered here.
    ``identity`` asks the upstream for an uncompressed body (needed to read its events).
    """
    drop = {b"host", b"content-length", b"expect"}
    if identity:
        drop.add(b"accept-encoding")
    forwarded = _without(headers, drop)
    if identity:
        forwarded.append((b"accept-encoding", b"identity"))
    return forwarded


def client_response_headers(headers: RawHeaders, *, keep_length: bool) -> list[tuple[bytes, bytes]]:
    """The upstream's response headers to send to the client (framing is redone here).

    ``keep_length`` False drops ``Content-Length``, for a body a toxic changes.
    """
    return _without(headers, () if keep_length else (b"content-length",))


def header_value(headers: RawHeaders, name: bytes) -> bytes | None:
    """The first value of a header (``name`` lower-case), or None."""
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def is_event_stream(headers: RawHeaders) -> bool:
    """Whether a response body is an uncompressed Server-Sent Events stream."""
    content_type = header_value(headers, b"content-type") or b""
    encoding = (header_value(headers, b"content-encoding") or b"identity").strip().lower()
    return content_type.strip().lower().startswith(b"text/event-stream") and encoding == b"identity"
