"""Chaos Toolkit experiment files: recognise, read (JSON or YAML) and validate them.

Validation follows chaostoolkit-lib's rules: title, description and method present; each
activity a ``probe`` or an ``action`` with a name and a ``python``, ``process`` or ``http``
provider; ``ref`` resolving to an activity of the file; every steady-state probe with a valid
tolerance; python modules importable with the function present and the arguments binding
to it (``chaostoxi`` modules are served by this service instead of being imported);
processes found on the ``PATH``; pauses numbers or ``${…}``. Every problem is reported at
once, with where it is.
"""

from __future__ import annotations

import importlib
import inspect
import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from chaos_service.ctk import toxiproxy
from chaos_service.ctk.tolerance import tolerance_problems
from chaos_service.errors import InvalidInput

PROVIDERS = ("python", "process", "http")
#: Arguments a python provider's function receives from the runner, not from the file.
INJECTED = ("configuration", "secrets")


class InvalidCtkExperiment(InvalidInput):
    """A Chaos Toolkit file that cannot run; the message lists every problem."""


@dataclass(frozen=True)
class Activity:
    """A probe or an action, with any ``ref`` resolved; ``raw`` is it as written."""

    type: str
    name: str
    provider: dict[str, Any]
    raw: dict[str, Any]
    tolerance: Any = None
    has_tolerance: bool = False
    background: bool = False
    pauses: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CtkExperiment:
    path: str
    title: str
    description: str
    tags: list[str]
    configuration: dict[str, Any]
    secrets: dict[str, Any]
    hypothesis_title: str
    hypothesis: list[Activity] | None  # None: the file has no steady-state-hypothesis
    method: list[Activity]
    rollbacks: list[Activity]
    runtime: dict[str, Any]
    raw: dict[str, Any]


def looks_like_ctk(data: object) -> bool:
    """Whether a parsed document is a Chaos Toolkit experiment rather than one of ours."""
    if not isinstance(data, dict):
        return False
    if "steady-state-hypothesis" in data:
        return True
    method = data.get("method")
    return isinstance(method, list) and any(
        isinstance(entry, dict) and (entry.get("type") in ("action", "probe") or "ref" in entry) for entry in method
    )


def read_document(path: Path) -> object:
    """The parsed file (JSON for ``.json``, else YAML); `InvalidInput` when it cannot be read."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read it: {exc.strerror or exc}") from None
    try:
        return json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise InvalidInput(f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {exc}") from None


def load_ctk_experiment(path: Path, data: object | None = None) -> CtkExperiment:
    """The experiment in ``path`` (already parsed as ``data`` if given), validated."""
    document = read_document(path) if data is None else data
    problems: list[str] = []
    if not isinstance(document, dict):
        raise InvalidCtkExperiment(f"{path}: a Chaos Toolkit experiment is an object, not {type(document).__name__}")
    for key in ("title", "description"):
        if not isinstance(document.get(key), str) or not document[key].strip():
            problems.append(f"{key}: required, a non-empty string")
    if not isinstance(document.get("method"), list):
        problems.append("method: required, a list of activities (it may be empty)")
    tags = document.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        problems.append("tags: a list of non-empty strings")
    for index, extension in enumerate(document.get("extensions") or []):
        if not isinstance(extension, dict) or not extension.get("name"):
            problems.append(f"extensions[{index}]: needs a name")
    named = _named_activities(document)
    hypothesis = document.get("steady-state-hypothesis")
    probes: list[Activity] | None = None
    hypothesis_title = ""
    if hypothesis is not None:
        if not isinstance(hypothesis, dict):
            problems.append("steady-state-hypothesis: an object with title and probes")
        else:
            hypothesis_title = str(hypothesis.get("title") or "")
            if not hypothesis_title:
                problems.append("steady-state-hypothesis.title: required")
            probes = _activities(hypothesis.get("probes") or [], "steady-state-hypothesis.probes", named, problems)
            for index, probe in enumerate(probes):
                where = f"steady-state-hypothesis.probes[{index}] ({probe.name})"
                if not probe.has_tolerance:
                    problems.append(f"{where}: a steady-state probe needs a tolerance")
                problems += [f"{where}.tolerance: {p}" for p in tolerance_problems(probe.tolerance)]
    method = _activities(document.get("method") or [], "method", named, problems)
    rollbacks = _activities(document.get("rollbacks") or [], "rollbacks", named, problems)
    if problems:
        raise InvalidCtkExperiment(f"{path}: not a runnable Chaos Toolkit experiment:\n  " + "\n  ".join(problems))
    return CtkExperiment(
        path=str(path),
        title=document["title"],
        description=document["description"],
        tags=list(tags),
        configuration=dict(document.get("configuration") or {}),
        secrets=dict(document.get("secrets") or {}),
        hypothesis_title=hypothesis_title,
        hypothesis=probes,
        method=method,
        rollbacks=rollbacks,
        runtime=dict(document.get("runtime") or {}),
        raw=document,
    )


def _named_activities(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every full activity of the file by name, for ``ref``."""
    found: dict[str, dict[str, Any]] = {}
    hypothesis = document.get("steady-state-hypothesis")
    lists = [hypothesis.get("probes") if isinstance(hypothesis, dict) else None]
    lists += [document.get("method"), document.get("rollbacks")]
    for entries in lists:
        for entry in entries or []:
            if isinstance(entry, dict) and "ref" not in entry and isinstance(entry.get("name"), str):
                found.setdefault(entry["name"], entry)
    return found


def _activities(entries: object, where: str, named: dict[str, dict[str, Any]], problems: list[str]) -> list[Activity]:
    if not isinstance(entries, list):
        problems.append(f"{where}: a list of activities")
        return []
    activities = []
    for index, entry in enumerate(entries):
        at = f"{where}[{index}]"
        if isinstance(entry, dict) and "ref" in entry:
            target = named.get(str(entry["ref"]))
            if target is None:
                problems.append(f"{at}: ref {entry['ref']!r} names no activity of this file")
                continue
            entry = {**target, **{k: v for k, v in entry.items() if k != "ref"}}
        activity = _activity(entry, at, problems)
        if activity is not None:
            activities.append(activity)
    return activities


def _activity(entry: object, at: str, problems: list[str]) -> Activity | None:
    if not isinstance(entry, dict):
        problems.append(f"{at}: an activity is an object")
        return None
    name = entry.get("name")
    at = f"{at} ({name})" if isinstance(name, str) and name else at
    before = len(problems)
    if entry.get("type") not in ("probe", "action"):
        problems.append(f"{at}.type: 'probe' or 'action', not {entry.get('type')!r}")
    if not isinstance(name, str) or not name:
        problems.append(f"{at}.name: required")
    provider = entry.get("provider")
    if not isinstance(provider, dict) or provider.get("type") not in PROVIDERS:
        problems.append(f"{at}.provider: an object whose type is one of {', '.join(PROVIDERS)}")
        provider = {}
    else:
        problems += [f"{at}.provider: {p}" for p in provider_problems(provider)]
    pauses = entry.get("pauses") or {}
    if not isinstance(pauses, dict) or not all(_pause_ok(pauses.get(k)) for k in ("before", "after")):
        problems.append(f"{at}.pauses: before/after are numbers of seconds or ${{…}}")
        pauses = {}
    if not isinstance(entry.get("background", False), bool):
        problems.append(f"{at}.background: true or false")
    if len(problems) > before:
        return None
    return Activity(
        type=entry["type"],
        name=name,  # type: ignore[arg-type]  # checked above
        provider=provider,
        raw=entry,
        tolerance=entry.get("tolerance"),
        has_tolerance="tolerance" in entry,
        background=bool(entry.get("background", False)),
        pauses=pauses,
    )


def _pause_ok(value: object) -> bool:
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0):
        return True
    return isinstance(value, str) and value.startswith("${") and value.endswith("}")


def provider_problems(provider: Mapping[str, Any]) -> list[str]:
    """What keeps ``provider`` from running, as chaostoolkit-lib's validator sees it."""
    kind = provider.get("type")
    if kind == "http":
        problems = [] if isinstance(provider.get("url"), str) and provider["url"] else ["http needs a url"]
        if not isinstance(provider.get("headers", {}), dict):
            problems.append("headers must be an object")
        return problems
    if kind == "process":
        path = provider.get("path")
        if not isinstance(path, str) or not path:
            return ["process needs a path"]
        if shutil.which(path) is None:
            return [f"process path {path!r} is not an executable on the PATH"]
        return []
    return _python_problems(provider)


def _python_problems(provider: Mapping[str, Any]) -> list[str]:
    module, func = provider.get("module"), provider.get("func")
    if not isinstance(module, str) or not module or not isinstance(func, str) or not func:
        return ["python needs a module and a func"]
    arguments = provider.get("arguments") or {}
    if not isinstance(arguments, dict):
        return ["arguments must be an object"]
    if module in toxiproxy.MODULES:
        function = toxiproxy.function(module, func)
        if function is None:
            return [f"{module} has no function {func!r} (it has {', '.join(toxiproxy.functions(module))})"]
    else:
        try:
            function = getattr(importlib.import_module(module), func, None)
        except Exception as exc:  # any import failure is the file's problem, reported as such
            return [f"cannot import python module {module!r}: {type(exc).__name__}: {exc}"]
        if not callable(function):
            return [f"python module {module!r} has no function {func!r}"]
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return []
    given = {key: value for key, value in arguments.items() if key not in INJECTED}
    injected = {key: None for key in INJECTED if key in parameters}
    try:
        inspect.signature(function).bind(**given, **injected)
    except TypeError as exc:
        return [f"arguments do not fit {module}.{func}: {exc}"]
    return []
