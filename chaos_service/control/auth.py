"""Who may do what on the control plane: bearer tokens with the roles viewer < operator < admin.

Pure: the API layer turns `AuthError` into 401 (no or unknown token) or 403 (role too low).
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("viewer", "operator", "admin")


@dataclass(frozen=True)
class AuthError(Exception):
    status: int
    message: str

    def __str__(self) -> str:
        return self.message


def bearer_secret(authorization: str | None) -> str:
    """The token in an ``Authorization: Bearer …`` header; raises `AuthError` (401) otherwise."""
    if not authorization:
        raise AuthError(401, "missing bearer token: send 'Authorization: Bearer <token>'")
    scheme, _, secret = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise AuthError(401, "malformed Authorization header: expected 'Bearer <token>'")
    return secret.strip()


def require_role(role: str, required: str) -> None:
    """Raises `AuthError` (403) unless ``role`` is ``required`` or above."""
    if required not in ROLES:
        raise ValueError(f"unknown role {required!r}")
    if role not in ROLES or ROLES.index(role) < ROLES.index(required):
        raise AuthError(403, f"this needs the {required} role; the token has {role}")
