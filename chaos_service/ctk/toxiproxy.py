"""chaostoolkit-toxiproxy (``chaostoxi`` 0.3.1) activities, run against the engine with a ttl and a cleanup.

An experiment whose python provider names a ``chaostoxi`` module does not import chaostoxi: the
`ToxiproxyBridge` runs the function of the same name, with the same arguments, defaults, return
value and failures, against the experiment's Toxiproxy (``toxiproxy_url``, else ``toxiproxy_host``
and ``toxiproxy_port`` in its configuration) or else the service's engine. Two guarantees Chaos
Toolkit lacks: every toxic it creates carries a ``ttl``, so the engine removes it even if the run is
killed, and `ToxiproxyBridge.restore` puts back at the end whatever it changed and is still there
(toxics it created, proxies it disabled or repointed, proxies it created), rollbacks or not.
Every HTTP call has a timeout; whole-number floats (``1000.0``, which Go's Toxiproxy refuses) are
sent as integers.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from chaos_service.tls import client_context

log = logging.getLogger(__name__)

#: A Chaos Toolkit configuration, as chaostoxi functions receive it.
Config = dict[str, Any] | None

#: Seconds an HTTP call to Toxiproxy may take: 3 to connect, 10 for each other step.
HTTP_TIMEOUT = httpx.Timeout(10.0, connect=3.0)
#: Toxiproxy's API port when the configuration names a host but no port (as chaostoxi has it).
DEFAULT_PORT = 8474

#: The functions of each chaostoxi module (their ``__all__``), all run by the bridge.
_EXPORTS: dict[str, tuple[str, ...]] = {
    "chaostoxi.proxy.actions": (
        *("create_proxy", "disable_proxy", "enable_proxy", "modify_proxy", "delete_proxy", "reset"),
    ),
    "chaostoxi.proxy.probes": ("proxy_exist", "get_proxy_attribute"),
    "chaostoxi.toxic.actions": (
        *("delete_toxic", "create_toxic", "create_latency_toxic", "create_bandwith_degradation_toxic"),
        *("create_slow_connection_close_toxic", "create_timeout_toxic", "create_slicer_toxic", "create_limiter_toxic"),
    ),
}
#: The chaostoxi modules whose functions run here instead of in chaostoxi.
MODULES: frozenset[str] = frozenset(_EXPORTS)


def functions(module: str) -> list[str]:
    """The function names chaostoxi's `module` has (empty for a module that is not mapped)."""
    return list(_EXPORTS.get(module, ()))


def function(module: str, func: str) -> Callable[..., Any] | None:
    """A callable with chaostoxi's signature for ``module.func``, to check an activity's arguments; None if absent.

    Only its signature is meant to be used: the function runs through `ToxiproxyBridge.call`.
    """
    if func not in _EXPORTS.get(module, ()):
        return None
    return functools.partial(getattr(ToxiproxyBridge, func), None)


@dataclass
class _Change:
    """One thing the bridge changed: a proxy or toxic it created, or a proxy it modified."""

    kind: Literal["proxy", "toxic", "modified"]
    base: str
    proxy: str
    toxic: str = ""
    original: dict[str, Any] = field(default_factory=dict)
    fields: set[str] = field(default_factory=set)


class ToxiproxyBridge:
    """chaostoxi's functions against a Toxiproxy API, remembering what they changed so it can be put back."""

    def __init__(self, default_url: str, *, ttl: float) -> None:
        """`default_url`: the API used when the configuration names none; `ttl`: seconds a created toxic lives."""
        if not ttl > 0:
            raise ValueError(f"ttl must be a number of seconds greater than 0, got {ttl}")
        self.default_url = default_url.rstrip("/")
        self.ttl = ttl
        self._changes: list[_Change] = []
        self._lock = threading.Lock()

    def call(self, module: str, func: str, arguments: Mapping[str, Any], configuration: dict[str, Any]) -> Any:
        """Run chaostoxi's ``module.func(**arguments, configuration=configuration)``; its return value."""
        if module not in _EXPORTS:
            raise ValueError(f"{module} is not a chaostoxi module run here (those are {', '.join(sorted(MODULES))})")
        if func not in _EXPORTS[module]:
            raise ValueError(f"{module} has no function {func!r} (it has {', '.join(_EXPORTS[module])})")
        return getattr(self, func)(**{**arguments, "configuration": configuration})

    def base_url(self, configuration: Mapping[str, Any] | None) -> str:
        """The API URL chaostoxi would use for `configuration`, or the default URL when it names no Toxiproxy."""
        config = configuration or {}
        host, port = config.get("toxiproxy_host"), config.get("toxiproxy_port")
        if config.get("toxiproxy_url"):
            return str(config["toxiproxy_url"]).rstrip("/")
        if host:
            return f"http://{host}:{port or DEFAULT_PORT}"
        if port:
            return str(httpx.URL(self.default_url).copy_with(port=int(port))).rstrip("/")
        return self.default_url

    def restore(self) -> list[str]:
        """Put back, newest first, what this bridge changed and is still there; one line per thing put back or not."""
        with self._lock:
            changes, self._changes = self._changes, []
        created = {(change.base, change.proxy) for change in changes if change.kind == "proxy"}
        lines: list[str] = []
        for change in reversed(changes):
            if change.kind != "proxy" and (change.base, change.proxy) in created:
                continue  # deleting the proxy takes it along
            where = "" if change.base == self.default_url else f" at {change.base}"
            try:
                line = self._undo(change)
            except Exception as exc:  # the cleanup goes on whatever one step meets
                line = f"could not {_VERBS[change.kind][0]} {_thing(change)}: {type(exc).__name__}: {exc}"
            if line:
                lines.append(line + where)
        return lines

    def _undo(self, change: _Change) -> str | None:
        """Undo one change; the line to report, or None when there was nothing left to undo."""
        path = f"/proxies/{change.proxy}"
        if change.kind == "modified":
            response = self._request("GET", change.base, path)
            if response.status_code == 404:
                return None
            current = response.json()
            back = {
                key: change.original[key] for key in sorted(change.fields) if current.get(key) != change.original[key]
            }
            if not back:
                return None
            response = self._request("POST", change.base, path, back)
            done = ", ".join(_describe(key, value) for key, value in back.items())
        else:
            if change.kind == "toxic":
                path += f"/toxics/{change.toxic}"
            response = self._request("DELETE", change.base, path)
            if response.status_code == 404:
                return None
            done = ""
        if not response.is_success:
            return f"could not {_VERBS[change.kind][0]} {_thing(change)}: {_why(response)}"
        return f"{_VERBS[change.kind][1]} {_thing(change)}" + (f" ({done})" if done else "")

    def _request(self, method: str, base: str, path: str, body: Any = None) -> httpx.Response:
        try:
            with httpx.Client(timeout=HTTP_TIMEOUT, trust_env=False, verify=client_context()) as client:
                return client.request(method, base + path, json=body)
        except httpx.HTTPError as exc:
            raise RuntimeError(f"Toxiproxy API {base} did not answer {method} {path}: {exc!r}") from None

    def _note(self, change: _Change) -> None:
        with self._lock:
            self._changes.append(change)

    # chaostoxi.proxy.actions

    def create_proxy(
        self,
        proxy_name: str,
        upstream_host: str,
        upstream_port: int,
        listen_host: str = "0.0.0.0",
        listen_port: int = 0,
        enabled: bool = True,
        configuration: Config = None,
    ) -> bool:
        """Create a proxy (``env:VAR`` upstream values are read from the environment); stores ``<name>_PORT``."""
        upstream = f"{_from_env(upstream_host)}:{_whole(_from_env(upstream_port))}"
        listen = f"{listen_host}:{_whole(listen_port)}"
        body = {"name": proxy_name, "listen": listen, "upstream": upstream, "enabled": enabled}
        base = self.base_url(configuration)
        response = self._request("POST", base, "/proxies", body)
        if not response.is_success:
            raise AssertionError(f"could not create proxy {proxy_name!r}: {_why(response)}")
        self._note(_Change("proxy", base, proxy_name))
        _store_port(proxy_name, response.json(), configuration, digits=True)
        return True

    def disable_proxy(self, proxy_name: str, configuration: Config = None) -> bool:
        """Disable the proxy: its service looks down (connections refused)."""
        return self.modify_proxy(proxy_name=proxy_name, enabled=False, configuration=configuration)

    def enable_proxy(self, proxy_name: str, configuration: Config = None) -> bool:
        """Enable a disabled proxy."""
        return self.modify_proxy(proxy_name=proxy_name, enabled=True, configuration=configuration)

    def modify_proxy(
        self,
        proxy_name: str,
        listen_address: str | None = None,
        upstream_address: str | None = None,
        enabled: bool | None = None,
        configuration: Config = None,
    ) -> bool:
        """Change the given fields of a proxy (listen, upstream, enabled); stores ``<name>_PORT``."""
        given = {"listen": listen_address, "upstream": upstream_address, "enabled": enabled}
        body = {key: value for key, value in given.items() if value is not None}
        base = self.base_url(configuration)
        before = self._request("GET", base, f"/proxies/{proxy_name}")
        response = self._request("POST", base, f"/proxies/{proxy_name}", body)
        if not response.is_success:
            raise AssertionError(f"could not modify proxy {proxy_name!r}: {_why(response)}")
        if before.is_success and body:
            self._noted_modification(base, proxy_name, before.json(), set(body))
        _store_port(proxy_name, response.json(), configuration, digits=False)
        return True

    def _noted_modification(self, base: str, proxy: str, original: dict[str, Any], fields: set[str]) -> None:
        with self._lock:
            for change in self._changes:
                if change.kind == "modified" and (change.base, change.proxy) == (base, proxy):
                    change.fields |= fields  # the state to put back is the one before the first change
                    return
            self._changes.append(_Change("modified", base, proxy, original=original, fields=fields))

    def delete_proxy(self, proxy_name: str, configuration: Config = None) -> None:
        """Delete the proxy; a failure is only logged, as chaostoxi does."""
        base = self.base_url(configuration)
        try:
            response = self._request("DELETE", base, f"/proxies/{proxy_name}")
        except RuntimeError as exc:
            log.warning("Unable to remove proxy %s: %s", proxy_name, exc)
            return
        if not response.is_success:
            log.warning("Unable to remove proxy %s from %s: %s", proxy_name, base, _why(response))

    def reset(self, configuration: Config = None) -> bool:
        """Enable every proxy and remove every toxic; whether Toxiproxy accepted."""
        return self._request("POST", self.base_url(configuration), "/reset").is_success

    # chaostoxi.proxy.probes

    def proxy_exist(self, proxy_name: str, configuration: Config = None) -> bool:
        """Whether the proxy exists."""
        response = self._request("GET", self.base_url(configuration), f"/proxies/{proxy_name}")
        return response.is_success and response.json().get("name") == proxy_name

    def get_proxy_attribute(self, proxy_name: str, attribute: str, configuration: Config = None) -> Any:
        """One field of the proxy's JSON (``enabled``, ``upstream``, ``listen``, ``toxics``…); None if it is absent."""
        response = self._request("GET", self.base_url(configuration), f"/proxies/{proxy_name}")
        if not response.is_success:
            return None
        proxy = response.json()
        if attribute not in proxy:
            raise KeyError(f"proxy {proxy_name!r} has no attribute {attribute!r} (it has {', '.join(proxy)})")
        return proxy[attribute]

    # chaostoxi.toxic.actions

    def delete_toxic(self, for_proxy: str, toxic_name: str, configuration: Config = None) -> bool:
        """Remove a toxic; whether Toxiproxy accepted."""
        response = self._request("DELETE", self.base_url(configuration), f"/proxies/{for_proxy}/toxics/{toxic_name}")
        return response.is_success

    def create_toxic(
        self,
        for_proxy: str,
        toxic_name: str,
        toxic_type: str,
        stream: str = "downstream",
        toxicity: float = 1.0,
        attributes: dict[str, Any] | None = None,
        configuration: Config = None,
    ) -> bool:
        """Add any toxic, with the bridge's ttl; whether the created toxic has the name asked for."""
        if attributes is not None:
            attributes = {key: _whole(value) for key, value in attributes.items()}
        body = {"name": toxic_name, "type": toxic_type, "stream": stream, "toxicity": toxicity}
        base = self.base_url(configuration)
        response = self._request(
            "POST", base, f"/proxies/{for_proxy}/toxics", {**body, "attributes": attributes, "ttl": self.ttl}
        )
        if not response.is_success:
            raise RuntimeError(f"could not create toxic {toxic_name!r} on proxy {for_proxy!r}: {_why(response)}")
        created = str(response.json().get("name"))
        self._note(_Change("toxic", base, for_proxy, created))
        return created == toxic_name

    def create_latency_toxic(
        self, for_proxy: str, toxic_name: str, latency: int, jitter: int = 0, configuration: Config = None
    ) -> bool:
        """Delay the data coming back (downstream) by latency ± jitter ms."""
        return self._toxic(for_proxy, toxic_name, "latency", configuration, latency=latency, jitter=jitter)

    def create_bandwith_degradation_toxic(
        self, for_proxy: str, toxic_name: str, rate: int, configuration: Config = None
    ) -> bool:
        """Limit the data coming back to `rate` KB/s per connection (chaostoxi's spelling)."""
        return self._toxic(for_proxy, toxic_name, "bandwidth", configuration, rate=rate)

    def create_slow_connection_close_toxic(
        self, for_proxy: str, toxic_name: str, delay: int, configuration: Config = None
    ) -> bool:
        """Delay the close of the connection by `delay` ms."""
        return self._toxic(for_proxy, toxic_name, "slow_close", configuration, delay=delay)

    def create_timeout_toxic(self, for_proxy: str, toxic_name: str, timeout: int, configuration: Config = None) -> bool:
        """Swallow the data coming back and close after `timeout` ms without data (0: never close)."""
        return self._toxic(for_proxy, toxic_name, "timeout", configuration, timeout=timeout)

    def create_slicer_toxic(
        self,
        for_proxy: str,
        toxic_name: str,
        average_size: int,
        size_variation: int,
        delay: int,
        configuration: Config = None,
    ) -> bool:
        """Cut the data coming back into pieces of average_size ± size_variation bytes, `delay` µs apart."""
        sizes = {"average_size": average_size, "size_variation": size_variation}
        return self._toxic(for_proxy, toxic_name, "slicer", configuration, **sizes, delay=delay)

    def create_limiter_toxic(
        self, for_proxy: str, toxic_name: str, bytes_limit: int, configuration: Config = None
    ) -> bool:
        """Close each connection once `bytes_limit` bytes have come back."""
        return self._toxic(for_proxy, toxic_name, "limit_data", configuration, bytes=bytes_limit)

    def _toxic(self, proxy: str, name: str, kind: str, configuration: Config, **attributes: Any) -> bool:
        """chaostoxi's helpers: a downstream toxic with toxicity 1."""
        return self.create_toxic(proxy, name, kind, attributes=attributes, configuration=configuration)




def _from_env(value: Any) -> Any:
    """``env:VAR`` → the environment variable's value; anything else as it is."""
    if isinstance(value, str) and value.startswith("env:"):
        if value[4:] not in os.environ:
            raise KeyError(f"environment variable {value[4:]} is not set (asked for by {value!r})")
        return os.environ[value[4:]]
    return value


def _whole(value: Any) -> Any:
    """``1000.0`` → ``1000``: Toxiproxy's integer fields refuse JSON floats."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _store_port(name: str, proxy: Mapping[str, Any], configuration: Config, *, digits: bool) -> None:
    """Put the proxy's listen port in ``configuration`` and ``os.environ`` as ``<name>_PORT``, as chaostoxi does."""
    port = str(proxy.get("listen", "")).split(":")[-1]
    if digits and not port.isdigit():
        raise AssertionError(f"no port in proxy {name!r}'s listen address {proxy.get('listen')!r}")
    if configuration is not None:
        configuration[f"{name}_PORT"] = port
    os.environ[f"{name}_PORT"] = port


def _why(response: httpx.Response) -> str:
    """``404 proxy not found``: the status and Toxiproxy's error message (or the start of the body)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    message = body.get("error") if isinstance(body, dict) else None
    return f"{response.status_code} {message or response.text[:200]}".strip()


#: What undoing each kind of change is called: (to do, done).
_VERBS = {"proxy": ("delete", "deleted"), "toxic": ("remove", "removed"), "modified": ("put back", "put back")}


def _thing(change: _Change) -> str:
    """``toxic 'lat' from proxy 'redis'`` or ``proxy 'redis'``."""
    return (f"toxic {change.toxic!r} from " if change.kind == "toxic" else "") + f"proxy {change.proxy!r}"


def _describe(key: str, value: Any) -> str:
    return ("enabled" if value else "disabled") if key == "enabled" else f"{key} {value}"
