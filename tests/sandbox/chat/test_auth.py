"""Token checks: every refusal has its close code and reason; a good token gives its user."""

from __future__ import annotations

import time

import jwt
import pytest

from chaos_service.sandbox.chat.auth import (
    BAD_SIGNATURE,
    EXPIRED,
    MALFORMED,
    MISSING,
    authenticate,
    issue_token,
    token_from,
)

SECRET = "s" * 64
NOW = 1_800_000_000.0


def signed(claims: dict[str, object], key: str | None = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)  # type: ignore[arg-type]


def test_a_valid_token_gives_its_user() -> None:
    assert authenticate(issue_token(SECRET, "alice@example.com", 60, now=NOW), SECRET, now=NOW) == "alice@example.com"


@pytest.mark.parametrize("token", [None, ""])
def test_no_token_is_missing(token: str | None) -> None:
    assert authenticate(token, SECRET) is MISSING
    assert (MISSING.code, MISSING.reason) == (4401, "missing token")


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        "a.b.c",
        signed({"exp": NOW + 60}),  # no sub
        signed({"sub": "alice"}),  # no exp
        signed({"sub": "", "exp": NOW + 60}),
        signed({"sub": "a" * 65, "exp": NOW + 60}),
        signed({"sub": "al ice", "exp": NOW + 60}),
        signed({"sub": 42, "exp": NOW + 60}),
        signed({"sub": "alice", "exp": "tomorrow"}),
    ],
)
def test_malformed_tokens_are_refused_with_4400(token: str) -> None:
    assert authenticate(token, SECRET, now=NOW) is MALFORMED
    assert (MALFORMED.code, MALFORMED.reason) == (4400, "malformed token")


@pytest.mark.parametrize(
    "token",
    [
        signed({"sub": "alice", "exp": NOW + 60}, key="k" * 64),
        signed({"sub": "alice", "exp": NOW + 60}, algorithm="HS512"),
        signed({"sub": "alice", "exp": NOW + 60}, key=None, algorithm="none"),
    ],
)
def test_wrong_key_or_algorithm_is_a_bad_signature(token: str) -> None:
    assert authenticate(token, SECRET, now=NOW) is BAD_SIGNATURE
    assert (BAD_SIGNATURE.code, BAD_SIGNATURE.reason) == (4401, "invalid token signature")


def test_an_expired_token_is_refused_even_when_well_signed() -> None:
    token = issue_token(SECRET, "alice", ttl=60, now=NOW - 61)
    assert authenticate(token, SECRET, now=NOW) is EXPIRED
    assert (EXPIRED.code, EXPIRED.reason) == (4401, "token expired")
    assert authenticate(token, SECRET, now=NOW - 30) == "alice"


def test_tokens_expire_on_the_real_clock_by_default() -> None:
    assert authenticate(issue_token(SECRET, "bob", ttl=-1), SECRET) is EXPIRED
    assert authenticate(issue_token(SECRET, "bob", ttl=60), SECRET) == "bob"
    assert time.time() > 0


def test_the_query_parameter_wins_over_the_header() -> None:
    assert token_from({"token": "q"}, "Bearer h") == "q"
    assert token_from({}, "Bearer h") == "h"
    assert token_from({}, "bearer  h ") == "h"
    assert token_from({}, "Basic abc") is None
    assert token_from({}, "Bearer ") is None
    assert token_from({}, None) is None
