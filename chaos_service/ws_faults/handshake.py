"""The opening handshake as a proxy sees it: what to forward, and the refusals it sends.

Pure functions over `websockets` request and response values: no I/O here.
"""

from __future__ import annotations

import email.utils
import http
import random
from collections.abc import Iterable

from websockets.datastructures import Headers
from websockets.exceptions import InvalidHeader
from websockets.headers import parse_subprotocol
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from chaos_service.engine.model import ToxicEntry
from chaos_service.ws_faults.refuse import Refuse

#: Hop-by-hop headers (RFC 9110 §7.6.1) and the ones each WebSocket hop negotiates for
#: itself; the proxy never copies them from one hop to the other. Lower case.
_NOT_FORWARDED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
        "sec-websocket-accept",
    }
)
#: Also not copied from the upstream's responses: the proxy's response has its own.
_NOT_FROM_UPSTREAM = _NOT_FORWARDED | {"date", "server", "content-type"}


def _connection_tokens(headers: Headers) -> set[str]:
    """Header names a ``Connection`` header declares hop-by-hop."""
    return {
        token.strip().lower() for value in headers.get_all("Connection") for token in value.split(",") if token.strip()
    }


def end_to_end_headers(headers: Headers, excluded: Iterable[str] = _NOT_FORWARDED) -> list[tuple[str, str]]:
    """The headers to pass on to the next hop, in their order (``Authorization``, ``Cookie``,
    ``Origin``, ``User-Agent``, custom ``X-…`` headers, …)."""
    dropped = set(excluded) | _connection_tokens(headers)
    return [(name, value) for name, value in headers.raw_items() if name.lower() not in dropped]


def offered_subprotocols(request: Request) -> list[Subprotocol] | None:
    """The subprotocols the client offers, in its order (None: none, or unparsable)."""
    offered: list[Subprotocol] = []
    try:
        for value in request.headers.get_all("Sec-WebSocket-Protocol"):
            offered.extend(parse_subprotocol(value))
    except InvalidHeader:
        return None
    return offered or None


def upstream_uri(upstream: str, request: Request) -> str:
    """``ws://<upstream><path and query of the client's request>``."""
    path = request.path if request.path.startswith("/") else f"/{request.path}"
    return f"ws://{upstream}{path}"


def _reason_phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:  # 529 and friends: not in the registry, still sent by real servers
        return "Error"


def http_response(status: int, body: bytes, headers: Iterable[tuple[str, str]] = ()) -> Response:
    """A complete non-101 response (the connection closes after it)."""
    response_headers = Headers([("Date", email.utils.formatdate(usegmt=True)), ("Connection", "close"), *headers])
    if "Content-Type" not in response_headers:
        response_headers["Content-Type"] = "text/plain; charset=utf-8"
    response_headers["Content-Length"] = str(len(body))
    return Response(status, _reason_phrase(status), response_headers, body)


def refusal(toxic: Refuse) -> Response:
    """The response a ws_refuse toxic sends instead of switching protocols."""
    return http_response(toxic.status, toxic.body.encode(), toxic.headers())


def upstream_refusal(response: Response) -> Response:
    """The upstream's refusal, passed on: same status, body and end-to-end headers."""
    headers = end_to_end_headers(response.headers, _NOT_FROM_UPSTREAM)
    content_type = response.headers.get("Content-Type")
    if content_type is not None:
        headers.append(("Content-Type", content_type))
    return http_response(response.status_code, bytes(response.body), headers)


def upstream_response_headers(response: Response) -> list[tuple[str, str]]:
    """Headers of the upstream's 101 worth passing on to the client (``Set-Cookie``, …)."""
    return end_to_end_headers(response.headers, _NOT_FROM_UPSTREAM)


def choose_refusal(entries: Iterable[ToxicEntry], rng: random.Random) -> tuple[ToxicEntry, Refuse] | None:
    """The first ws_refuse toxic whose coin (``toxicity``, per handshake) says it applies."""
    for entry in entries:
        toxic = entry.toxic
        if not isinstance(toxic, Refuse):
            continue
        if entry.toxicity >= 1.0 or (entry.toxicity > 0.0 and rng.random() < entry.toxicity):
            return entry, toxic
    return None
