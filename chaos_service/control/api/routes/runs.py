"""/runs: start, list, inspect and abort runs; their reports; their events live (SSE and WebSocket).

Events come from the store, so a run started on another replica streams the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, WebSocket, WebSocketDisconnect, status
from fastapi.responses import StreamingResponse
from starlette.websockets import WebSocketState

from chaos_service.control.api.models import EventOut, RunIn, RunOut, responses
from chaos_service.control.api.routes import plane
from chaos_service.control.api.security import Operator, Viewer, actor
from chaos_service.control.auth import AuthError, bearer_secret, require_role
from chaos_service.control.errors import Conflict
from chaos_service.control.plane import ControlPlane
from chaos_service.control.store.runs import LIVE, RunEvent
from chaos_service.errors import NotFound

router = APIRouter(prefix="/runs", tags=["runs"])
ERRORS = responses(404, 409)
#: How often a live stream looks for new events in the store.
EVENT_POLL = 0.2
KEEPALIVE = 15.0
REPORTS = {
    "journal": ("application/json", "journal.json"),
    "junit": ("application/xml", "junit.xml"),
    "report": ("text/html; charset=utf-8", "report.html"),
}


async def _run_out(control: ControlPlane, run_id: str) -> RunOut:
    row = await control.store.get_run(run_id)
    if row is None:
        raise NotFound(f"no run {run_id!r}")
    progress = None
    if row.status in LIVE and (latest := await control.store.latest_event(run_id, "status")) is not None:
        progress = latest.data
    return RunOut.of(row, progress)


@router.post("", response_model=RunOut, status_code=status.HTTP_202_ACCEPTED, responses=responses(404, 409, 422))
async def start_run(body: RunIn, request: Request, response: Response, token: Operator) -> RunOut:
    """Start a run of a stored experiment; 409 while halted or when this replica is at its limit."""
    control = plane(request)
    run_id = await control.start_run(body.experiment, actor(token), dry_run=body.dry_run)
    response.headers["Location"] = f"/runs/{run_id}"
    return await _run_out(control, run_id)


@router.get("", response_model=list[RunOut], responses=ERRORS)
async def list_runs(
    request: Request,
    _: Viewer,
    status_: Annotated[str | None, Query(alias="status", max_length=32)] = None,
    experiment: Annotated[str | None, Query(max_length=100)] = None,
    schedule: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[RunOut]:
    """Newest first."""
    rows = await plane(request).store.list_runs(
        status=status_, experiment=experiment, schedule_id=schedule, limit=limit
    )
    return [RunOut.of(row) for row in rows]


@router.get("/{run_id}", response_model=RunOut, responses=ERRORS)
async def get_run(run_id: str, request: Request, _: Viewer) -> RunOut:
    return await _run_out(plane(request), run_id)


@router.post("/{run_id}/abort", response_model=RunOut, status_code=status.HTTP_202_ACCEPTED, responses=ERRORS)
async def abort_run(run_id: str, request: Request, token: Operator) -> RunOut:
    """Ask the run to stop, on whichever replica runs it: its faults are removed, it ends ``aborted``."""
    control = plane(request)
    await control.abort_run(run_id, actor(token))
    return await _run_out(control, run_id)


async def _follow(control: ControlPlane, run_id: str, after: int) -> AsyncIterator[RunEvent | None]:
    """The run's events after ``after``, as they come; None now and then to keep a connection open.
    Ends after the run's ``finished`` event (or at once for a run that ended before)."""
    idle = 0.0
    while True:
        events = await control.store.events_after(run_id, after)
        for event in events:
            after = event.seq
            yield event
            if event.kind == "finished":
                return
        if not events:
            if await control.store.run_status(run_id) not in LIVE and not await control.store.events_after(
                run_id, after
            ):
                return
            idle += EVENT_POLL
            if idle >= KEEPALIVE:
                idle = 0.0
                yield None
            await asyncio.sleep(EVENT_POLL)
        else:
            idle = 0.0


@router.get(
    "/{run_id}/events",
    responses={**ERRORS, 200: {"content": {"text/event-stream": {}}, "description": "Server-sent events."}},
)
async def run_events(
    run_id: str,
    request: Request,
    _: Viewer,
    last_event_id: Annotated[int | None, Header(ge=0)] = None,
    after: Annotated[int, Query(ge=0, description="Only events after this sequence number.")] = 0,
) -> StreamingResponse:
    """Server-sent events: ``started``, ``message``, ``status`` (each second), ``finished``.

    Each event's ``id`` is its sequence number, so a client that reconnects with
    ``Last-Event-ID`` misses nothing. The stream ends after ``finished``.
    """
    control = plane(request)
    if await control.store.get_run(run_id) is None:
        raise NotFound(f"no run {run_id!r}")

    async def stream() -> AsyncIterator[str]:
        async for event in _follow(control, run_id, max(after, last_event_id or 0)):
            if event is None:
                yield ": keep-alive\n\n"
            else:
                data = EventOut.of(event).model_dump_json()
                yield f"id: {event.seq}\nevent: {event.kind}\ndata: {data}\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


@router.get(
    "/{run_id}/{kind}",
    responses={
        **ERRORS,
        200: {"content": {"application/json": {}, "application/xml": {}, "text/html": {}}},
    },
)
async def run_report(run_id: str, kind: str, request: Request, _: Viewer) -> Response:
    """The run's ``journal`` (JSON), ``junit`` (XML) or ``report`` (HTML), once it has ended."""
    if kind not in REPORTS:
        raise NotFound(f"no {kind!r} for a run; there are {', '.join(REPORTS)}")
    control = plane(request)
    row = await control.store.get_run(run_id)
    if row is None:
        raise NotFound(f"no run {run_id!r}")
    content = await control.store.report(run_id, "html" if kind == "report" else kind)
    if content is None:
        if row.status in LIVE:
            raise Conflict(f"run {run_id} is still {row.status}: its {kind} is written when it ends")
        raise NotFound(f"run {run_id} ended {row.status} without a {kind} ({row.reason})")
    media_type, filename = REPORTS[kind]
    headers = {"Content-Disposition": f'inline; filename="{run_id}-{filename}"'}
    return Response(content, media_type=media_type, headers=headers)


async def websocket_events(websocket: WebSocket, run_id: str) -> None:
    """The same events over a WebSocket, one JSON text message each (registered on the app)."""
    control: ControlPlane = websocket.app.state.plane
    # Accepted first, so that a refusal reaches the client as a close code (4401, 4403, 4404)
    # with its reason, not as a bare HTTP 403 from the handshake.
    await websocket.accept()
    try:
        secret = bearer_secret(websocket.headers.get("authorization"))
        token = await control.store.find_token(secret)
        if token is None:
            raise AuthError(401, "unknown or revoked token")
        require_role(token.role, "viewer")
    except AuthError as exc:
        await websocket.close(code=4401 if exc.status == 401 else 4403, reason=exc.message)
        return
    if await control.store.get_run(run_id) is None:
        await websocket.close(code=4404, reason=f"no run {run_id!r}")
        return
    requested = websocket.query_params.get("after", "0")
    after = int(requested) if requested.isdigit() else 0
    try:
        async for event in _follow(control, run_id, after):
            if event is not None:
                await websocket.send_text(EventOut.of(event).model_dump_json())
        await websocket.close(code=1000, reason="the run has ended")
    except WebSocketDisconnect:
        pass
    finally:
        if websocket.client_state is WebSocketState.CONNECTED:
            await websocket.close()
