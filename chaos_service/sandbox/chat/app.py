"""The chat back-end's HTTP surface: WebSocket ``/ws`` and ``GET /health``."""

from __future__ import annotations

import contextlib
import logging

from fastapi import FastAPI, WebSocket
from fastapi.responses import JSONResponse

from chaos_service.sandbox.chat.auth import Refusal, authenticate, token_from
from chaos_service.sandbox.chat.fanout import RedisUnavailable
from chaos_service.sandbox.chat.health import health_report
from chaos_service.sandbox.chat.service import ChatService
from chaos_service.sandbox.chat.session import ChatSession

log = logging.getLogger(__name__)

#: Close code when a required dependency fails during the handshake (RFC 6455 "internal error").
INTERNAL_ERROR = 1011


def create_app(service: ChatService) -> FastAPI:
    app = FastAPI(title="chaos-service sandbox chat", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/health")
    async def health() -> JSONResponse:
        status, report = await health_report(service)
        return JSONResponse(report, status_code=status)

    @app.websocket("/ws")
    async def chat(websocket: WebSocket) -> None:
        # Every handshake is accepted, so that a refused client can read the close code and reason.
        await websocket.accept()
        token = token_from(dict(websocket.query_params), websocket.headers.get("authorization"))
        user = authenticate(token, service.settings.jwt_secret)
        if isinstance(user, Refusal):
            await websocket.close(user.code, user.reason)
            return
        session = ChatSession(service, websocket, user)
        try:
            await service.fanout.open_session(session.session_id, user)
        except RedisUnavailable:
            await websocket.close(INTERNAL_ERROR, "session store unavailable")
            return
        slot = service.hub.attach(user, session)
        try:
            await session.serve()
        finally:
            service.hub.detach(slot)
            with contextlib.suppress(RedisUnavailable):
                await service.fanout.close_session(session.session_id)

    return app
