"""The engine's proxies by name, and every operation the API offers on them.

Each operation validates everything before it changes anything, so a rejected request
leaves the engine as it was. Mutations that wait (name resolution, binding) hold one lock,
so concurrent requests apply one after the other.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import socket
import struct
from dataclasses import dataclass
from typing import Any

from chaos_service.engine.listen import (
    DEFAULT_LISTEN,
    bind_listener,
    listen_differs,
    reported_listen,
    resolve_listen,
    split_host_port,
    validate_upstream,
)
from chaos_service.engine.model import Direction, ProxySpec, ToxicEntry
from chaos_service.engine.protocols import protocol
from chaos_service.engine.proxy import Proxy
from chaos_service.errors import (
    ChaosServiceError,
    InvalidProxy,
    InvalidToxic,
    ListenFailed,
    ProxyExists,
    ProxyNotFound,
)

log = logging.getLogger(__name__)

#: Longest accepted toxic ttl, in seconds (about 31 years; beyond it timers overflow).
MAX_TTL = 1e9


@dataclass(frozen=True, slots=True)
class ToxicUpdate:
    """A partial toxic update: None means "leave as it is"."""

    attributes: dict[str, Any] | None = None
    toxicity: float | None = None
    ttl: float | None = None


class PopulateFailed(ChaosServiceError):
    """A populate request failed; ``done`` lists the proxies it had already applied."""

    def __init__(self, cause: ChaosServiceError, done: list[Proxy] | None) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.done = done


def float32(value: float) -> float:
    """Round to the nearest float32, as Toxiproxy stores toxicity."""
    return float(struct.unpack("f", struct.pack("f", value))[0])


class ProxyCollection:
    """Named proxies and their toxics."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng = rng or random.Random()
        self.proxies: dict[str, Proxy] = {}
        self._lock = asyncio.Lock()

    # -- proxies ------------------------------------------------------------------------

    def sorted_by_name(self) -> list[Proxy]:
        return [self.proxies[name] for name in sorted(self.proxies)]

    def get(self, name: str) -> Proxy:
        try:
            return self.proxies[name]
        except KeyError:
            raise ProxyNotFound() from None

    async def create(self, spec: ProxySpec) -> Proxy:
        """Create a proxy and, when enabled, start listening.

        Raises:
            InvalidProxy: a field is missing or malformed.
            ProxyExists: the name is taken.
            ListenFailed: the listen address is in use.
        """
        spec = self._checked(spec)
        async with self._lock:
            if spec.name in self.proxies:
                raise ProxyExists()
            proxy = self._new_proxy(spec)
            if spec.enabled:
                proxy.start(*await bind_listener(spec.listen))
            self.proxies[spec.name] = proxy
            log.info("created proxy %s %s -> %s", proxy.name, proxy.listen, proxy.upstream)
            return proxy

    async def update(
        self, name: str, listen: str | None, upstream: str | None, enabled: bool | None
    ) -> Proxy:
        """Change a proxy's listen address, upstream or enabled state (absent: unchanged).

        A new listen address is bound before the old one is released, so a failure leaves
        the proxy as it was. A new upstream closes the proxy's open connections.
        """
        async with self._lock:
            proxy = self.get(name)
            new_listen = listen or proxy.listen
            new_upstream = upstream or proxy.upstream
            validate_upstream(new_upstream)
            listen_changed = await listen_differs(new_listen, proxy.listen)
            want_enabled = proxy.enabled if enabled is None else enabled
            if want_enabled and (listen_changed or not proxy.enabled):
                bound = await bind_listener(new_listen if listen_changed else proxy.listen)
                proxy.stop()
                proxy.upstream = new_upstream
                proxy.start(*bound)
            elif want_enabled:
                if new_upstream != proxy.upstream:
                    proxy.upstream = new_upstream
                    proxy.runtime.close_connections()
            else:
                if proxy.enabled:
                    proxy.stop()
                proxy.upstream = new_upstream
                if listen_changed:
                    proxy.listen = new_listen
            return proxy

    async def delete(self, name: str) -> None:
        async with self._lock:
            proxy = self.get(name)
            self._discard(proxy)
            log.info("deleted proxy %s", name)

    async def populate(self, specs: list[ProxySpec]) -> list[Proxy]:
        """Create or replace many proxies; all or nothing.

        A proxy that exists and does not differ (same resolved listen, same upstream and
        protocol) is kept untouched, toxics included; one that differs is replaced.

        Raises:
            PopulateFailed: a definition is invalid or an address cannot be bound; nothing
                was changed.
        """
        checked: list[ProxySpec] = []
        for index, spec in enumerate(specs, start=1):
            try:
                checked.append(self._checked(spec))
            except InvalidProxy as exc:
                raise PopulateFailed(InvalidProxy(f"{exc} at proxy {index}"), None) from None
        names = [spec.name for spec in checked]
        if len(set(names)) != len(names):
            duplicate = next(n for n in names if names.count(n) > 1)
            raise PopulateFailed(InvalidProxy(f"proxy {duplicate!r} is defined more than once"), None)
        async with self._lock:
            plan: list[tuple[ProxySpec, Proxy | None, bool]] = []  # (spec, existing, replace)
            try:
                for spec in checked:
                    existing = self.proxies.get(spec.name)
                    replace = existing is not None and await self._differs(existing, spec)
                    plan.append((spec, existing, replace))
            except InvalidProxy as exc:
                raise PopulateFailed(exc, None) from None
            bound = await self._bind_all(plan)
            result: list[Proxy] = []
            for spec, existing, replace in plan:
                if existing is not None and not replace:
                    result.append(existing)
                    continue
                if existing is not None:
                    self._discard(existing)
                proxy = self._new_proxy(spec)
                if spec.name in bound:
                    proxy.start(*bound[spec.name])
                self.proxies[spec.name] = proxy
                result.append(proxy)
            return result

    async def reset(self) -> None:
        """Enable every proxy and remove every toxic.

        Proxies that cannot be re-enabled (their address is taken) are reported after all
        the others have been reset.
        """
        failures: list[str] = []
        async with self._lock:
            for proxy in self.sorted_by_name():
                if not proxy.enabled:
                    try:
                        proxy.start(*await bind_listener(proxy.listen))
                    except ChaosServiceError as exc:
                        failures.append(f"{proxy.name}: {exc}")
                proxy.remove_all_toxics()
        if failures:
            raise ListenFailed("; ".join(failures))

    def close(self) -> None:
        """Stop every proxy (engine shutdown)."""
        for proxy in self.sorted_by_name():
            self._discard(proxy)

    # -- toxics -------------------------------------------------------------------------

    def add_toxic(
        self,
        proxy_name: str,
        *,
        type_name: str,
        name: str | None = None,
        stream: str | None = None,
        toxicity: float | None = None,
        attributes: dict[str, Any] | None = None,
        ttl: float | None = None,
    ) -> ToxicEntry:
        """Add a toxic, checked in Toxiproxy's order: stream, type, name, attributes.

        ``stream`` None means downstream; ``name`` empty means ``<type>_<stream>``.
        """
        proxy = self.get(proxy_name)
        stream = "downstream" if stream is None else stream
        direction = Direction.parse(stream)
        name = name or f"{type_name}_{stream}"
        spec = proxy.protocol_spec
        toxic_type = spec.toxic_types.get(type_name)
        if toxic_type is None:
            raise InvalidToxic(
                f"invalid toxic type: {type_name!r} is not one of {', '.join(sorted(spec.toxic_types))}"
                f" (protocol {proxy.protocol})"
            )
        if direction not in spec.streams:
            allowed = " or ".join(sorted(d.value for d in spec.streams))
            raise InvalidToxic(f"{type_name} toxics on {proxy.protocol} proxies act on the {allowed} stream")
        proxy.check_name_free(name)
        toxic = toxic_type.from_attributes(attributes or {})
        entry = ToxicEntry(name, stream, direction, _toxicity(toxicity, 1.0), toxic)
        _check_ttl(ttl)
        proxy.add_toxic(entry)
        if ttl is not None:
            self._arm_expiry(proxy, entry, ttl)
        log.info("added toxic %s (%s %s) to proxy %s", name, type_name, stream, proxy_name)
        return entry

    def update_toxic(self, proxy_name: str, toxic_name: str, update: ToxicUpdate) -> ToxicEntry:
        """Merge new attributes into a toxic, change its toxicity or re-arm its ttl.

        A change of attributes or toxicity restarts the toxic on every connection (which
        throws the toxicity coin again); a ttl alone only moves its expiry.
        """
        proxy = self.get(proxy_name)
        entry = proxy.toxic(toxic_name)
        # null means "not given", as when Go decodes into the existing attributes
        changes = {key: value for key, value in (update.attributes or {}).items() if value is not None}
        merged = {**entry.toxic.attribute_values(), **changes}
        toxic = type(entry.toxic).from_attributes(merged)
        toxicity = _toxicity(update.toxicity, entry.toxicity)
        _check_ttl(update.ttl)
        if update.attributes is not None or update.toxicity is not None:
            proxy.update_toxic(entry, toxic, toxicity)
        if update.ttl is not None:
            self._arm_expiry(proxy, entry, update.ttl)
        return entry

    def remove_toxic(self, proxy_name: str, toxic_name: str) -> None:
        self.get(proxy_name).remove_toxic(toxic_name)
        log.info("removed toxic %s from proxy %s", toxic_name, proxy_name)

    # -- helpers ------------------------------------------------------------------------

    def _new_proxy(self, spec: ProxySpec) -> Proxy:
        return Proxy(spec, random.Random(self.rng.getrandbits(64)))

    def _discard(self, proxy: Proxy) -> None:
        for entry in proxy.toxics:
            entry.cancel_expiry()
        proxy.stop()
        self.proxies.pop(proxy.name, None)

    @staticmethod
    def _checked(spec: ProxySpec) -> ProxySpec:
        if not spec.name:
            raise InvalidProxy("missing required field: name")
        if not spec.upstream:
            raise InvalidProxy("missing required field: upstream")
        if "/" in spec.name:
            raise InvalidProxy(f"proxy name {spec.name!r} must not contain '/'")
        protocol(spec.protocol)
        validate_upstream(spec.upstream)
        listen = spec.listen or DEFAULT_LISTEN
        split_host_port(listen, "listen")
        return ProxySpec(spec.name, listen, spec.upstream, spec.enabled, spec.protocol)

    @staticmethod
    async def _differs(proxy: Proxy, spec: ProxySpec) -> bool:
        return (
            spec.upstream != proxy.upstream
            or spec.protocol != proxy.protocol
            or await listen_differs(spec.listen, proxy.listen)
        )

    async def _bind_all(
        self, plan: list[tuple[ProxySpec, Proxy | None, bool]]
    ) -> dict[str, tuple[socket.socket, str]]:
        """Bind every listener a populate needs before anything changes.

        An address held by a proxy this populate replaces is taken over (binding it
        again would fail), whichever item of the request asks for it.
        """
        releasable = {
            existing.listen: existing
            for _, existing, replace in plan
            if existing is not None and replace and existing.enabled
        }
        bound: dict[str, tuple[socket.socket, str]] = {}
        transfers: list[tuple[ProxySpec, Proxy]] = []
        try:
            for spec, existing, replace in plan:
                if not spec.enabled or (existing is not None and not replace):
                    continue
                family, host, port = await resolve_listen(spec.listen)
                owner = releasable.pop(reported_listen(family, host, port), None) if port else None
                if owner is not None:
                    transfers.append((spec, owner))
                else:
                    bound[spec.name] = await bind_listener(spec.listen)
        except ChaosServiceError as exc:
            for sock, _ in bound.values():
                sock.close()
            raise PopulateFailed(exc, None) from None
        for spec, owner in transfers:
            address = owner.listen
            listener = owner.stop(keep_listener=True)
            if listener is not None:
                bound[spec.name] = (listener, address)
        return bound

    def _arm_expiry(self, proxy: Proxy, entry: ToxicEntry, ttl: float) -> None:
        loop = asyncio.get_running_loop()
        entry.cancel_expiry()
        entry.ttl = ttl
        entry.expires_at = loop.time() + ttl
        entry.expiry = loop.call_later(ttl, self._expire, proxy, entry)

    def _expire(self, proxy: Proxy, entry: ToxicEntry) -> None:
        entry.expiry = None
        if self.proxies.get(proxy.name) is proxy and entry in proxy.toxics:
            proxy.remove_toxic(entry.name)
            log.info("toxic %s on proxy %s expired after its ttl of %ss", entry.name, proxy.name, entry.ttl)


def _toxicity(value: float | None, default: float) -> float:
    if value is None:
        return default
    if not (0.0 <= value <= 1.0) or math.isnan(value):
        raise InvalidToxic(f"toxicity must be a number between 0 and 1, got {value}")
    return float32(value)


def _check_ttl(ttl: float | None) -> None:
    if ttl is not None and not (0 < ttl <= MAX_TTL):
        raise InvalidToxic(f"ttl must be a number of seconds greater than 0 (at most {MAX_TTL:g}), got {ttl}")
