"""Bearer-token authentication for every route but /health: 401 without a valid token, 403
when its role is too low. The token's secret is never logged or echoed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from chaos_service.control.auth import AuthError, require_role
from chaos_service.control.store.database import TokenRecord

bearer = HTTPBearer(auto_error=False, description="A token from `chaos-service token create`.")


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


async def caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> TokenRecord:
    if credentials is None:
        if request.headers.get("authorization"):
            raise _unauthorized("malformed Authorization header: expected 'Bearer <token>'")
        raise _unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    token: TokenRecord | None = await request.app.state.plane.store.find_token(credentials.credentials)
    if token is None:
        raise _unauthorized("unknown or revoked token")
    return token


def role(required: str) -> Callable[[TokenRecord], Awaitable[TokenRecord]]:
    async def check(token: Annotated[TokenRecord, Depends(caller)]) -> TokenRecord:
        try:
            require_role(token.role, required)
        except AuthError as exc:
            raise HTTPException(exc.status, exc.message) from None
        return token

    return check


Viewer = Annotated[TokenRecord, Depends(role("viewer"))]
Operator = Annotated[TokenRecord, Depends(role("operator"))]
Admin = Annotated[TokenRecord, Depends(role("admin"))]


def actor(token: TokenRecord) -> str:
    """How the audit log and run records name whoever used ``token``."""
    return f"{token.name} ({token.id})"
