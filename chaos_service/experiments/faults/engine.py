"""Faults on the engine's proxies: toxics of every protocol, ``partition`` and ``down``.

Every toxic is created with a ``ttl``, so the engine removes it by itself when the time
is up even if the run that created it is gone — the dead man's switch. The fault types:

* any toxic type of the proxy's protocol (``latency`` on a tcp proxy, ``http_error`` on
  an http proxy, ``ws_drop`` on a websocket proxy, …) with the fault's ``stream``,
  ``toxicity`` and ``attributes``;
* ``partition`` (tcp proxies): a ``timeout`` toxic with ``timeout: 0`` on both streams
  (the fault's ``toxicity`` is the share of connections caught; 1 by default).
  Connections are accepted and every byte is swallowed each way: a black hole. Removing
  it closes the connections it held, as a healed network would reset stale ones;
* ``down`` (tcp proxies): ``reset_peer`` with ``timeout: 0`` on both streams. Connections
  are accepted and reset at their first byte (or end of stream) each way.

Both are toxics rather than a disabled proxy because a disabled proxy has no ttl.

Toxic names are ``chaos-[<run id>-]<fault name>-<stream>``, unique per run and fault.
Removing deletes those toxics; a toxic or proxy that is already gone is fine.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import httpx

from chaos_service import http_faults, toxics, ws_faults
from chaos_service.errors import InvalidInput
from chaos_service.experiments.faults.base import AppliedFault, FaultError, FaultTargetError, safe_name
from chaos_service.experiments.plan import FaultPlan
from chaos_service.sandbox.environment import Environment
from chaos_service.tls import client_context

log = logging.getLogger(__name__)

#: The toxic types of each protocol the engine speaks.
PROTOCOL_TOXICS: dict[str, frozenset[str]] = {
    "tcp": frozenset(toxics.REGISTRY),
    "http": frozenset(http_faults.REGISTRY),
    "websocket": frozenset(ws_faults.REGISTRY),
}
#: The streams toxics may act on, per protocol (http toxics act on responses).
PROTOCOL_STREAMS: dict[str, tuple[str, ...]] = {
    "tcp": ("upstream", "downstream"),
    "http": ("downstream",),
    "websocket": ("upstream", "downstream"),
}
#: Experiment-level faults made of tcp toxics: (toxic type, attributes), on both streams.
COMPOSITE_FAULTS: dict[str, tuple[str, dict[str, Any]]] = {
    "partition": ("timeout", {"timeout": 0}),
    "down": ("reset_peer", {"timeout": 0}),
}
BOTH_STREAMS = ("upstream", "downstream")
API_TIMEOUT = 5.0
VERIFY_TIMEOUT = 2.0


#: Every toxic class by type name, to validate a fault's attributes before it is applied.
TOXIC_CLASSES: dict[str, Any] = {**toxics.REGISTRY, **http_faults.REGISTRY, **ws_faults.REGISTRY}


class _ToxicExists(FaultError):
    """A toxic of the same name is on the proxy already: it is someone else's, never deleted."""


class EngineFaultDriver:
    """Applies faults as toxics through the engine's Toxiproxy-compatible API.

    ``require_ttl`` (the default) refuses an engine that does not honour ``ttl``
    (Toxiproxy itself ignores the field): the toxic just created is deleted again and
    `apply` raises `FaultError`, because such a fault could outlive its run.
    """

    name = "engine"
    fault_types: tuple[str, ...] = tuple(
        sorted({*COMPOSITE_FAULTS, *(t for types in PROTOCOL_TOXICS.values() for t in types)})
    )

    def __init__(self, environment: Environment, *, run_id: str = "", require_ttl: bool = True) -> None:
        self.environment = environment
        self.url = environment.engine.rstrip("/")
        self.run_id = run_id
        self.require_ttl = require_ttl

    # -- the FaultDriver interface ------------------------------------------------------

    def handles(self, fault: FaultPlan) -> bool:
        return fault.fault in self.fault_types

    async def check(self, fault: FaultPlan) -> None:
        async with self._client(API_TIMEOUT) as client:
            await self._resolve(client, fault)

    async def apply(self, fault: FaultPlan, ttl: float) -> AppliedFault:
        if not ttl > 0:
            raise FaultError(f"fault {fault.name!r}: ttl must be greater than 0 seconds, got {ttl}")
        applied_at = time.monotonic()
        async with self._client(API_TIMEOUT) as client:
            proxy = fault.target
            # Both reads at once: the fault is live one round trip sooner.
            resolved, baseline = await asyncio.gather(
                self._resolve(client, fault), self._fired(client, proxy), return_exceptions=True
            )
            if isinstance(resolved, BaseException):
                raise resolved
            if isinstance(baseline, BaseException):
                raise baseline
            created: list[str] = []  # including one whose creation was interrupted: it may exist
            try:
                for body in self._toxic_bodies(fault, ttl):
                    created.append(body["name"])
                    await self._create(client, fault, body)
            except BaseException as exc:
                if isinstance(exc, _ToxicExists):
                    created.pop()
                await self._delete_quietly(client, proxy, created)
                raise
        done = time.monotonic()
        log.info("applied fault %s: toxics %s on proxy %s (ttl %g s)", fault.name, created, proxy, ttl)
        return AppliedFault(
            name=fault.name,
            driver=self.name,
            handle={"proxy": proxy, "toxics": created, "fired_before": {n: baseline.get(n, 0) for n in created}},
            applied_at=applied_at,
            expires_at=done + ttl,
            ttl=ttl,
            target=proxy,
            kind=fault.fault,
        )

    async def verify(self, applied: AppliedFault) -> str | None:
        """The toxics that fired since they were applied, e.g. ``chaos-x-downstream: fired 3``.

        None when none has fired yet, or when the engine's stats cannot be read (Toxiproxy
        has no stats endpoint).
        """
        proxy, names = _handle(applied)
        before: Mapping[str, int] = applied.handle.get("fired_before") or {}
        try:
            async with self._client(VERIFY_TIMEOUT) as client:
                fired = await self._fired(client, proxy)
        except FaultError as exc:
            log.warning("cannot read the stats of proxy %s: %s", proxy, exc)
            return None
        evidence = [
            f"{name}: fired {count}" for name in names if (count := fired.get(name, 0) - before.get(name, 0)) > 0
        ]
        return ", ".join(evidence) or None

    async def remove(self, applied: AppliedFault) -> None:
        proxy, names = _handle(applied)
        failures: list[str] = []
        async with self._client(API_TIMEOUT) as client:
            for name in names:
                try:
                    response = await client.delete(f"/proxies/{proxy}/toxics/{name}")
                except httpx.HTTPError as exc:
                    failures.append(f"{name}: engine unreachable at {self.url} ({_reason(exc)})")
                    continue
                if response.status_code not in (204, 404):  # 404: expired, or removed by someone else
                    failures.append(f"{name}: HTTP {response.status_code} {_error(response)}")
        if failures:
            remaining = max(0.0, applied.expires_at - time.monotonic())
            raise FaultError(
                f"fault {applied.name!r}: could not remove toxics from proxy {proxy!r}: {'; '.join(failures)}"
                f" (they expire by their ttl within {remaining:.0f} s)"
            )
        log.info("removed fault %s: toxics %s on proxy %s", applied.name, names, proxy)

    # -- helpers ------------------------------------------------------------------------

    def _client(self, timeout: float) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=timeout, trust_env=False, verify=client_context())

    def toxic_name(self, fault: FaultPlan, stream: str) -> str:
        """The name of the toxic that ``fault`` creates on ``stream``."""
        prefix = f"{safe_name(self.run_id)}-" if self.run_id else ""
        return f"chaos-{prefix}{safe_name(fault.name)}-{stream}"

    def _toxic_bodies(self, fault: FaultPlan, ttl: float) -> list[dict[str, Any]]:
        if fault.fault in COMPOSITE_FAULTS:
            type_name, attributes = COMPOSITE_FAULTS[fault.fault]
            return [
                {
                    "name": self.toxic_name(fault, stream),
                    "type": type_name,
                    "stream": stream,
                    "toxicity": fault.toxicity,
                    "attributes": dict(attributes),
                    "ttl": ttl,
                }
                for stream in BOTH_STREAMS
            ]
        return [
            {
                "name": self.toxic_name(fault, fault.stream),
                "type": fault.fault,
                "stream": fault.stream,
                "toxicity": fault.toxicity,
                "attributes": dict(fault.attributes),
                "ttl": ttl,
            }
        ]

    async def _resolve(self, client: httpx.AsyncClient, fault: FaultPlan) -> str:
        """Check ``fault`` against the environment and the engine; its proxy's protocol."""
        where = f"fault {fault.name!r}"
        if not self.handles(fault):
            raise FaultTargetError(f"{where}: {fault.fault!r} is not a fault the engine can inject")
        if fault.target not in self.environment.proxies:
            known = ", ".join(sorted(self.environment.proxies)) or "none"
            raise FaultTargetError(f"{where}: unknown proxy {fault.target!r} (the environment's proxies: {known})")
        try:
            response = await client.get(f"/proxies/{fault.target}")
        except httpx.HTTPError as exc:
            raise FaultTargetError(f"{where}: the engine is unreachable at {self.url} ({_reason(exc)})") from None
        if response.status_code == 404:
            raise FaultTargetError(
                f"{where}: proxy {fault.target!r} does not exist on the engine at {self.url}"
                " (the environment file is stale, or the engine was restarted without it)"
            )
        if response.status_code != 200:
            raise FaultTargetError(
                f"{where}: the engine at {self.url} answered HTTP {response.status_code} for proxy"
                f" {fault.target!r}: {_error(response)}"
            )
        protocol = str(_json(response).get("protocol") or "tcp")
        _check_fault(fault, protocol)
        return protocol

    async def _create(self, client: httpx.AsyncClient, fault: FaultPlan, body: dict[str, Any]) -> None:
        proxy, name = fault.target, body["name"]
        try:
            response = await client.post(f"/proxies/{proxy}/toxics", json=body)
        except httpx.HTTPError as exc:  # it may have reached the engine: `apply` deletes it
            raise FaultError(
                f"fault {fault.name!r}: the engine at {self.url} failed while adding toxic {name!r} ({_reason(exc)})"
            ) from None
        if response.status_code == 409:
            raise _ToxicExists(
                f"fault {fault.name!r}: proxy {proxy!r} already has a toxic named {name!r}"
                " (the same fault is already applied, by this run or another with the same run id)"
            )
        if response.status_code != 200:
            raise FaultError(
                f"fault {fault.name!r}: the engine refused toxic {name!r} on proxy {proxy!r}:"
                f" HTTP {response.status_code} {_error(response)}"
            )
        if self.require_ttl and _json(response).get("ttl") is None:  # `apply` deletes it
            raise FaultError(
                f"fault {fault.name!r}: the engine at {self.url} does not honour a toxic's ttl (Toxiproxy?),"
                " so the fault could outlive this run; use chaos-service engine for this proxy"
            )

    async def _delete_quietly(self, client: httpx.AsyncClient, proxy: str, names: list[str]) -> None:
        for name in names:
            try:
                await client.delete(f"/proxies/{proxy}/toxics/{name}")
            except httpx.HTTPError as exc:
                log.warning("could not delete toxic %s from proxy %s (its ttl removes it): %s", name, proxy, exc)

    async def _fired(self, client: httpx.AsyncClient, proxy: str) -> dict[str, int]:
        """How often each toxic of ``proxy`` fired ({} where the engine keeps no stats)."""
        try:
            response = await client.get(f"/proxies/{proxy}/stats")
        except httpx.HTTPError as exc:
            raise FaultError(f"the engine is unreachable at {self.url} ({_reason(exc)})") from None
        if response.status_code != 200:
            return {}
        entries = _json(response).get("toxics")
        if not isinstance(entries, dict):
            return {}
        return {
            str(name): int(entry.get("fired", 0))
            for name, entry in entries.items()
            if isinstance(entry, dict) and isinstance(entry.get("fired", 0), int)
        }


def _check_fault(fault: FaultPlan, protocol: str) -> None:
    """Whether ``fault`` fits a proxy of ``protocol``: type, stream, toxicity, attributes."""
    where = f"fault {fault.name!r} on proxy {fault.target!r} ({protocol})"
    available = PROTOCOL_TOXICS.get(protocol)
    if available is None:
        raise FaultTargetError(f"{where}: the engine reports an unknown protocol {protocol!r}")
    if not 0.0 <= fault.toxicity <= 1.0:
        raise FaultTargetError(f"{where}: toxicity must be between 0 and 1, got {fault.toxicity}")
    if fault.fault in COMPOSITE_FAULTS:
        if protocol != "tcp":
            raise FaultTargetError(f"{where}: {fault.fault} works on tcp proxies only")
        if fault.attributes:
            raise FaultTargetError(f"{where}: {fault.fault} takes no attributes, got {sorted(fault.attributes)}")
        return
    if fault.fault not in available:
        owners = [name for name, types in PROTOCOL_TOXICS.items() if fault.fault in types]
        raise FaultTargetError(
            f"{where}: {fault.fault} is a toxic of {' and '.join(owners)} proxies; {protocol} proxies take"
            f" {', '.join(sorted(available))}" + (", partition, down" if protocol == "tcp" else "")
        )
    streams = PROTOCOL_STREAMS[protocol]
    if fault.stream not in streams:
        raise FaultTargetError(
            f"{where}: stream {fault.stream!r} is not valid here (use {' or '.join(repr(s) for s in streams)})"
        )
    try:
        TOXIC_CLASSES[fault.fault].from_attributes(dict(fault.attributes))
    except InvalidInput as exc:
        raise FaultTargetError(f"{where}: {exc}") from None


def _handle(applied: AppliedFault) -> tuple[str, list[str]]:
    try:
        proxy = str(applied.handle["proxy"])
        names = [str(name) for name in applied.handle["toxics"]]
    except (KeyError, TypeError):
        raise FaultError(f"fault {applied.name!r}: not an engine fault handle: {applied.handle!r}") from None
    return proxy, names


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _error(response: httpx.Response) -> str:
    message = _json(response).get("error")
    return str(message) if message else response.text[:200]


def _reason(exc: httpx.HTTPError) -> str:
    return str(exc) or type(exc).__name__
