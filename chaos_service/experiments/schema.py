"""The shape of an experiment file: pydantic models of one YAML document.

These models check types and formats (durations, comparisons, names, ranges, known
fault types and probe options) and refuse unknown keys. What needs more than one entry
or the environment — probe names in checks, the timeline, proxies, processes and
containers, proxy protocols, toxic and container attributes — is checked by
`chaos_service.experiments.loader`, which turns these models into an `ExperimentPlan`.
See docs/experiments.md.

Custom errors are `PydanticCustomError`s whose context carries the whole ``message``
and, optionally, ``at``: the key (below the failing value) the message is about.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, create_model, field_validator
from pydantic_core import PydanticCustomError

from chaos_service import http_faults, toxics, ws_faults
from chaos_service.errors import InvalidInput
from chaos_service.experiments.durations import parse_comparison, parse_duration, shown
from chaos_service.experiments.plan import PROBE_METRICS, SLO_METRICS, Comparison, Settings
from chaos_service.sandbox.chat.config import DEFECTS

#: Fault types by the proxy protocol they act on (the engine's toxic types).
TOXIC_FAULTS: dict[str, tuple[str, ...]] = {
    "tcp": tuple(toxics.REGISTRY),
    "http": tuple(http_faults.REGISTRY),
    "websocket": tuple(ws_faults.REGISTRY),
}
#: Whole-proxy faults: ``partition`` (every byte swallowed both ways), ``down`` (connections reset).
PROXY_FAULTS = ("partition", "down")
#: The protocol of the proxies that whole-proxy faults apply to (they are made of tcp toxics).
PROXY_FAULT_PROTOCOL = "tcp"
#: Faults on an environment process or container (``process: NAME``): ``pause`` (stopped, then
#: resumed), ``kill``.
PROCESS_FAULTS = ("pause", "kill")
#: Faults on an environment container only (``process: NAME`` naming a container): ``restart``,
#: ``stop`` (started again when the fault ends).
CONTAINER_FAULTS = ("restart", "stop")
ALL_FAULTS: tuple[str, ...] = (
    *PROXY_FAULTS,
    *(t for types in TOXIC_FAULTS.values() for t in types),
    *PROCESS_FAULTS,
    *CONTAINER_FAULTS,
)

PROBE_TYPES = ("http", "postgres", "redis", "llm", "reconnect", "websocket_chat")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
NAME_RULE = "letters, digits and _ . - (up to 64 characters, starting with a letter or digit)"
USER = re.compile(r"[A-Za-z0-9_.\-@]{1,64}")
MAX_USERS = 1000
_DEFAULTS = Settings()


def problem(message: str, at: str | None = None) -> PydanticCustomError:
    """A validation error worded for the file's author; ``at`` names the key below the value it is about."""
    context: dict[str, Any] = {"message": message}
    if at is not None:
        context["at"] = at
    return PydanticCustomError("experiment", "{message}", context)


def _duration(value: object) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise problem(str(exc)) from None


def _offset(value: object) -> float:
    try:
        return parse_duration(value, allow_zero=True)
    except ValueError as exc:
        raise problem(str(exc)) from None


def _name(value: object) -> object:
    if isinstance(value, str) and not NAME.fullmatch(value):
        raise problem(f"must be a name of {NAME_RULE}, not {shown(value)}")
    return value


def _text(value: object) -> object:
    if isinstance(value, str) and not value.strip():
        raise problem("must not be empty")
    return value


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


Duration = Annotated[float, BeforeValidator(_duration)]  # positive
Offset = Annotated[float, BeforeValidator(_offset)]  # 0 or more
Name = Annotated[str, BeforeValidator(_name)]
Text = Annotated[str, BeforeValidator(_text)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- settings ------------------------------------------------------------------------------------


class SettingsModel(Model):
    warmup: Offset = _DEFAULTS.warmup
    recovery_window: Duration = _DEFAULTS.recovery_window
    steady_window: Duration = _DEFAULTS.steady_window
    k: int = Field(default=_DEFAULTS.k, ge=1, le=1000)
    ttl_margin: Offset = _DEFAULTS.ttl_margin
    exclusive: bool = _DEFAULTS.exclusive

    @field_validator("steady_window")
    @classmethod
    def _within_recovery(cls, value: float, info: ValidationInfo) -> float:
        window = info.data.get("recovery_window")
        if window is not None and value > window:
            raise problem(f"must not be longer than recovery_window ({window:g} s): it is read from its end")
        return value

    def settings(self) -> Settings:
        return Settings(**self.model_dump())


# -- probes --------------------------------------------------------------------------------------


class ProbeModel(Model):
    """What every probe has: where it goes and how often. The rest is the type's ``options``."""

    type: str
    endpoint: Name | None = None
    url: Text | None = None
    every: Duration = 1.0
    deadline: Duration | None = None

    def options(self) -> dict[str, Any]:
        """The type-specific options, by their names in the file (durations in seconds); unset ones left out."""
        return self.model_dump(exclude=set(ProbeModel.model_fields), exclude_none=True)


class JsonCheck(Model):
    field: Text
    value: Any = None


def _statuses(value: object) -> object:
    statuses = value if isinstance(value, list) else [value]
    if not statuses or not all(isinstance(s, int) and not isinstance(s, bool) and 100 <= s <= 599 for s in statuses):
        raise problem(f"must be an HTTP status (100-599) or a list of them, not {shown(value)}")
    return value


def _scalar(value: object) -> object:
    if isinstance(value, dict | list):
        raise problem(f"must be a single value (text, a number, true or false), not {shown(value)}")
    return value


class HttpProbeModel(ProbeModel):
    type: Literal["http"]
    method: Annotated[Literal[HTTP_METHODS], BeforeValidator(_upper)] | None = None  # type: ignore[valid-type]
    expect_status: Annotated[int | list[int], BeforeValidator(_statuses)] | None = None
    json_: JsonCheck | None = Field(default=None, alias="json")
    max_latency: Duration | None = None
    headers: dict[str, str] | None = None
    body: str | None = None

    def options(self) -> dict[str, Any]:
        options = super().options()
        if self.json_ is not None:
            del options["json_"]
            options["json"] = self.json_.model_dump(exclude_unset=True)
        return options


class PostgresProbeModel(ProbeModel):
    type: Literal["postgres"]
    query: Text | None = None
    expected: Annotated[Any, BeforeValidator(_scalar)] = None
    max_latency: Duration | None = None


class RedisProbeModel(ProbeModel):
    type: Literal["redis"]
    max_latency: Duration | None = None


class LlmProbeModel(ProbeModel):
    type: Literal["llm"]
    model: Text | None = None
    prompt: Text | None = None
    extra_body: dict[str, Any] | None = None
    retries: int | None = Field(default=None, ge=0, le=10)
    backoff: Offset | None = None
    max_ttft: Duration | None = None
    max_latency: Duration | None = None


class ReconnectProbeModel(ProbeModel):
    type: Literal["reconnect"]
    user: str | None = None
    max_latency: Duration | None = None

    @field_validator("user")
    @classmethod
    def _user(cls, value: str) -> str:
        if not USER.fullmatch(value):
            raise problem(f"must be a user id of letters, digits and _ . - @ (up to 64), not {shown(value)}")
        return value


class ChatProbeModel(ProbeModel):
    type: Literal["websocket_chat"]
    users: int = Field(default=1, ge=1, le=MAX_USERS)
    content: Text | None = None
    sequence: Text | None = None

    @field_validator("sequence")
    @classmethod
    def _sequence(cls, value: str) -> str:
        from chaos_service.probes.checkers.sequence import RunSpec

        try:
            RunSpec(value)
        except InvalidInput as exc:
            raise problem(f"not a valid run grammar: {exc}") from None
        return value


PROBE_MODELS: dict[str, type[ProbeModel]] = {
    "http": HttpProbeModel,
    "postgres": PostgresProbeModel,
    "redis": RedisProbeModel,
    "llm": LlmProbeModel,
    "reconnect": ReconnectProbeModel,
    "websocket_chat": ChatProbeModel,
}


# -- checks: steady state, guardrails, SLOs ------------------------------------------------------


class Checks(Model):
    """A model whose metric fields hold comparisons (``">= 0.99"``), parsed with the metric's units."""

    @field_validator("*", mode="before")
    @classmethod
    def _comparison(cls, value: object, info: ValidationInfo) -> object:
        name = info.field_name or ""
        if name not in PROBE_METRICS and name not in SLO_METRICS:
            return value
        try:
            return parse_comparison(name, value)
        except ValueError as exc:
            raise problem(str(exc)) from None

    def checks(self, order: list[str]) -> tuple[Comparison, ...]:
        """The comparisons given, in ``order`` (the file's order of keys)."""
        values = [getattr(self, key, None) for key in order]
        return tuple(value for value in values if isinstance(value, Comparison))


_PROBE_CHECKS: dict[str, Any] = {metric: (Comparison | None, None) for metric in PROBE_METRICS}
SteadyStateModel: type[Checks] = create_model("SteadyStateModel", __base__=Checks, probe=(Name, ...), **_PROBE_CHECKS)
GuardrailModel: type[Checks] = create_model(
    "GuardrailModel",
    __base__=Checks,
    probe=(Name, ...),
    for_=(Duration, Field(default=10.0, alias="for")),
    **_PROBE_CHECKS,
)
_SLO_CHECKS: dict[str, Any] = {metric: (Comparison | None, None) for metric in SLO_METRICS}
SloModel: type[Checks] = create_model("SloModel", __base__=Checks, **_SLO_CHECKS)


# -- method --------------------------------------------------------------------------------------


class FaultModel(Model):
    """One fault of the timeline; which target kind, stream and attributes fit it is the loader's check."""

    name: Name | None = None
    at: Offset | None = None
    after: Name | None = None
    delay: Offset | None = None
    fault: str
    proxy: Name | None = None
    process: Name | None = None
    duration: Duration
    stream: Literal["upstream", "downstream"] | None = None
    toxicity: float | None = Field(default=None, ge=0, le=1)
    attributes: dict[str, Any] | None = None

    @field_validator("fault")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in ALL_FAULTS:
            raise problem(f"unknown fault {shown(value)}; faults: {', '.join(ALL_FAULTS)}")
        return value

    @field_validator("after")
    @classmethod
    def _not_with_at(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("at") is not None:
            raise problem("give at or after, not both")
        return value

    @field_validator("delay")
    @classmethod
    def _not_at(cls, value: float, info: ValidationInfo) -> float:
        if info.data.get("at") is not None:
            raise problem("delay goes with after or with an entry that follows the previous one, not with at")
        return value

    @property
    def target(self) -> str:
        return self.proxy or self.process or ""


class PauseModel(Model):
    """``{pause: D}``: the entries after it that have neither ``at`` nor ``after`` start D later."""

    pause: Duration


# -- rollbacks and the document ------------------------------------------------------------------


class RollbackModel(Model):
    name: Name | None = None
    method: Annotated[Literal[HTTP_METHODS], BeforeValidator(_upper)] = "POST"  # type: ignore[valid-type]
    url: Text
    body: Any = None


def _catches(value: object) -> object:
    if isinstance(value, str) and value not in DEFECTS:
        raise problem(f"unknown seeded defect {shown(value)}; defects: {', '.join(DEFECTS)}")
    return value


class ExperimentFile(Model):
    """The document. ``slo`` and the entries of ``probes``, ``steady_state``, ``method``,
    ``abort_when`` and ``rollbacks`` are validated one by one (see the loader), so that one
    bad entry does not hide the problems of the others."""

    title: Text
    description: str = ""
    tags: list[Text] = []
    catches: Annotated[str, BeforeValidator(_catches)] | None = None
    settings: SettingsModel = SettingsModel()
    probes: dict[str, Any]
    steady_state: list[Any] = []
    method: list[Any]
    abort_when: list[Any] = []
    slo: dict[str, Any] = {}
    rollbacks: list[Any] = []

    @field_validator("probes")
    @classmethod
    def _some_probes(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            raise problem("declare at least one probe")
        return value

    @field_validator("method")
    @classmethod
    def _some_faults(cls, value: list[Any]) -> list[Any]:
        if not value:
            raise problem("list at least one fault")
        return value


def fields_of(model: type[BaseModel]) -> list[str]:
    """A model's keys as a file writes them (aliases)."""
    return [info.alias or name for name, info in model.model_fields.items()]
