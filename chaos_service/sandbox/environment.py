"""The sandbox's environment files: where everything runs, and the proxies the engine starts with.

``environment.json`` tells probes, experiments and the ``sandbox`` commands where each part of a
running sandbox is (see docs/sandbox.md); ``proxies.json`` holds the engine's proxies in
Toxiproxy's ``-config`` format. Client tokens for the chat back-end come from
`chaos_service.sandbox.chat.auth.issue_token`.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chaos_service.errors import InvalidInput
from chaos_service.sandbox.chat.auth import ALGORITHM

ENVIRONMENT_FILE = "environment.json"
PROXIES_FILE = "proxies.json"


class SandboxNotRunning(InvalidInput):
    """There is no environment.json in the sandbox directory."""


@dataclass(frozen=True)
class Proxy:
    """One of the engine's proxies: ``listen`` and ``upstream`` are ``HOST:PORT``."""

    protocol: str
    listen: str
    upstream: str


@dataclass(frozen=True)
class Auth:
    """How the chat back-end checks client tokens."""

    secret: str
    algorithm: str = ALGORITHM


@dataclass(frozen=True)
class Container:
    """How the Docker fault driver finds a fault target: one container by its exact name, or
    every container carrying a label (``key=value``, or ``key`` for any value)."""

    name: str = ""
    label: str = ""

    def describe(self) -> str:
        return f"name {self.name!r}" if self.name else f"label {self.label!r}"


@dataclass(frozen=True)
class Environment:
    """The contents of environment.json: URLs, proxies, the JWT secret and the fault targets.

    ``toxiproxy`` is the URL of a Toxiproxy server that serves the ``tcp`` proxies (empty:
    the engine serves every proxy); ``docker`` the Docker Engine API URL for ``containers``
    (empty: ``$DOCKER_HOST``, else the local socket).
    """

    engine: str
    proxies: dict[str, Proxy]
    endpoints: dict[str, str]
    direct: dict[str, str]
    auth: Auth
    processes: dict[str, int]
    defects: list[str] = field(default_factory=list)
    toxiproxy: str = ""
    docker: str = ""
    containers: dict[str, Container] = field(default_factory=dict)

    def to_json(self) -> str:
        """The document, with keys in the documented order."""
        document = {
            "engine": self.engine,
            "proxies": {name: asdict(proxy) for name, proxy in self.proxies.items()},
            "endpoints": self.endpoints,
            "direct": self.direct,
            "auth": {"algorithm": self.auth.algorithm, "secret": self.auth.secret},
            "processes": self.processes,
            "defects": self.defects,
        }
        if self.toxiproxy:
            document["toxiproxy"] = self.toxiproxy
        if self.docker:
            document["docker"] = self.docker
        if self.containers:
            document["containers"] = {
                name: {key: value for key, value in asdict(container).items() if value}
                for name, container in self.containers.items()
            }
        return json.dumps(document, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Environment:
        """Parse a document written by `to_json`; `ValueError` when it is not one."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        try:
            return cls(
                engine=_str(data["engine"]),
                proxies={
                    _str(name): Proxy(_str(p["protocol"]), _str(p["listen"]), _str(p["upstream"]))
                    for name, p in _dict(data["proxies"]).items()
                },
                endpoints={_str(k): _str(v) for k, v in _dict(data["endpoints"]).items()},
                direct={_str(k): _str(v) for k, v in _dict(data["direct"]).items()},
                auth=Auth(secret=_str(data["auth"]["secret"]), algorithm=_str(data["auth"]["algorithm"])),
                processes={_str(k): _int(v) for k, v in _dict(data["processes"]).items()},
                defects=[_str(d) for d in data.get("defects", [])],
                toxiproxy=_str(data.get("toxiproxy", "")),
                docker=_str(data.get("docker", "")),
                containers={_str(k): _container(v) for k, v in _dict(data.get("containers", {})).items()},
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"missing or malformed field {exc}") from None

    @classmethod
    def load(cls, path: Path) -> Environment:
        """Read environment.json at `path`.

        Raises:
            SandboxNotRunning: the file does not exist (no sandbox runs in that directory).
            InvalidInput: the file cannot be read or is not an environment file.
        """
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise SandboxNotRunning(
                f"no sandbox is running in {path.parent}: run `chaos-service sandbox up --dir {path.parent}`"
            ) from None
        except OSError as exc:
            raise InvalidInput(f"{path}: cannot read the environment file: {exc.strerror or exc}") from None
        try:
            return cls.from_json(text)
        except ValueError as exc:
            raise InvalidInput(
                f"{path}: not a sandbox environment file ({exc}); run `chaos-service sandbox down --dir "
                f"{path.parent}` and `up` again"
            ) from None

    def write(self, path: Path) -> None:
        """Write the file atomically: readers see the old contents or the new, never a part."""
        _write_atomically(path, self.to_json())


def proxies_config(proxies: dict[str, Proxy]) -> list[dict[str, Any]]:
    """The proxies as Toxiproxy's ``-config`` (``POST /populate``) array."""
    return [
        {"name": name, "listen": p.listen, "upstream": p.upstream, "protocol": p.protocol, "enabled": True}
        for name, p in proxies.items()
    ]


def write_proxies(path: Path, proxies: dict[str, Proxy]) -> None:
    """Write proxies.json for ``chaos-service engine --config`` (or ``toxiproxy-server -config``)."""
    _write_atomically(path, json.dumps(proxies_config(proxies), indent=2) + "\n")


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(text)
        os.replace(partial, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _container(value: object) -> Container:
    entry = _dict(value)
    unknown = sorted(set(entry) - {"name", "label"})
    if unknown:
        raise TypeError(f"a container has 'name' or 'label', not {unknown}")
    container = Container(name=_str(entry.get("name", "")), label=_str(entry.get("label", "")))
    if bool(container.name) == bool(container.label):
        raise TypeError(f"a container needs exactly one of 'name' and 'label', got {entry!r}")
    return container


def _dict(value: object) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {value!r}")
    return value
