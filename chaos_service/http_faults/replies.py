"""Responses the proxy makes up itself: OpenAI-style errors with realistic headers.

OpenAI's error body is ``{"error": {"message", "type", "param", "code"}}``; each status
gets the type, code and wording the real API (or, for 502/504, a gateway in front of it)
uses, so client code that branches on them sees what it would see in production.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Reply:
    """A complete response: status, headers (without framing headers) and body."""

    status: int
    headers: Headers
    body: bytes


@dataclass(frozen=True, slots=True)
class ErrorStyle:
    type: str
    code: str | None
    message: str


_STYLES: dict[int, ErrorStyle] = {
    400: ErrorStyle("invalid_request_error", None, "Bad request."),
    401: ErrorStyle("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ErrorStyle("permission_denied", "unsupported_country_region_territory", "Request forbidden."),
    404: ErrorStyle(
        "invalid_request_error", "model_not_found", "The model does not exist or you do not have access to it."
    ),
    408: ErrorStyle("timeout", None, "Request timed out."),
    409: ErrorStyle("conflict", None, "The request conflicts with another request. Please try again."),
    413: ErrorStyle("invalid_request_error", "request_too_large", "The request body is too large."),
    422: ErrorStyle("invalid_request_error", None, "The request could not be processed."),
    429: ErrorStyle("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ErrorStyle("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    502: ErrorStyle("server_error", "bad_gateway", "Bad gateway."),
    503: ErrorStyle("server_error", "overloaded", "The server is overloaded or not ready yet."),
    504: ErrorStyle("server_error", "gateway_timeout", "Gateway timeout."),
    529: ErrorStyle("overloaded_error", "overloaded", "Overloaded"),
}
_CLIENT_ERROR = ErrorStyle("invalid_request_error", None, "The request was rejected.")
_SERVER_ERROR = ErrorStyle("server_error", None, "The server had an error while processing your request.")

_GATEWAY_TITLES = {502: "502 Bad Gateway", 504: "504 Gateway Time-out"}

#: The request limit shown in the rate-limit headers of a 429.
RATE_LIMIT_REQUESTS = 60


def error_style(status: int) -> ErrorStyle:
    """The OpenAI-style error type, code and default message for a status."""
    return _STYLES.get(status) or (_CLIENT_ERROR if status < 500 else _SERVER_ERROR)


def error_body(status: int, message: str | None = None) -> bytes:
    """The JSON error body for ``status`` (``message`` replaces the default wording)."""
    style = error_style(status)
    error = {"message": message or style.message, "type": style.type, "param": None, "code": style.code}
    return json.dumps({"error": error}).encode()


def gateway_html(status: int) -> bytes:
    """An nginx-style HTML error page, as a load balancer in front of an API sends."""
    title = _GATEWAY_TITLES.get(status, f"{status} Error")
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    ).encode()


def go_duration(seconds: float) -> str:
    """A duration as Go prints it, as OpenAI's ``x-ratelimit-reset-*`` headers show it:
    ``200ms``, ``1s``, ``1.5s``, ``6m0s``, ``1h2m3s``."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{_short(seconds * 1000)}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{int(hours)}h{int(minutes)}m{_short(secs)}s"
    if minutes:
        return f"{int(minutes)}m{_short(secs)}s"
    return f"{_short(secs)}s"


def _short(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text or "0"


def error_reply(
    status: int,
    *,
    rng: random.Random,
    message: str | None = None,
    retry_after: float | None = None,
    should_retry: bool | None = None,
    html: bool = False,
) -> Reply:
    """An error response as an OpenAI-compatible API sends it.

    ``retry_after`` (seconds) sends ``Retry-After`` (whole seconds, rounded up, as the
    standard requires) and ``retry-after-ms`` (exact; preferred by the OpenAI and
    Anthropic clients). A 429 carries the rate-limit headers. ``html`` sends a gateway's
    HTML page instead of JSON (meant for 502 and 504).
    """
    headers: list[tuple[str, str]] = []
    if html:
        body = gateway_html(status)
        headers.append(("content-type", "text/html"))
    else:
        body = error_body(status, message)
        headers.append(("content-type", "application/json"))
        headers.append(("x-request-id", f"req_{rng.getrandbits(128):032x}"))
    if retry_after is not None:
        headers.append(("retry-after", str(math.ceil(retry_after))))
        headers.append(("retry-after-ms", _short(retry_after * 1000)))
    if status == 429:
        reset = retry_after if retry_after is not None else 1.0
        headers.append(("x-ratelimit-limit-requests", str(RATE_LIMIT_REQUESTS)))
        headers.append(("x-ratelimit-remaining-requests", "0"))
        headers.append(("x-ratelimit-reset-requests", go_duration(reset)))
    if should_retry is not None:
        headers.append(("x-should-retry", "true" if should_retry else "false"))
    return Reply(status, tuple(headers), body)
