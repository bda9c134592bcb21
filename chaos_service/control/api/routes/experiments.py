"""/experiments: stored experiment files, validated against this control plane's environment."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from chaos_service.control.api.models import (
    ExperimentIn,
    ExperimentOut,
    ExperimentSourceIn,
    Validation,
    responses,
)
from chaos_service.control.api.routes import plane
from chaos_service.control.api.security import Operator, Viewer, actor

router = APIRouter(prefix="/experiments", tags=["experiments"])
ERRORS = responses(404, 409)


@router.get("", response_model=list[ExperimentOut], responses=ERRORS)
async def list_experiments(request: Request, _: Viewer) -> list[ExperimentOut]:
    return [ExperimentOut.of(row) for row in await plane(request).store.list_experiments()]


@router.post(
    "",
    response_model=ExperimentOut,
    status_code=status.HTTP_201_CREATED,
    responses=responses(404, 409, 422),
)
async def create_experiment(body: ExperimentIn, request: Request, response: Response, token: Operator) -> ExperimentOut:
    row = await plane(request).create_experiment(body.name, body.source, actor(token))
    response.headers["Location"] = f"/experiments/{row.name}"
    return ExperimentOut.of(row)


@router.post("/validate", response_model=Validation, responses=responses(404, 409, 422))
async def validate_experiment(body: ExperimentIn, request: Request, _: Viewer) -> Validation:
    """Check a file without storing it: 200 with what it would do, or 422 with every problem."""
    plan = plane(request).validate(body.name, body.source)
    return Validation(
        valid=True,
        title=plan.title,
        probes=[probe.name for probe in plan.probes],
        faults=[f"{fault.name}: {fault.fault} on {fault.target}" for fault in plan.method],
        length_seconds=plan.settings.warmup + plan.method_end + plan.settings.recovery_window,
    )


@router.get("/{name}", response_model=ExperimentOut, responses=ERRORS)
async def get_experiment(name: str, request: Request, _: Viewer) -> ExperimentOut:
    return ExperimentOut.of(await plane(request).experiment(name))


@router.put("/{name}", response_model=ExperimentOut, responses=responses(404, 409, 422))
async def update_experiment(name: str, body: ExperimentSourceIn, request: Request, token: Operator) -> ExperimentOut:
    return ExperimentOut.of(await plane(request).update_experiment(name, body.source, actor(token)))


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
async def delete_experiment(name: str, request: Request, token: Operator) -> None:
    await plane(request).delete_experiment(name, actor(token))
