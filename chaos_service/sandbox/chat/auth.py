"""Client authentication: a JWT checked into a user id or a refusal with its close code.

Pure: no sockets. The WebSocket handler accepts every handshake and closes a refused
one with the refusal's code and reason, so every client can read why.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import jwt

ALGORITHM = "HS256"
USER_ID = re.compile(r"[A-Za-z0-9_.\-@]{1,64}")

#: WebSocket close codes (4000-4999 are the application's own).
UNAUTHORIZED = 4401
BAD_TOKEN = 4400


@dataclass(frozen=True)
class Refusal:
    code: int
    reason: str


MISSING = Refusal(UNAUTHORIZED, "missing token")
MALFORMED = Refusal(BAD_TOKEN, "malformed token")
BAD_SIGNATURE = Refusal(UNAUTHORIZED, "invalid token signature")
EXPIRED = Refusal(UNAUTHORIZED, "token expired")


def authenticate(token: str | None, secret: str, now: float | None = None) -> str | Refusal:
    """The token's user id, or why it is refused."""
    if not token:
        return MISSING
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return MALFORMED
    user, expiry = claims.get("sub"), claims.get("exp")
    if not isinstance(user, str) or not USER_ID.fullmatch(user) or not isinstance(expiry, int | float):
        return MALFORMED
    if header.get("alg") != ALGORITHM:
        return BAD_SIGNATURE
    try:
        jwt.decode(token, secret, algorithms=[ALGORITHM], options={"verify_exp": False})
    except jwt.PyJWTError:
        return BAD_SIGNATURE
    if expiry <= (time.time() if now is None else now):
        return EXPIRED
    return user


def issue_token(secret: str, user: str, ttl: float = 3600.0, now: float | None = None) -> str:
    """A token the back-end accepts for ``user`` until ``ttl`` seconds from now."""
    issued = time.time() if now is None else now
    return jwt.encode({"sub": user, "exp": int(issued + ttl)}, secret, algorithm=ALGORITHM)


def token_from(query: dict[str, str] | object, authorization: str | None) -> str | None:
    """The token from ``?token=`` or an ``Authorization: Bearer`` header (the query wins)."""
    token = query.get("token") if isinstance(query, dict) else None
    if token:
        return token
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return None
