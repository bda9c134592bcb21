"""The API's request and response bodies, with the examples the OpenAPI document shows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chaos_service.control.store.catalog import ExperimentRow
from chaos_service.control.store.database import FaultRecord
from chaos_service.control.store.runs import RunEvent, RunRow
from chaos_service.control.store.schedules import FiringRow

EXAMPLE_SOURCE = """title: Redis slowed for a moment
settings: {warmup: 2s, recovery_window: 5s, steady_window: 2s}
probes:
  cache: {type: redis, endpoint: redis, every: 100ms, deadline: 2s}
steady_state:
  - {probe: cache, success_rate: ">= 0.9"}
method:
  - {name: slow, at: 0s, fault: latency, proxy: redis, attributes: {latency: 200}, duration: 5s}
slo:
  success_rate: ">= 0.9"
"""


def iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExperimentIn(Strict):
    name: str = Field(min_length=1, max_length=100, examples=["redis-latency"])
    source: str = Field(min_length=1, max_length=200_000, description="The experiment file, YAML.")

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "redis-latency", "source": EXAMPLE_SOURCE}]}
    )


class ExperimentSourceIn(Strict):
    source: str = Field(min_length=1, max_length=200_000, description="The experiment file, YAML.")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"source": EXAMPLE_SOURCE}]})


class ExperimentOut(BaseModel):
    name: str
    title: str
    source: str
    created_at: str | None
    updated_at: str | None
    updated_by: str

    @classmethod
    def of(cls, row: ExperimentRow) -> ExperimentOut:
        return cls(
            name=row.name,
            title=row.title,
            source=row.source,
            created_at=iso(row.created_at),
            updated_at=iso(row.updated_at),
            updated_by=row.updated_by,
        )


class Validation(BaseModel):
    valid: bool
    title: str
    probes: list[str]
    faults: list[str]
    length_seconds: float


class Problem(BaseModel):
    line: int
    path: str
    message: str


class ErrorOut(BaseModel):
    detail: str
    problems: list[Problem] = []

    model_config = ConfigDict(json_schema_extra={"examples": [{"detail": "no experiment 'nope'", "problems": []}]})


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers of a route: 401 and 403 always, and ``codes``."""
    return {code: {"model": ErrorOut} for code in (401, 403, *codes)}


class RunIn(Strict):
    experiment: str = Field(min_length=1, max_length=100, examples=["redis-latency"])
    dry_run: bool = Field(False, description="Resolve targets and run the probes, inject nothing.")


class RunOut(BaseModel):
    id: str
    experiment: str
    status: str = Field(examples=["running"])
    reason: str
    started_by: str
    replica: str
    created_at: str | None
    finished_at: str | None
    dry_run: bool
    abort_requested: str | None
    schedule_id: str | None
    progress: dict[str, Any] | None = Field(None, description="The latest status event while it runs.")

    @classmethod
    def of(cls, row: RunRow, progress: dict[str, Any] | None = None) -> RunOut:
        return cls(
            id=row.id,
            experiment=row.experiment,
            status=row.status,
            reason=row.reason,
            started_by=row.started_by,
            replica=row.replica,
            created_at=iso(row.created_at),
            finished_at=iso(row.finished_at),
            dry_run=row.dry_run,
            abort_requested=row.abort_requested,
            schedule_id=row.schedule_id,
            progress=progress,
        )


class EventOut(BaseModel):
    seq: int
    at: str | None
    kind: str
    data: dict[str, Any]

    @classmethod
    def of(cls, event: RunEvent) -> EventOut:
        return cls(seq=event.seq, at=iso(event.at), kind=event.kind, data=event.data)


class FaultIn(Strict):
    target: str = Field(min_length=1, max_length=100, description="A proxy (or process) of the environment.")
    type: str = Field(min_length=1, max_length=50, description="A toxic type, partition, down, pause or kill.")
    duration: float = Field(gt=0, le=3600, description="Seconds; mandatory: the fault ends by itself then.")
    attributes: dict[str, Any] = Field(default_factory=dict)
    stream: Literal["upstream", "downstream"] = "downstream"
    toxicity: float = Field(1.0, ge=0, le=1)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"target": "redis", "type": "latency", "duration": 30, "attributes": {"latency": 250}}]
        },
    )


class FaultOut(BaseModel):
    id: int
    name: str
    run_id: str | None
    driver: str
    handle: dict[str, Any]
    expires_at: str | None

    @classmethod
    def of(cls, fault: FaultRecord) -> FaultOut:
        return cls(
            id=fault.id,
            name=fault.name,
            run_id=fault.run_id,
            driver=fault.driver,
            handle=fault.handle,
            expires_at=iso(fault.expires_at),
        )


class HaltIn(Strict):
    reason: str = Field("", max_length=500, examples=["customer-facing incident"])


class HaltOut(BaseModel):
    halted: bool
    by: str | None = None
    reason: str | None = None
    at: str | None = None
    removed_faults: list[str] = []
    failed: list[str] = []
    aborted_runs: list[str] = []
    seconds: float | None = None


class ScheduleIn(Strict):
    cron: str = Field(
        min_length=1, max_length=100, description="5 fields, or 6 with seconds first.", examples=["0 14 * * thu"]
    )
    timezone: str = Field("UTC", min_length=1, max_length=64, examples=["Europe/Berlin"])
    experiments: list[str] = Field(min_length=1, max_length=50, description="Run in this order.")
    overlap: Literal["forbid", "allow"] = "forbid"
    misfire: Literal["skip", "run_once"] = "skip"
    webhook: str | None = Field(None, max_length=2000, pattern=r"^https?://", examples=["https://hooks.example/gd"])
    enabled: bool = True

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "cron": "0 14 * * thu",
                    "timezone": "Europe/Berlin",
                    "experiments": ["redis-latency", "postgres-partition"],
                    "webhook": "https://hooks.example/game-day",
                }
            ]
        },
    )


class FiringOut(BaseModel):
    fire_time: str | None
    replica: str
    outcome: str | None
    finished_at: str | None
    detail: dict[str, Any] | None

    @classmethod
    def of(cls, firing: FiringRow) -> FiringOut:
        return cls(
            fire_time=iso(firing.fire_time),
            replica=firing.replica,
            outcome=firing.outcome,
            finished_at=iso(firing.finished_at),
            detail=firing.detail,
        )


class ScheduleOut(BaseModel):
    id: str
    cron: str
    timezone: str
    experiments: list[str]
    overlap: str
    misfire: str
    webhook: str | None
    enabled: bool
    next_fire_times: list[str]
    recent_firings: list[FiringOut] = []


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    replica: str
    store: str
    engine: str
    toxiproxy: str | None = Field(None, description="The Toxiproxy serving the tcp proxies, where there is one.")
    halted: bool


class AuditOut(BaseModel):
    at: str | None
    actor: str
    action: str
    target: str
    detail: dict[str, Any]
