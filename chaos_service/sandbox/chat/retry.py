"""When the chat back-end calls the LLM again after a failed attempt, and how long it waits.

The policy (docs/sandbox.md, "Resilience"): a call that failed without an HTTP status
(the connection failed, timed out, or the stream broke before anything was passed on)
or with 408, 429 or a 5xx is tried again, up to ``llm_attempts`` attempts in all.
Between attempts the back-end waits ``llm_backoff`` seconds, doubling each time, at
most ``llm_backoff_max``; when the LLM says how long to wait (``retry-after-ms``, or
``Retry-After`` in seconds or as an HTTP-date) that wait is used instead, at most
``retry_after_max``. Any other 4xx is the request's fault and is not retried.

With the seeded defect ``no_retry_on_llm_503`` a 503 is not retried; nothing else
changes. Everything here is pure: the clock is read only for an HTTP-date, and a
caller may pass ``now``.
"""

from __future__ import annotations

import math
import time
from datetime import UTC
from email.utils import parsedate_to_datetime

from chaos_service.sandbox.chat.config import ChatSettings

#: The defect that makes a 503 from the LLM final.
NO_RETRY_ON_503 = "no_retry_on_llm_503"
#: 4xx statuses that say "try again": request timeout and rate limit.
RETRYABLE_CLIENT_STATUSES = frozenset({408, 429})


def is_retryable(status: int | None, settings: ChatSettings) -> bool:
    """Whether a failure with this status (None: no HTTP status) may be tried again at all."""
    if status is None:
        return True
    if status == 503 and settings.has(NO_RETRY_ON_503):
        return False
    return status in RETRYABLE_CLIENT_STATUSES or 500 <= status <= 599


def backoff(attempt: int, settings: ChatSettings) -> float:
    """The wait after failed attempt ``attempt`` (1-based): exponential, capped."""
    if attempt < 1:
        raise ValueError(f"attempts are counted from 1, got {attempt}")
    # 2 ** (attempt - 1) overflows a float for absurd attempt numbers; the cap wins long before
    exponent = min(attempt - 1, 64)
    return min(settings.llm_backoff * 2.0**exponent, settings.llm_backoff_max)


def server_wait(retry_after: str | None, retry_after_ms: str | None, *, now: float | None = None) -> float | None:
    """The wait the server asked for, in seconds (None: no usable header).

    ``retry-after-ms`` (milliseconds, fractions allowed) wins over ``Retry-After``
    (seconds, or an HTTP-date; a date in the past is a wait of 0).
    """
    if retry_after_ms is not None:
        milliseconds = _non_negative(retry_after_ms)
        if milliseconds is not None:
            return milliseconds / 1000.0
    if retry_after is None:
        return None
    seconds = _non_negative(retry_after)
    if seconds is not None:
        return seconds
    return _until_date(retry_after, time.time() if now is None else now)


def retry_delay(
    attempt: int,
    *,
    status: int | None,
    retry_after: str | None = None,
    retry_after_ms: str | None = None,
    settings: ChatSettings,
    now: float | None = None,
) -> float | None:
    """Seconds to wait before the next attempt, or None when the call must not be tried again.

    ``attempt`` is the number (from 1) of the attempt that just failed and ``status``
    its HTTP status (None when there was none: a connection error, a timeout, a
    broken or failed stream). ``retry_after`` and ``retry_after_ms`` are the
    response's headers of those names, when it had them.
    """
    if attempt < 1:
        raise ValueError(f"attempts are counted from 1, got {attempt}")
    if attempt >= settings.llm_attempts or not is_retryable(status, settings):
        return None
    asked = server_wait(retry_after, retry_after_ms, now=now)
    if asked is not None:
        return min(asked, settings.retry_after_max)
    return backoff(attempt, settings)


def _non_negative(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return value


def _until_date(text: str, now: float) -> float | None:
    try:
        moment = parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # "-0000" and obsolete zones: the standard says GMT
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - now)
