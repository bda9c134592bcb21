"""Experiment files to plans: read the YAML, substitute variables, validate, resolve.

`load_experiment` reads one file into an `ExperimentPlan`, or raises `InvalidExperiment`
with every problem it found, each naming the file, the line and the field path::

    experiments/pg.yaml:14: method[2].duration: must be a positive duration like 5s, 250ms or 1.5m, not "soon"

With an environment, ``${env.…}`` variables, endpoints, proxies, processes and the
protocol of each proxy are resolved and checked; without one only the file itself is
(probe ``url``s taken from endpoints are then empty). `discover` lists the experiment
files in files and directories. The format is described in docs/experiments.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, cast

from chaos_service.errors import InvalidInput
from chaos_service.experiments.durations import shown
from chaos_service.experiments.plan import (
    PROBE_METRICS,
    ExperimentPlan,
    GuardrailPlan,
    ProbePlan,
    ProbeType,
    RollbackPlan,
    SteadyStatePlan,
)
from chaos_service.experiments.schema import (
    NAME,
    NAME_RULE,
    PROBE_MODELS,
    PROBE_TYPES,
    ExperimentFile,
    GuardrailModel,
    ProbeModel,
    RollbackModel,
    SloModel,
    SteadyStateModel,
    fields_of,
)
from chaos_service.experiments.source import (
    FieldPath,
    InvalidExperiment,
    Problem,
    Source,
    listing,
    read_source,
    substitute,
    unique_name,
    validate_part,
)
from chaos_service.experiments.timeline import resolve_method
from chaos_service.sandbox.environment import Environment

__all__ = ["InvalidExperiment", "Problem", "discover", "load_experiment", "parse_experiment"]

SUFFIXES = (".yaml", ".yml")
#: The endpoint a probe type uses when it names neither ``endpoint`` nor ``url``.
DEFAULT_ENDPOINTS = {
    "postgres": "postgres",
    "redis": "redis",
    "llm": "llm",
    "reconnect": "chat_ws",
    "websocket_chat": "chat_ws",
}
#: URL schemes each probe type accepts.
SCHEMES = {
    "http": ("http", "https"),
    "llm": ("http", "https"),
    "postgres": ("postgresql", "postgres"),
    "redis": ("redis", "rediss", "unix"),
    "reconnect": ("ws", "wss"),
    "websocket_chat": ("ws", "wss"),
}
MAX_DEADLINE = 10.0


def discover(paths: Iterable[str | Path]) -> list[Path]:
    """The experiment files among ``paths``: files as given, and every ``*.yaml``/``*.yml`` under
    directories (recursively, sorted, hidden ones skipped); each file once.

    Raises:
        InvalidInput: a path that does not exist.
    """
    found: dict[Path, None] = {}
    for path in map(Path, paths):
        if path.is_dir():
            for file in sorted(path.rglob("*")):
                hidden = any(part.startswith(".") for part in file.relative_to(path).parts)
                if file.suffix in SUFFIXES and file.is_file() and not hidden:
                    found.setdefault(file)
        elif path.exists():
            found.setdefault(path)
        else:
            raise InvalidInput(f"{path}: no such file or directory")
    return list(found)


def load_experiment(
    path: str | Path, environment: Environment | None = None, *, variables: Mapping[str, str] | None = None
) -> ExperimentPlan:
    """The plan of the experiment file at ``path``, resolved against ``environment`` if given.

    ``variables`` are what ``${NAME}`` reads (default: the process environment).

    Raises:
        InvalidExperiment: the file cannot be read, is not YAML, or is not a valid experiment.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InvalidExperiment(str(path), [Problem(str(path), 0, "", f"cannot read the file: {reason}")]) from None
    return parse_experiment(text, str(path), environment, variables=variables)


def parse_experiment(
    text: str, file: str, environment: Environment | None = None, *, variables: Mapping[str, str] | None = None
) -> ExperimentPlan:
    """Like `load_experiment`, for the contents of a file named ``file``."""
    source = read_source(text, file)
    data = substitute(source, environment, os.environ if variables is None else variables)
    plan = _Resolver(source, environment).plan(data)
    if source.problems:
        raise InvalidExperiment(file, _deduplicated(source.problems))
    assert plan is not None
    return plan


def _deduplicated(problems: list[Problem]) -> list[Problem]:
    """One problem per path: the first found (a variable that failed is not also a bad value)."""
    seen: dict[tuple[int, str], Problem] = {}
    for p in problems:
        seen.setdefault((p.line, p.path), p)
    return list(seen.values())


class _Resolver:
    """Validates the document part by part and builds the plan; problems go to ``source.problems``."""

    def __init__(self, source: Source, environment: Environment | None) -> None:
        self.source = source
        self.env = environment

    def problem(self, path: FieldPath, message: str, *, key: bool = False) -> None:
        self.source.add(path, message, key=key)

    def plan(self, data: Any) -> ExperimentPlan | None:
        if not isinstance(data, dict):
            self.problem((), f"must be a mapping of fields ({', '.join(fields_of(ExperimentFile))}), not {shown(data)}")
            return None
        document: ExperimentFile | None = validate_part(self.source, ExperimentFile, data, ())
        raw_probes: dict[str, Any] = data["probes"] if isinstance(data.get("probes"), dict) else {}
        probes = [self.probe(name, value) for name, value in raw_probes.items()]
        declared = list(raw_probes)
        steady = [self.steady_state(i, entry, declared) for i, entry in enumerate(_list(data, "steady_state"))]
        method = resolve_method(self.source, _list(data, "method"), self.env)
        guards = [self.guardrail(i, entry, declared) for i, entry in enumerate(_list(data, "abort_when"))]
        slo = data.get("slo")
        slo_model = validate_part(self.source, SloModel, slo, ("slo",)) if slo is not None else None
        rollbacks = self.rollbacks(_list(data, "rollbacks"))
        if document is None or self.source.problems:
            return None
        if steady and document.settings.warmup == 0:
            self.problem(("settings", "warmup"), "must be more than 0 when steady_state is declared: it is read then")
            return None
        return ExperimentPlan(
            path=self.source.file,
            title=document.title,
            description=document.description,
            tags=tuple(document.tags),
            catches=document.catches,
            probes=tuple(p for p in probes if p is not None),
            steady_state=tuple(s for s in steady if s is not None),
            method=method,
            abort_when=tuple(g for g in guards if g is not None),
            slo=slo_model.checks(list(slo)) if slo_model is not None and isinstance(slo, dict) else (),
            rollbacks=rollbacks,
            settings=document.settings.settings(),
        )

    # -- probes ------------------------------------------------------------------------------

    def probe(self, name: str, value: Any) -> ProbePlan | None:
        path: FieldPath = ("probes", name)
        if not NAME.fullmatch(name):
            self.problem(path, f"probe names are {NAME_RULE}, not {shown(name)}", key=True)
        if not isinstance(value, dict):
            self.problem(path, f"must be a mapping with a type ({', '.join(PROBE_TYPES)}), not {shown(value)}")
            return None
        kind = value.get("type")
        if not isinstance(kind, str) or kind not in PROBE_MODELS:
            wanted = f"one of {', '.join(PROBE_TYPES)}"
            self.problem(
                (*path, "type"), f"must be {wanted}, not {shown(kind)}" if "type" in value else f"required: {wanted}"
            )
            return None
        model: ProbeModel | None = validate_part(self.source, PROBE_MODELS[kind], value, path)
        if model is None:
            return None
        url = self.probe_url(model, path)
        deadline = model.deadline
        if deadline is None:
            streaming = model.type in ("llm", "websocket_chat")
            deadline = MAX_DEADLINE if streaming else min(4 * model.every, MAX_DEADLINE)
        endpoint = model.endpoint or ("" if model.url is not None else DEFAULT_ENDPOINTS.get(model.type, ""))
        kind = cast(ProbeType, model.type)
        return ProbePlan(name, kind, endpoint, url or "", model.every, deadline, model.options())

    def probe_url(self, model: ProbeModel, path: FieldPath) -> str | None:
        if model.endpoint is not None and model.url is not None:
            self.problem(path, "give endpoint or url, not both")
            return None
        if model.url is not None:
            if (*path, "url") in self.source.unresolved:
                return ""
            schemes = SCHEMES[model.type]
            scheme, sep, rest = model.url.partition("://")
            if not sep or scheme.lower() not in schemes or not rest:
                self.problem((*path, "url"), f"must be a {schemes[0]}:// URL, not {shown(model.url)}")
            return model.url
        endpoint = model.endpoint or DEFAULT_ENDPOINTS.get(model.type)
        if endpoint is None:
            self.problem(path, "give endpoint (the name of an environment endpoint) or url")
            return None
        if self.env is None:
            return ""
        if endpoint not in self.env.endpoints:
            where = (*path, "endpoint") if model.endpoint is not None else path
            given = (
                "" if model.endpoint is not None else f" (the default for {model.type} probes; give endpoint or url)"
            )
            self.problem(
                where,
                f"the environment has no endpoint {shown(endpoint)}{given}; {listing('endpoints', self.env.endpoints)}",
            )
            return None
        return self.env.endpoints[endpoint]

    # -- checks ------------------------------------------------------------------------------

    def steady_state(self, index: int, value: Any, probes: list[str]) -> SteadyStatePlan | None:
        path: FieldPath = ("steady_state", index)
        self.probe_ref(value, path, probes)
        model = validate_part(self.source, SteadyStateModel, value, path)
        if model is None:
            return None
        checks = model.checks(list(value))
        if not checks:
            self.problem(path, f"give at least one check: {', '.join(PROBE_METRICS)}")
        return SteadyStatePlan(model.probe, checks)

    def guardrail(self, index: int, value: Any, probes: list[str]) -> GuardrailPlan | None:
        path: FieldPath = ("abort_when", index)
        self.probe_ref(value, path, probes)
        model = validate_part(self.source, GuardrailModel, value, path)
        if model is None:
            return None
        checks = model.checks(list(value))
        if len(checks) != 1:
            self.problem(path, f"give exactly one check ({', '.join(PROBE_METRICS)}), not {len(checks)}")
            return None
        return GuardrailPlan(model.probe, checks[0], model.for_)

    def probe_ref(self, value: Any, path: FieldPath, probes: list[str]) -> None:
        """A check's ``probe`` must be declared (checked before the entry's own validation, to report both)."""
        probe = value.get("probe") if isinstance(value, dict) else None
        if isinstance(probe, str) and probe not in probes:
            self.problem((*path, "probe"), f"no probe is named {shown(probe)}; {listing('probes', probes)}")

    # -- rollbacks ---------------------------------------------------------------------------

    def rollbacks(self, entries: list[Any]) -> tuple[RollbackPlan, ...]:
        plans: list[RollbackPlan] = []
        taken: dict[str, int] = {}
        for index, value in enumerate(entries):
            path: FieldPath = ("rollbacks", index)
            model: RollbackModel | None = validate_part(self.source, RollbackModel, value, path)
            if model is None:
                continue
            if model.name is not None and model.name in taken:
                self.problem(
                    (*path, "name"), f"{shown(model.name)} is already the name of rollbacks[{taken[model.name]}]"
                )
            name = model.name or unique_name(f"rollback-{index + 1}", taken)
            taken.setdefault(name, index)
            url = model.url
            scheme = url.partition("://")[0].lower()
            if (*path, "url") not in self.source.unresolved and scheme not in ("http", "https"):
                self.problem((*path, "url"), f"must be an http:// URL, not {shown(url)}")
            plans.append(RollbackPlan(name, model.method, url, model.body))
        return tuple(plans)


def _list(data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    return value if isinstance(value, list) else []
