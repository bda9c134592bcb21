"""Faults on Docker containers: ``pause``, ``kill``, ``stop`` and ``restart``, through the Docker Engine API.

Containers are named by `Environment.containers`: a name there selects one container by
its exact name, or every container (running or not) that carries a label. The API is
`Environment.docker`, else ``$DOCKER_HOST``, else the local socket; the docker SDK talks
to it (in a thread: it is synchronous), negotiating the API version on the first call.

* ``pause`` freezes the container (``docker pause``); removing the fault unpauses it.
* ``kill`` sends a signal (``signal``, default SIGKILL); ``stop`` stops it (SIGTERM, then
  SIGKILL after ``timeout`` seconds, default 10); ``restart`` stops and starts it again
  (same ``timeout``). Removing one of these starts the container again if it is not
  running — a container its restart policy already brought back is left alone.

Before it changes anything, `DockerDriver.apply` arms a detached `restore_watchdog` with
the requests that put every selected container back (``unpause``, or ``start``), sent at
the deadline unless the fault is removed first — so a runner killed with SIGKILL leaves no
container paused or stopped once the ttl has passed. If acting fails on one container,
the ones already changed are restored at once and the fault is refused.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import docker
import docker.errors
import requests

from chaos_service.experiments.faults.base import AppliedFault, FaultError, FaultTargetError
from chaos_service.experiments.faults.watchdogs import RESTORE_WATCHDOG, Watchdogs
from chaos_service.experiments.plan import FaultPlan
from chaos_service.sandbox.environment import Environment

log = logging.getLogger(__name__)

DOCKER_FAULTS = ("kill", "pause", "restart", "stop")
#: The faults only containers have (other drivers never take them).
CONTAINER_ONLY = ("restart", "stop")
#: The attributes each fault takes, with their defaults.
ATTRIBUTES: dict[str, dict[str, Any]] = {
    "kill": {"signal": "SIGKILL"},
    "pause": {},
    "restart": {"timeout": 10},
    "stop": {"timeout": 10},
}
DEFAULT_URL = "unix:///var/run/docker.sock"
API_TIMEOUT = 30.0  # seconds per API call; stop and restart add their own timeout
_SCHEMES = ("unix", "tcp", "http", "https")
_UNDO = {"pause": "unpause", "kill": "start", "stop": "start", "restart": "start"}
_VERB = {"pause": "pausing", "kill": "killing", "stop": "stopping", "restart": "restarting"}
_UNDOING = {"pause": "unpausing", "kill": "starting", "stop": "starting", "restart": "starting"}
_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException, OSError)


def attribute_problems(kind: str, attributes: Mapping[str, Any]) -> dict[str, str]:
    """What is wrong with each attribute of the container fault ``kind``, by attribute (empty: all fine)."""
    allowed = ATTRIBUTES.get(kind, {})
    problems: dict[str, str] = {}
    for key, value in attributes.items():
        if key not in allowed:
            takes = f"valid: {', '.join(allowed)}" if allowed else f"{kind} takes none"
            problems[key] = f"unknown attribute {key!r} for {kind} ({takes})"
        elif key == "signal" and signal_name(value) is None:
            problems[key] = f"signal must be a signal name like SIGTERM or a number from 1 to 64, not {value!r}"
        elif key == "timeout" and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            problems[key] = f"timeout must be a whole number of seconds, 0 or more, not {value!r}"
    return problems


def signal_name(value: object) -> str | None:
    """``SIGTERM`` for ``SIGTERM``, ``term`` or 15; a number 1-64 without a name as itself; else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= 64:
            return None
        try:
            return signal.Signals(value).name
        except ValueError:
            return str(value)
    if isinstance(value, str):
        name = value.strip().upper()
        name = name if name.startswith("SIG") else f"SIG{name}"
        if name in signal.Signals.__members__:
            return name
    return None


@dataclass(frozen=True)
class ContainerState:
    """What the Docker API says about one container at one moment."""

    id: str
    name: str
    status: str  # created, running, paused, restarting, removing, exited, dead
    started_at: str
    exit_code: int

    @classmethod
    def of(cls, attrs: Mapping[str, Any]) -> ContainerState:
        state = attrs.get("State") or {}
        return cls(
            id=str(attrs["Id"]),
            name=str(attrs.get("Name", "")).lstrip("/"),
            status=str(state.get("Status", "")),
            started_at=str(state.get("StartedAt", "")),
            exit_code=int(state.get("ExitCode") or 0),
        )


class DockerDriver:
    """Pauses, kills, stops and restarts the environment's containers; a watchdog bounds each fault."""

    name = "docker"
    fault_types: tuple[str, ...] = DOCKER_FAULTS

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self.url = environment.docker or os.environ.get("DOCKER_HOST", "") or DEFAULT_URL
        self._version: str | None = None  # negotiated by the first client
        self._watchdogs = Watchdogs()

    # -- the FaultDriver interface ------------------------------------------------------

    def handles(self, fault: FaultPlan) -> bool:
        if fault.fault in CONTAINER_ONLY:
            return True
        return fault.fault in DOCKER_FAULTS and fault.target in self.environment.containers

    async def check(self, fault: FaultPlan) -> None:
        _settings(fault)
        client = await self._client(FaultTargetError, _where(fault))
        try:
            await asyncio.to_thread(self._select, client, fault)
        finally:
            client.close()

    async def apply(self, fault: FaultPlan, ttl: float) -> AppliedFault:
        where = _where(fault)
        if not ttl > 0:
            raise FaultError(f"{where}: ttl must be greater than 0 seconds, got {ttl}")
        settings = _settings(fault)
        client = await self._client(FaultTargetError, where)
        try:
            selected = await asyncio.to_thread(self._select, client, fault)
            applied_at = time.monotonic()
            deadline = applied_at + ttl
            undo = [
                {"method": "POST", "base": self.url, "path": f"/containers/{c.id}/{_UNDO[fault.fault]}"}
                for c in selected
            ]
            watchdog = await self._watchdogs.start(
                RESTORE_WATCHDOG, [repr(deadline)], where, stdin=json.dumps(undo).encode()
            )
            await self._act(client, fault, settings, selected, watchdog)
        finally:
            client.close()
        names = ", ".join(c.name for c in selected)
        log.info("applied fault %s: %s container %s (ttl %g s)", fault.name, fault.fault, names, ttl)
        containers = [{"id": c.id, "name": c.name, "started_at": c.started_at} for c in selected]
        return AppliedFault(
            name=fault.name,
            driver=self.name,
            handle={"action": fault.fault, **settings, "docker": self.url, "containers": containers, **watchdog},
            applied_at=applied_at,
            expires_at=deadline,
            ttl=ttl,
            target=fault.target,
            kind=fault.fault,
        )

    async def verify(self, applied: AppliedFault) -> str | None:
        """``container chaos-redis-1 paused``, ``… exited (code 137)``, ``… restarted``; None when nothing shows."""
        action, containers = _handle(applied)
        try:
            client = await self._client(FaultError, f"fault {applied.name!r}")
            try:
                states = await asyncio.to_thread(_inspect_all, client, [c["id"] for c in containers])
            finally:
                client.close()
        except (FaultError, *_ERRORS) as exc:
            log.warning("cannot inspect the containers of fault %s: %s", applied.name, exc)
            return None
        pairs = zip(containers, states, strict=True)
        evidence = [_evidence(action, c["name"], c["started_at"], now) for c, now in pairs]
        return "; ".join(e for e in evidence if e) or None

    async def remove(self, applied: AppliedFault) -> None:
        """Unpause, or start, every container that is not back yet; then stand the watchdog down."""
        action, containers = _handle(applied)
        where = f"fault {applied.name!r}"
        names = ", ".join(c["name"] for c in containers)
        later = f"its watchdog still restores {names} when the ttl ({applied.ttl:g} s) is up"
        try:
            client = await self._client(FaultError, where)
        except FaultError as exc:
            raise FaultError(f"{exc}; {later}") from None
        try:
            failures = await self._restore(client, action, [(c["id"], c["name"]) for c in containers])
        finally:
            client.close()
        if failures:
            raise FaultError(f"{where}: {'; '.join(failures)}; {later}")
        await self._watchdogs.stand_down(applied.handle)
        log.info("removed fault %s: container %s restored", applied.name, names)

    # -- helpers ------------------------------------------------------------------------

    async def _client(self, error: type[FaultError] | type[FaultTargetError], where: str) -> Any:
        """A client for the Docker API (``close`` it); ``error`` when the API cannot be reached."""
        if urlsplit(self.url).scheme not in _SCHEMES:
            raise error(f"{where}: the Docker API URL {self.url!r} is not unix://, tcp:// or http(s)://")
        try:
            client = await asyncio.to_thread(_connect, self.url, self._version)
        except _ERRORS as exc:
            raise error(f"{where}: {self._explain(exc)}") from None
        self._version = client.api.api_version
        return client

    def _select(self, client: Any, fault: FaultPlan) -> list[ContainerState]:
        """The containers ``fault`` targets, each checked to be in a state the fault can change."""
        where = _where(fault)
        spec = self.environment.containers.get(fault.target)
        if spec is None:
            known = ", ".join(sorted(self.environment.containers)) or "none"
            raise FaultTargetError(
                f"{where}: unknown container {fault.target!r} (the environment's containers: {known})"
            )
        try:
            if spec.name:
                found = [ContainerState.of(client.api.inspect_container(spec.name))]
                if found[0].name != spec.name:  # the API also resolves id prefixes
                    raise docker.errors.NotFound(f"no container named {spec.name}")
            else:
                listed = client.api.containers(all=True, filters={"label": spec.label})
                found = [s for s in _inspect_all(client, [entry["Id"] for entry in listed]) if s is not None]
        except docker.errors.NotFound:
            found = []
        except _ERRORS as exc:
            raise FaultTargetError(f"{where}: {self._explain(exc)}") from None
        if not found:
            what = f"named {spec.name!r}" if spec.name else f"with label {spec.label!r}"
            raise FaultTargetError(f"{where}: no container {what} ({fault.target!r}) at the Docker API {self.url}")
        for container in found:
            if fault.fault == "pause" and container.status == "paused":
                raise FaultTargetError(f"{where}: container {container.name} is already paused")
            if container.status != "running":
                raise FaultTargetError(f"{where}: container {container.name} is not running ({container.status})")
        return found

    async def _act(
        self,
        client: Any,
        fault: FaultPlan,
        settings: dict[str, Any],
        selected: list[ContainerState],
        watchdog: dict[str, Any],
    ) -> None:
        """Apply ``fault`` to each container; on a failure restore those changed and raise `FaultError`."""
        for index, container in enumerate(selected):
            try:
                await asyncio.to_thread(_act_on, client.api, fault.fault, container.id, settings)
            except _ERRORS as exc:
                reason = self._explain(exc)
                failed = f"{_where(fault)}: {_VERB[fault.fault]} container {container.name} failed ({reason})"
                touched = selected[: index + 1]
                failures = await self._restore(client, fault.fault, [(c.id, c.name) for c in touched])
                if failures:
                    raise FaultError(
                        f"{failed}; {'; '.join(failures)}: the watchdog restores them when the ttl is up"
                    ) from None
                await self._watchdogs.stand_down(watchdog)
                restored = [c.name for c in touched[:-1]]
                done = f"{', '.join(restored)} restored, nothing left changed" if restored else "nothing left changed"
                raise FaultError(f"{failed}; {done}") from None

    async def _restore(self, client: Any, action: str, containers: list[tuple[str, str]]) -> list[str]:
        """Put each ``(id, name)`` back after ``action``; what failed, one sentence each."""
        failures = []
        for container_id, name in containers:
            try:
                await asyncio.to_thread(_restore_one, client.api, action, container_id)
            except _ERRORS as exc:
                failures.append(f"{_UNDOING[action]} container {name} failed ({self._explain(exc)})")
        return failures

    def _explain(self, exc: BaseException) -> str:
        if isinstance(exc, docker.errors.APIError) and exc.response is not None:
            return f"the Docker API at {self.url} answered {exc.status_code}: {exc.explanation or exc.response.reason}"
        return f"cannot reach the Docker API at {self.url}: {_root(exc)}"


def _connect(url: str, version: str | None) -> Any:
    parts = urlsplit(url)
    if parts.scheme == "unix":  # the SDK leaks the socket of a failed connection: try one first
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(API_TIMEOUT)
            probe.connect(f"{parts.netloc}{parts.path}")
    return docker.DockerClient(base_url=url, version=version, timeout=API_TIMEOUT)


def _act_on(api: Any, action: str, container_id: str, settings: dict[str, Any]) -> None:
    if action == "pause":
        api.pause(container_id)
    elif action == "kill":
        api.kill(container_id, signal=settings["signal"])
    elif action == "stop":
        api.stop(container_id, timeout=settings["timeout"])
    else:
        api.restart(container_id, timeout=settings["timeout"])


def _restore_one(api: Any, action: str, container_id: str) -> None:
    """Unpause the container if paused (``pause``), else start it if it is down; gone or back is fine."""
    try:
        status = ContainerState.of(api.inspect_container(container_id)).status
        if action == "pause" and status == "paused":
            api.unpause(container_id)
        elif action != "pause" and status in ("created", "exited", "dead"):
            api.start(container_id)  # 304 when something started it meanwhile
    except docker.errors.APIError as exc:
        if exc.status_code not in (404, 409):  # gone, or no longer in that state
            raise


def _inspect_all(client: Any, ids: list[str]) -> list[ContainerState | None]:
    """Each container now; None for one that is gone."""
    states: list[ContainerState | None] = []
    for container_id in ids:
        try:
            states.append(ContainerState.of(client.api.inspect_container(container_id)))
        except docker.errors.NotFound:
            states.append(None)
    return states


def _evidence(action: str, name: str, started_at: str, now: ContainerState | None) -> str | None:
    if now is None:
        return f"container {name} is gone" if action in ("kill", "stop") else None
    if action == "pause":
        return f"container {name} paused" if now.status == "paused" else None
    if action == "restart":
        return f"container {name} restarted" if now.started_at != started_at else None
    if now.status in ("exited", "dead", "created"):
        return f"container {name} exited (code {now.exit_code})"
    if now.started_at != started_at:
        return f"container {name} exited and was started again"
    return None


def _settings(fault: FaultPlan) -> dict[str, Any]:
    """The fault's attributes with their defaults; `FaultTargetError` when they are wrong."""
    where = _where(fault)
    if fault.fault not in DOCKER_FAULTS:
        raise FaultTargetError(f"{where}: {fault.fault!r} is not a container fault (use {', '.join(DOCKER_FAULTS)})")
    problems = attribute_problems(fault.fault, fault.attributes)
    if problems:
        raise FaultTargetError(f"{where}: {'; '.join(problems.values())}")
    settings = {**ATTRIBUTES[fault.fault], **fault.attributes}
    if "signal" in settings:
        settings["signal"] = signal_name(settings["signal"])
    return settings


def _where(fault: FaultPlan) -> str:
    return f"fault {fault.name!r}"


def _root(exc: BaseException) -> str:
    """The innermost cause of ``exc``, e.g. ``[Errno 2] No such file or directory``."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = exc.__cause__ or exc.__context__
        if inner is None and exc.args and isinstance(exc.args[-1], BaseException):
            inner = exc.args[-1]
        if inner is None:
            break
        exc = inner
    return str(exc) or type(exc).__name__


def _handle(applied: AppliedFault) -> tuple[str, list[dict[str, str]]]:
    try:
        action = str(applied.handle["action"])
        containers = [{key: str(c[key]) for key in ("id", "name", "started_at")} for c in applied.handle["containers"]]
    except (KeyError, TypeError) as exc:
        raise FaultError(f"fault {applied.name!r}: not a Docker fault handle ({exc}): {applied.handle!r}") from None
    if action not in DOCKER_FAULTS:
        raise FaultError(f"fault {applied.name!r}: not a Docker fault handle: {applied.handle!r}")
    return action, containers
