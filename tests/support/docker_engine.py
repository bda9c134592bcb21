"""A fake Docker Engine API on a unix socket: a few containers, Docker's status codes, every request recorded.

`FakeDockerEngine` serves the routes the docker SDK and the restore watchdog use, with or
without a ``/v1.NN`` prefix: ``GET /_ping``, ``GET /version``, ``GET /containers/json``
(``all``, ``filters`` with ``label``), ``GET /containers/{id or name}/json`` and
``POST /containers/{id}/kill|pause|unpause|stop|restart|start``. Answers follow Docker: 204
when done, 304 to start a running (or stop a stopped) container, 404 ``No such container``,
409 to pause a paused or unpause an unpaused container, or to act on one not running.
`FakeDockerEngine.fail` makes an action answer 500 for one container without changing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

API_VERSION = "1.45"
_VERSIONED = re.compile(r"^/v(\d+\.\d+)(/.*)$")
_ACTION = re.compile(r"^/containers/([^/]+)/(kill|pause|unpause|stop|restart|start)$")
_INSPECT = re.compile(r"^/containers/([^/]+)/json$")


@dataclass
class FakeContainer:
    id: str
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    status: str = "running"  # running, paused, exited
    started_at: str = ""
    exit_code: int = 0

    def inspect(self) -> dict[str, Any]:
        state = {
            "Status": self.status,
            "Running": self.status in ("running", "paused"),
            "Paused": self.status == "paused",
            "Restarting": False,
            "ExitCode": self.exit_code,
            "StartedAt": self.started_at,
        }
        return {"Id": self.id, "Name": f"/{self.name}", "State": state, "Config": {"Labels": self.labels}}

    def summary(self) -> dict[str, Any]:
        return {"Id": self.id, "Names": [f"/{self.name}"], "Labels": self.labels, "State": self.status}

    def has_label(self, selector: str) -> bool:
        key, equals, value = selector.partition("=")
        return key in self.labels and (not equals or self.labels[key] == value)


@dataclass(frozen=True)
class Call:
    """One request: its method, path without the version prefix, query, that prefix's version ("" if none), and
    when it arrived (`time.monotonic`)."""

    method: str
    path: str
    query: dict[str, str]
    version: str = ""
    at: float = 0.0

    @property
    def line(self) -> str:
        """``POST /containers/c1/kill signal=SIGKILL``: the method, the path and the query that matters."""
        shown = [f"{key}={self.query[key]}" for key in ("all", "filters", "signal", "t") if key in self.query]
        return " ".join([self.method, self.path, *shown])


class FakeDockerEngine:
    """The fake engine, served by uvicorn in a thread on ``socket_path`` (a temporary directory)."""

    def __init__(self) -> None:
        self._directory = tempfile.TemporaryDirectory(prefix="fake-docker-")
        self.socket_path = Path(self._directory.name) / "docker.sock"
        self.url = f"unix://{self.socket_path}"
        self.containers: dict[str, FakeContainer] = {}
        self.calls: list[Call] = []
        self.failures: set[tuple[str, str]] = set()
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        self._clock = 0
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET", "HEAD", "POST", "DELETE"])])
        self._server = uvicorn.Server(
            uvicorn.Config(app, loop="asyncio", http="h11", lifespan="off", log_level="warning", access_log=False)
        )
        # Listening before the thread starts: clients queue in the backlog until uvicorn serves.
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._socket.bind(str(self.socket_path))
        self._socket.listen(64)
        self._thread = threading.Thread(target=self._serve, name="fake-docker-engine", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._socket]))

    def close(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        assert not self._thread.is_alive(), "the fake Docker engine did not stop"
        self._socket.close()
        self._directory.cleanup()

    # -- the test's side ------------------------------------------------------------------

    def add(self, name: str, *, labels: dict[str, str] | None = None, status: str = "running") -> FakeContainer:
        """A new container with a 64-hex-digit id derived from its position."""
        with self.lock:
            container = FakeContainer(f"{len(self.containers) + 1:02x}" * 32, name, dict(labels or {}), status)
            container.started_at = self._now()
            self.containers[container.id] = container
            return container

    def get(self, name: str) -> FakeContainer:
        with self.lock:
            return next(c for c in self.containers.values() if c.name == name)

    def set_status(self, name: str, status: str) -> None:
        with self.lock:
            next(c for c in self.containers.values() if c.name == name).status = status

    def remove_container(self, name: str) -> None:
        """``docker rm``: the container is gone."""
        with self.lock:
            del self.containers[next(c.id for c in self.containers.values() if c.name == name)]

    def restart_by_policy(self, name: str) -> None:
        """Start ``name`` again as its restart policy would."""
        with self.lock:
            container = next(c for c in self.containers.values() if c.name == name)
            container.status, container.exit_code, container.started_at = "running", 0, self._now()

    def fail(self, action: str, name: str) -> None:
        """Answer 500 to ``action`` (``pause``, ``start``…) on container ``name``, changing nothing."""
        with self.lock:
            self.failures.add((action, name))

    def lines(self, since: int = 0) -> list[str]:
        """The requests from the ``since``-th on, as `Call.line`."""
        with self.lock:
            return [call.line for call in self.calls[since:]]

    def wait_for(self, predicate: Callable[[list[Call]], bool], timeout: float) -> bool:
        """Whether the recorded calls satisfy ``predicate`` within ``timeout`` seconds."""
        with self.arrived:
            return self.arrived.wait_for(lambda: predicate(self.calls), timeout)

    def _now(self) -> str:
        self._clock += 1
        return f"2024-05-01T12:{self._clock // 60:02d}:{self._clock % 60:02d}.000000000Z"

    # -- the API ------------------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        path, version = request.url.path, ""
        if match := _VERSIONED.match(path):
            version, path = match.groups()
        with self.arrived:
            self.calls.append(Call(request.method, path, dict(request.query_params), version, time.monotonic()))
            self.arrived.notify_all()
            return self._answer(request.method, path, dict(request.query_params))

    def _answer(self, method: str, path: str, query: dict[str, str]) -> Response:
        if method == "GET" and path == "/_ping":
            return PlainTextResponse("OK")
        if method == "GET" and path == "/version":
            return JSONResponse({"Version": "27.0.3", "ApiVersion": API_VERSION, "MinAPIVersion": "1.24"})
        if method == "GET" and path == "/containers/json":
            return JSONResponse([c.summary() for c in self._listed(query)])
        if method == "GET" and (match := _INSPECT.match(path)):
            container = self._find(match.group(1))
            return _missing(match.group(1)) if container is None else JSONResponse(container.inspect())
        if method == "POST" and (match := _ACTION.match(path)):
            reference, action = match.groups()
            container = self._find(reference)
            if container is None:
                return _missing(reference)
            if (action, container.name) in self.failures:
                return JSONResponse({"message": f"injected failure: {action} {container.name}"}, status_code=500)
            return self._act(container, action, query)
        return JSONResponse({"message": f"page not found: {method} {path}"}, status_code=404)

    def _listed(self, query: dict[str, str]) -> list[FakeContainer]:
        filters: dict[str, Any] = json.loads(query.get("filters") or "{}")
        labels = filters.get("label", [])
        labels = list(labels) if isinstance(labels, list) else [k for k, v in labels.items() if v]
        every = query.get("all") in ("1", "true", "True")
        return [
            c
            for c in self.containers.values()
            if (every or c.status in ("running", "paused")) and all(c.has_label(s) for s in labels)
        ]

    def _find(self, reference: str) -> FakeContainer | None:
        if reference in self.containers:
            return self.containers[reference]
        by_name = [c for c in self.containers.values() if c.name == reference.lstrip("/")]
        by_prefix = [c for c in self.containers.values() if c.id.startswith(reference)]
        matches = by_name or by_prefix
        return matches[0] if len(matches) == 1 else None

    def _act(self, container: FakeContainer, action: str, query: dict[str, str]) -> Response:
        status, name = container.status, container.name
        if action == "start":
            if status in ("running", "paused"):
                return Response(status_code=304)
            container.status, container.exit_code, container.started_at = "running", 0, self._now()
        elif action == "stop":
            if status == "exited":
                return Response(status_code=304)
            container.status, container.exit_code = "exited", 0
        elif status == "exited":
            return _conflict(f"Container {name} is not running")
        elif action == "pause" and status == "paused":
            return _conflict(f"Container {name} is already paused")
        elif action == "unpause" and status != "paused":
            return _conflict(f"Container {name} is not paused")
        elif action == "restart" and status == "paused":
            return _conflict(f"Cannot restart container {name}: cannot restart a Paused container")
        elif action == "kill":
            container.status, container.exit_code = "exited", 128 + _signal_number(query.get("signal", "SIGKILL"))
        elif action == "restart":
            container.status, container.exit_code, container.started_at = "running", 0, self._now()
        else:  # pause, unpause
            container.status = "paused" if action == "pause" else "running"
        return Response(status_code=204)


def _signal_number(name: str) -> int:
    with contextlib.suppress(ValueError):
        return int(name)
    return int(signal.Signals[name if name.startswith("SIG") else f"SIG{name}"])


def _missing(reference: str) -> Response:
    return JSONResponse({"message": f"No such container: {reference}"}, status_code=404)


def _conflict(message: str) -> Response:
    return JSONResponse({"message": message}, status_code=409)
