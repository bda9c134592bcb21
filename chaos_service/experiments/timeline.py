"""An experiment's ``method`` to faults at absolute offsets, each checked against its target.

Entries are resolved in order with a cursor that starts at 0:

* ``at: T`` starts at T;
* ``after: NAME`` starts when the earlier fault NAME ends, plus ``delay``;
* an entry with neither starts at the cursor, plus ``delay``;
* ``{pause: D}`` moves the cursor D later.

After each fault the cursor is its end. A fault without ``name`` is called
``<fault>-<target>`` (``-2``, ``-3``… when that is taken). Each fault is checked on its
own: the kind of target it needs (a proxy; ``process: NAME`` for ``pause`` and ``kill``,
which act on a local process or a container, and for ``restart`` and ``stop``, which act on
containers only), the fields that apply to it, its attributes (toxics by the engine's own
rules, container faults by the Docker driver's) and, with an environment, that its proxy,
process or container exists and that the proxy's protocol takes it (``partition`` and
``down`` are made of tcp toxics: tcp proxies only).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chaos_service import http_faults, toxics, ws_faults
from chaos_service.errors import InvalidToxic
from chaos_service.experiments.durations import shown
from chaos_service.experiments.plan import FaultPlan
from chaos_service.experiments.schema import (
    CONTAINER_FAULTS,
    PROCESS_FAULTS,
    PROXY_FAULT_PROTOCOL,
    PROXY_FAULTS,
    TOXIC_FAULTS,
    FaultModel,
    PauseModel,
)
from chaos_service.experiments.source import FieldPath, Source, listing, unique_name, validate_part
from chaos_service.sandbox.environment import Environment

_REGISTRIES: dict[str, Mapping[str, Any]] = {
    "tcp": toxics.REGISTRY,
    "http": http_faults.REGISTRY,
    "websocket": ws_faults.REGISTRY,
}
_PROTOCOL_OF = {fault: protocol for protocol, faults in TOXIC_FAULTS.items() for fault in faults}


def resolve_method(source: Source, entries: list[Any], environment: Environment | None) -> tuple[FaultPlan, ...]:
    """The faults of ``entries`` (the file's ``method``) in order; problems go to ``source``.

    The timeline is resolved only when every entry is valid (otherwise the result is empty).
    """
    return _Method(source, environment).resolve(entries)


class _Method:
    def __init__(self, source: Source, environment: Environment | None) -> None:
        self.source = source
        self.env = environment

    def problem(self, path: FieldPath, message: str, *, key: bool = False) -> None:
        self.source.add(path, message, key=key)

    def resolve(self, entries: list[Any]) -> tuple[FaultPlan, ...]:
        models: list[FaultModel | PauseModel | None] = []
        for index, value in enumerate(entries):
            pause = isinstance(value, dict) and "pause" in value
            model = validate_part(self.source, PauseModel if pause else FaultModel, value, ("method", index))
            if isinstance(model, FaultModel):
                self.check_fault(model, ("method", index))
            models.append(model)
        if None in models:
            return ()
        if entries and not any(isinstance(m, FaultModel) for m in models):
            self.problem(("method",), "list at least one fault (pauses only move the timeline)")
            return ()
        return self.timeline([m for m in models if m is not None])

    def timeline(self, entries: list[FaultModel | PauseModel]) -> tuple[FaultPlan, ...]:
        names = self.names(entries)
        ends: dict[str, float] = {}
        faults: list[FaultPlan] = []
        cursor = 0.0
        for index, entry in enumerate(entries):
            if isinstance(entry, PauseModel):
                cursor += entry.pause
                continue
            if entry.at is not None:
                start = entry.at
            elif entry.after is not None:
                if entry.after not in ends:
                    self.unknown_after(entry.after, ("method", index, "after"), list(ends), names)
                    return ()
                start = ends[entry.after] + (entry.delay or 0.0)
            else:
                start = cursor + (entry.delay or 0.0)
            fault = FaultPlan(
                name=names[index],
                fault=entry.fault,
                target=entry.target,
                at=start,
                duration=entry.duration,
                stream=entry.stream or "downstream",
                toxicity=1.0 if entry.toxicity is None else entry.toxicity,
                attributes=dict(entry.attributes or {}),
            )
            faults.append(fault)
            ends[fault.name] = cursor = fault.end
        return tuple(faults)

    def unknown_after(self, after: str, path: FieldPath, earlier: list[str], names: dict[int, str]) -> None:
        if after in names.values():
            self.problem(path, f"{shown(after)} is not an earlier fault: after must name a fault listed before")
        else:
            self.problem(path, f"no earlier fault is named {shown(after)}; {listing('earlier faults', earlier)}")

    def names(self, entries: list[FaultModel | PauseModel]) -> dict[int, str]:
        """Each fault's name by entry index: as given, else ``<fault>-<target>`` made unique."""
        names: dict[int, str] = {}
        taken: dict[str, int] = {}
        for index, entry in enumerate(entries):
            if isinstance(entry, FaultModel) and entry.name is not None:
                if entry.name in taken:
                    first = taken[entry.name]
                    self.problem(
                        ("method", index, "name"), f"{shown(entry.name)} is already the name of method[{first}]"
                    )
                taken.setdefault(entry.name, index)
                names[index] = entry.name
        for index, entry in enumerate(entries):
            if isinstance(entry, FaultModel) and entry.name is None:
                names[index] = unique_name(f"{entry.fault}-{entry.target}", taken)
                taken[names[index]] = index
        return names

    def check_fault(self, entry: FaultModel, path: FieldPath) -> None:
        fault = entry.fault
        on_process = fault in PROCESS_FAULTS or fault in CONTAINER_FAULTS
        kind = "container" if fault in CONTAINER_FAULTS else "process"
        if entry.proxy is not None and entry.process is not None:
            self.problem(path, "give proxy or process, not both")
            return
        if on_process and entry.proxy is not None:
            self.problem((*path, "proxy"), f"{fault} is a {kind} fault: name an environment {kind} (process: NAME)")
            return
        if not on_process and entry.process is not None:
            self.problem((*path, "process"), f"{fault} is a proxy fault: name a proxy (proxy: NAME)")
            return
        if not entry.target:
            key = "process" if on_process else "proxy"
            self.problem(path, f"name the {kind if on_process else key} to fault ({key}: NAME)")
            return
        protocol = _PROTOCOL_OF.get(fault)
        if on_process:
            for key in ("stream", "toxicity", "attributes") if fault == "pause" else ("stream", "toxicity"):
                if getattr(entry, key) is not None:
                    self.problem((*path, key), f"does not apply to {fault}")
            if fault != "pause":
                self.check_container_attributes(fault, entry.attributes or {}, (*path, "attributes"))
        elif protocol is None:
            for key in ("stream", "attributes"):
                if getattr(entry, key) is not None:
                    self.problem((*path, key), f"does not apply to {fault}")
        else:
            if protocol == "http" and entry.stream == "upstream":
                self.problem((*path, "stream"), "http faults act on responses: stream must be downstream")
            self.check_attributes(protocol, fault, entry.attributes or {}, (*path, "attributes"))
        if self.env is not None:
            self.check_target(entry, path, protocol)

    def check_attributes(self, protocol: str, fault: str, attributes: dict[str, Any], path: FieldPath) -> None:
        """All attributes together; when that fails, name each attribute that is wrong whatever
        the others say (alone, and beside every attribute that is fine alone), or else the fault."""
        kind = _REGISTRIES[protocol][fault]
        try:
            kind.from_attributes(attributes)
            return
        except InvalidToxic as exc:
            together = str(exc)
        suspects: dict[str, str] = {}
        for key, value in attributes.items():
            try:
                kind.from_attributes({key: value})
            except InvalidToxic as exc:
                suspects[key] = str(exc)
        fine = {key: value for key, value in attributes.items() if key not in suspects}
        named = False
        for key, message in suspects.items():
            try:
                kind.from_attributes({**fine, key: attributes[key]})
            except InvalidToxic:
                self.problem((*path, key), message, key=message.startswith("unknown attribute"))
                named = True
        if not named:
            self.problem(path, together)

    def check_container_attributes(self, fault: str, attributes: dict[str, Any], path: FieldPath) -> None:
        """By the Docker driver's rules (imported only when there are attributes: it loads the docker SDK)."""
        if not attributes:
            return
        from chaos_service.experiments.faults.docker import attribute_problems

        for key, message in attribute_problems(fault, attributes).items():
            self.problem((*path, key), message, key=message.startswith("unknown attribute"))

    def check_process(self, entry: FaultModel, path: FieldPath) -> None:
        """``process: NAME`` names a local process or a container; ``restart`` and ``stop`` need a container."""
        assert self.env is not None and entry.process is not None
        name, processes, containers = entry.process, self.env.processes, self.env.containers
        if entry.fault in CONTAINER_FAULTS:
            if name in processes and name not in containers:
                self.problem(
                    (*path, "fault"), f"{entry.fault} works on containers only; {shown(name)} is a local process"
                )
            elif name not in containers:
                known = listing("containers", containers)
                self.problem((*path, "process"), f"the environment has no container {shown(name)}; {known}")
        elif name not in processes and name not in containers:
            if containers:
                known = f"{listing('processes', processes)}; {listing('containers', containers)}"
                self.problem((*path, "process"), f"the environment has no process or container {shown(name)}; {known}")
            else:
                known = listing("processes", processes)
                self.problem((*path, "process"), f"the environment has no process {shown(name)}; {known}")
        elif entry.attributes and entry.fault != "pause" and name not in containers:
            self.problem(
                (*path, "attributes"), f"attributes apply to containers only; {shown(name)} is a local process"
            )

    def check_target(self, entry: FaultModel, path: FieldPath, protocol: str | None) -> None:
        assert self.env is not None
        if entry.process is not None:
            self.check_process(entry, path)
            return
        proxy = self.env.proxies.get(entry.target)
        if proxy is None:
            known = listing("proxies", self.env.proxies)
            self.problem((*path, "proxy"), f"the environment has no proxy {shown(entry.target)}; {known}")
        elif (protocol or PROXY_FAULT_PROTOCOL) != proxy.protocol:
            fits = [*TOXIC_FAULTS.get(proxy.protocol, ())]
            if proxy.protocol == PROXY_FAULT_PROTOCOL:
                fits[:0] = PROXY_FAULTS
            kind = f"{_a(protocol)} fault" if protocol else f"for {PROXY_FAULT_PROTOCOL} proxies only"
            self.problem(
                (*path, "fault"),
                f"{entry.fault} is {kind} and proxy {shown(entry.target)} is {_a(proxy.protocol)} proxy "
                f"(its faults: {', '.join(fits)})",
            )


def _a(protocol: str) -> str:
    """``a tcp``, ``an http``, ``a websocket``."""
    return f"{'an' if protocol.startswith(('h', 'a', 'e', 'i', 'o', 'u')) else 'a'} {protocol}"
