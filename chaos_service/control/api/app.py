"""The FastAPI application: routers, the error table, metrics, and the run-event WebSocket."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from chaos_service import __version__
from chaos_service.control.api.metrics import LatencyMiddleware, Metrics
from chaos_service.control.api.routes import experiments, faults, ops, runs
from chaos_service.control.errors import Conflict, Unavailable
from chaos_service.control.plane import ControlPlane
from chaos_service.errors import AlreadyExists, ChaosServiceError, InvalidInput, NotFound
from chaos_service.experiments.source import InvalidExperiment

log = logging.getLogger(__name__)

DESCRIPTION = """Run chaos experiments against an AI chat back-end, inject time-limited faults, schedule
game days and halt everything at once. Every route but `/health` needs
`Authorization: Bearer <token>` (tokens: `chaos-service token create NAME --role viewer|operator|admin`)."""

#: Domain errors to status codes: the one place the API decides them.
STATUS_OF: list[tuple[type[Exception], int]] = [
    (NotFound, 404),
    (Conflict, 409),
    (AlreadyExists, 409),
    (InvalidInput, 422),
    (Unavailable, 503),
    (ChaosServiceError, 502),
]


def create_app(plane: ControlPlane, gamedays: Any = None) -> FastAPI:
    app = FastAPI(title="chaos-service control plane", version=__version__, description=DESCRIPTION)
    app.state.plane = plane
    app.state.gamedays = gamedays
    app.state.metrics = Metrics()
    for router in (experiments.router, runs.router, faults.router, ops.router):
        app.include_router(router)
    app.add_api_websocket_route("/runs/{run_id}/events/ws", runs.websocket_events)
    app.add_middleware(LatencyMiddleware, metrics=app.state.metrics)
    app.add_exception_handler(ChaosServiceError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    return app


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    status = next(code for kind, code in STATUS_OF if isinstance(exc, kind))
    body: dict[str, Any] = {"detail": str(exc)}
    if isinstance(exc, InvalidExperiment):
        body["detail"] = "the experiment is not valid"
        body["problems"] = [
            {"line": problem.line, "path": problem.path, "message": problem.message} for problem in exc.problems
        ]
    return JSONResponse(body, status_code=status)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {"line": 0, "path": ".".join(str(part) for part in error.get("loc", ())), "message": error.get("msg", "")}
        for error in exc.errors()
    ]
    detail = "; ".join(f"{problem['path']}: {problem['message']}" for problem in problems)
    return JSONResponse({"detail": detail or "invalid request", "problems": problems}, status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse({"detail": "internal error; the server log has the details"}, status_code=500)
