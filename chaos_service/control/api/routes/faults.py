"""/faults (ad-hoc faults, each with a time limit), /halt, and /proxies passed through to the engine."""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote

import httpx
from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi import Path as PathParam

from chaos_service.control.api.models import FaultIn, FaultOut, HaltIn, HaltOut, iso, responses
from chaos_service.control.api.routes import plane
from chaos_service.control.api.security import Operator, Viewer, actor
from chaos_service.control.auth import AuthError, require_role
from chaos_service.control.errors import Halted, Unavailable
from chaos_service.control.plane import adhoc_name
from chaos_service.control.store.database import TokenRecord
from chaos_service.errors import InvalidInput
from chaos_service.experiments.plan import FaultPlan

router = APIRouter(tags=["faults"])
ERRORS = responses(404, 409)


@router.post(
    "/faults",
    response_model=FaultOut,
    status_code=status.HTTP_201_CREATED,
    responses=responses(404, 409, 422, 503),
)
async def inject_fault(body: FaultIn, request: Request, token: Operator) -> FaultOut:
    """Apply a fault now; it ends by itself after ``duration`` seconds (enforced by the engine too)."""
    fault = FaultPlan(
        name=adhoc_name(),
        fault=body.type,
        target=body.target,
        at=0.0,
        duration=body.duration,
        stream=body.stream,
        toxicity=body.toxicity,
        attributes=body.attributes,
    )
    return FaultOut.of(await plane(request).inject(fault, actor(token)))


@router.get("/faults", response_model=list[FaultOut], responses=ERRORS)
async def list_faults(request: Request, _: Viewer) -> list[FaultOut]:
    """Every fault applied and not yet removed, ad-hoc or of a run, on any replica."""
    return [FaultOut.of(fault) for fault in await plane(request).faults()]


@router.delete("/faults/{fault_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
async def remove_fault(
    fault_id: Annotated[int, PathParam(ge=1, le=2**63 - 1)], request: Request, token: Operator
) -> None:
    await plane(request).remove_fault(fault_id, actor(token))


# -- halt ---------------------------------------------------------------------------------------


@router.post("/halt", response_model=HaltOut, tags=["halt"], responses=ERRORS)
async def halt(request: Request, token: Viewer, body: HaltIn | None = None) -> HaltOut:
    """Remove every fault now, abort every run, and refuse new ones until released. Any role may halt."""
    reason = body.reason if body else ""
    report = await plane(request).halt(actor(token), reason)
    return HaltOut(
        halted=True,
        by=actor(token),
        reason=reason,
        removed_faults=report.removed_faults,
        failed=report.failed,
        aborted_runs=report.aborted_runs,
        seconds=round(report.seconds, 4),
    )


@router.get("/halt", response_model=HaltOut, tags=["halt"], responses=ERRORS)
async def halt_state(request: Request, _: Viewer) -> HaltOut:
    state = await plane(request).halted()
    if state is None:
        return HaltOut(halted=False)
    return HaltOut(halted=True, by=state.get("by"), reason=state.get("reason"), at=iso(state.get("at")))


@router.delete("/halt", response_model=HaltOut, tags=["halt"], responses=ERRORS)
async def release(request: Request, token: Operator) -> HaltOut:
    """Lift the halt: runs and faults may start again."""
    await plane(request).release(actor(token))
    return HaltOut(halted=False)


# -- the engine's own API -------------------------------------------------------------------------

PASS_METHODS = ["GET", "POST", "DELETE"]


@router.api_route("/proxies", methods=PASS_METHODS, tags=["proxies"], responses=ERRORS)
async def proxies(request: Request, token: Viewer) -> Response:
    """The engine's Toxiproxy API for proxies, as is (GET needs viewer, changes need operator)."""
    return await _pass_through(request, token, "/proxies")


@router.api_route("/proxies/{path:path}", methods=PASS_METHODS, tags=["proxies"], responses=ERRORS)
async def proxy_path(path: str, request: Request, token: Viewer) -> Response:
    """``/proxies/{name}``, ``/proxies/{name}/toxics`` and so on, passed to the engine. A toxic created
    here must carry a ``ttl`` (seconds), like every fault the control plane lets through."""
    return await _pass_through(request, token, f"/proxies/{path}")


async def _pass_through(request: Request, token: TokenRecord, path: str) -> Response:
    control = plane(request)
    body = await request.body()
    if request.method != "GET":
        try:
            require_role(token.role, "operator")
        except AuthError as exc:
            raise HTTPException(exc.status, exc.message) from None
        if request.method == "POST" and path.rstrip("/").endswith("/toxics"):
            _check_toxic(body)
            if (state := await control.halted()) is not None:
                raise Halted(f"the control plane is halted ({state.get('reason') or 'no reason given'}); no new toxics")
    try:
        answer = await control.engine.request(
            request.method,
            quote(path, safe="/"),  # a name with control characters still makes a valid URL
            content=body,
            params=request.query_params,
            headers={"Content-Type": request.headers.get("content-type", "application/json")},
        )
    except httpx.HTTPError as exc:
        raise Unavailable(f"the engine at {control.environment.engine} did not answer: {exc}") from None
    if request.method != "GET" and answer.status_code < 400:
        await control.store.audit(actor(token), f"engine.{request.method.lower()}", path)
    return Response(answer.content, status_code=answer.status_code, media_type=answer.headers.get("content-type"))


def _check_toxic(body: bytes) -> None:
    try:
        toxic: Any = json.loads(body or b"null")
    except ValueError:
        raise InvalidInput("the toxic must be a JSON object") from None
    ttl = toxic.get("ttl") if isinstance(toxic, dict) else None
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 < ttl <= 3600:
        raise InvalidInput(
            "a toxic created through the control plane needs a 'ttl' of more than 0 and at most 3600 "
            "seconds, so that it ends by itself (or use POST /faults)"
        )
