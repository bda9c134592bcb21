"""/health, /metrics, /audit and /schedules (game days)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict
from typing import Annotated

import httpx
from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse

from chaos_service.control.api.models import (
    AuditOut,
    ErrorOut,
    FiringOut,
    HealthOut,
    ScheduleIn,
    ScheduleOut,
    iso,
    responses,
)
from chaos_service.control.api.routes import plane
from chaos_service.control.api.security import Admin, Operator, Viewer, actor
from chaos_service.control.plane import NAME, ControlPlane
from chaos_service.control.scheduler.cron import parse_schedule, upcoming
from chaos_service.control.store.schedules import ScheduleRow
from chaos_service.errors import InvalidInput, NotFound

router = APIRouter()
ERRORS = responses(404, 409)


@router.get("/health", response_model=HealthOut, tags=["operations"], responses={503: {"model": HealthOut}})
async def health(request: Request) -> Response:
    """Liveness for load balancers: no token needed, and nothing secret in the answer."""
    control = plane(request)
    store, halted = "ok", False
    try:
        halted = await control.halted() is not None
    except Exception as exc:  # any store failure is what this endpoint exists to report
        store = f"unavailable: {type(exc).__name__}"
    answers = await asyncio.gather(*(_reachable(client) for client in control.data_planes.values()))
    planes = dict(zip(control.data_planes, answers, strict=True))
    body = HealthOut(
        status="ok" if store == "ok" and set(planes.values()) == {"ok"} else "degraded",
        replica=control.store.replica,
        store=store,
        engine=planes["engine"],
        toxiproxy=planes.get("toxiproxy"),
        halted=halted,
    )
    return JSONResponse(body.model_dump(), status_code=200 if store == "ok" else 503)


async def _reachable(client: httpx.AsyncClient) -> str:
    try:
        (await client.get("/version", timeout=2.0)).raise_for_status()
    except httpx.HTTPError as exc:
        return f"unavailable: {type(exc).__name__}"
    return "ok"


@router.get(
    "/metrics",
    tags=["operations"],
    responses={**ERRORS, 200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
)
async def metrics(request: Request, _: Viewer) -> Response:
    body = await request.app.state.metrics.render(plane(request).store)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/audit", response_model=list[AuditOut], tags=["operations"], responses=ERRORS)
async def audit(request: Request, _: Admin, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[AuditOut]:
    """Who did what and when, newest first."""
    entries = await plane(request).store.audit_entries(limit)
    return [AuditOut(at=iso(e.at), actor=e.actor, action=e.action, target=e.target, detail=e.detail) for e in entries]


# -- game days ------------------------------------------------------------------------------------


async def _schedule_out(control: ControlPlane, row: ScheduleRow, *, firings: bool = False) -> ScheduleOut:
    next_times = upcoming(row, 5) if row.enabled else []
    recent = await control.store.list_firings(row.id, limit=20) if firings else []
    return ScheduleOut(
        **asdict(row),  # what is not part of the answer (created_at) is ignored
        next_fire_times=[moment.isoformat() for moment in next_times],
        recent_firings=[FiringOut.of(firing) for firing in recent],
    )


@router.get("/schedules", response_model=list[ScheduleOut], tags=["game days"], responses=ERRORS)
async def list_schedules(request: Request, _: Viewer) -> list[ScheduleOut]:
    control = plane(request)
    return [await _schedule_out(control, row) for row in await control.store.list_schedules()]


@router.get("/schedules/{schedule_id}", response_model=ScheduleOut, tags=["game days"], responses=ERRORS)
async def get_schedule(schedule_id: str, request: Request, _: Viewer) -> ScheduleOut:
    """The schedule, its next fire times and its recent firings with their runs."""
    control = plane(request)
    row = await control.store.get_schedule(schedule_id)
    if row is None:
        raise NotFound(f"no schedule {schedule_id!r}")
    return await _schedule_out(control, row, firings=True)


@router.put(
    "/schedules/{schedule_id}",
    response_model=ScheduleOut,
    tags=["game days"],
    responses={**ERRORS, 201: {"model": ScheduleOut}, 422: {"model": ErrorOut}},
)
async def put_schedule(
    schedule_id: str, body: ScheduleIn, request: Request, response: Response, token: Operator
) -> ScheduleOut:
    """Create or replace a game day: its experiments run in order at each fire time, once across replicas."""
    control = plane(request)
    if not NAME.match(schedule_id) or len(schedule_id) > 64:
        raise InvalidInput(f"schedule id {schedule_id!r}: use 1-64 lower-case letters, digits, '.', '_' or '-'")
    parse_schedule(body.cron, body.timezone)
    missing = [name for name in body.experiments if await control.store.get_experiment(name) is None]
    if missing:
        raise InvalidInput(f"no experiment {', '.join(repr(name) for name in missing)}: create it first")
    row = ScheduleRow(
        schedule_id,
        body.cron,
        body.timezone,
        body.experiments,
        body.overlap,
        body.misfire,
        body.webhook,
        body.enabled,
        time.time(),
    )
    created = await control.store.put_schedule(row)
    await control.store.audit(actor(token), "schedule.put", schedule_id, cron=body.cron, timezone=body.timezone)
    await _resync(request)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    stored = await control.store.get_schedule(schedule_id)
    assert stored is not None
    return await _schedule_out(control, stored)


@router.delete("/schedules/{schedule_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["game days"], responses=ERRORS)
async def delete_schedule(schedule_id: str, request: Request, token: Operator) -> None:
    control = plane(request)
    if not await control.store.delete_schedule(schedule_id):
        raise NotFound(f"no schedule {schedule_id!r}")
    await control.store.audit(actor(token), "schedule.delete", schedule_id)
    await _resync(request)


async def _resync(request: Request) -> None:
    gamedays = request.app.state.gamedays
    if gamedays is not None:
        await gamedays.sync()
