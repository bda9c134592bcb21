"""fail_attempts: fail the first attempts of each logical request, then let it through.

A client that retries sees ``attempts`` errors, then success: the fault that tells
whether its retry policy copes. The attempt number comes from the
``x-stainless-retry-count`` header that the OpenAI and Anthropic clients send (0 on the
first attempt). Without it, attempts are counted per identical request (method, path
and body) in a bounded map; the count restarts once a request has been let through.
"""

from __future__ import annotations

import hashlib
import random
from collections import OrderedDict
from dataclasses import dataclass

from chaos_service.http_faults.base import AnswerToxic
from chaos_service.http_faults.http_error import RETRY_AFTER, STATUS
from chaos_service.http_faults.replies import Reply, error_reply
from chaos_service.http_faults.request import RequestInfo
from chaos_service.toxics.attributes import Integer

RETRY_COUNT_HEADER = b"x-stainless-retry-count"
#: Requests remembered by the counting map; beyond it the oldest is forgotten.
MAX_TRACKED = 1024


class AttemptCounter:
    """Attempts seen per request key, for clients that do not number their retries."""

    __slots__ = ("_seen", "limit")

    def __init__(self, limit: int = MAX_TRACKED) -> None:
        self.limit = limit
        self._seen: OrderedDict[bytes, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def next_attempt(self, key: bytes) -> int:
        """This attempt's number for ``key`` (0 for the first) and count it."""
        attempt = self._seen.pop(key, 0)
        self._seen[key] = attempt + 1
        if len(self._seen) > self.limit:
            self._seen.popitem(last=False)
        return attempt

    def forget(self, key: bytes) -> None:
        self._seen.pop(key, None)


def request_key(request: RequestInfo) -> bytes:
    """What makes two requests "the same" logical request: method, path and body."""
    digest = hashlib.blake2b(digest_size=16)
    for part in (request.method.encode(), request.target.encode(), request.body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()


def numbered_attempt(request: RequestInfo) -> int | None:
    """The attempt number the client sent, or None."""
    value = request.header(RETRY_COUNT_HEADER)
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


@dataclass(frozen=True, slots=True)
class FailAttempts(AnswerToxic):
    attempts: int = 1
    status: int = 503
    retry_after: float | None = None

    type_name = "fail_attempts"
    attributes = (
        Integer("attempts", description="how many attempts of each request fail"),
        STATUS,
        RETRY_AFTER,
    )

    def new_state(self) -> AttemptCounter:
        return AttemptCounter()

    def answer(self, request: RequestInfo, state: AttemptCounter, rng: random.Random) -> Reply | None:
        attempt = numbered_attempt(request)
        if attempt is None:
            key = request_key(request)
            attempt = state.next_attempt(key)
            if attempt >= self.attempts:
                state.forget(key)  # let through: the next identical request starts afresh
        if attempt >= self.attempts:
            return None
        return error_reply(self.status, rng=rng, retry_after=self.retry_after)
