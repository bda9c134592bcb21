"""Run a Chaos Toolkit activity's provider: ``http``, ``process`` or ``python``.

Outputs and failures as chaostoolkit-lib has them: an http provider gives ``{status, headers,
body}`` (the body parsed only when the answer's Content-Type is exactly ``application/json``)
and fails only when no answer came; a process gives ``{status, stdout, stderr}`` and fails
only on its timeout; a python function gives its return value and fails when it raises.
``chaostoxi`` functions run against the service's engine through a `ToxiproxyBridge`.
Every failure is an `ActivityFailed` with a message.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import shlex
import shutil
import subprocess
from collections.abc import Mapping
from typing import Any

import httpx

from chaos_service.ctk import toxiproxy
from chaos_service.ctk.configuration import substitute
from chaos_service.ctk.toxiproxy import ToxiproxyBridge

DEFAULT_HTTP_TIMEOUT = 30.0
#: A process without a timeout of its own still ends: the run must stop by itself.
DEFAULT_PROCESS_TIMEOUT = 600.0


class ActivityFailed(Exception):
    """The provider could not produce an output."""


class Providers:
    """Runs providers with the experiment's configuration and secrets."""

    def __init__(
        self, configuration: dict[str, Any], secrets: Mapping[str, Mapping[str, Any]], bridge: ToxiproxyBridge
    ) -> None:
        self.configuration = configuration
        self.secrets = secrets
        self.bridge = bridge

    def run(self, provider: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> Any:
        """The provider's output; ``extra`` arguments (a tolerance probe's ``value``) are added."""
        spec = substitute(dict(provider), self.configuration, self.secrets)
        if extra:
            spec["arguments"] = {**(spec.get("arguments") or {}), **extra}
        kind = spec.get("type")
        if kind == "http":
            return self._http(spec)
        if kind == "process":
            return self._process(spec)
        return self._python(spec)

    def _http(self, spec: dict[str, Any]) -> dict[str, Any]:
        method = str(spec.get("method") or "GET").upper()
        headers = {str(k): str(v) for k, v in (spec.get("headers") or {}).items()}
        arguments = spec.get("arguments")
        timeout = spec.get("timeout", DEFAULT_HTTP_TIMEOUT)
        if isinstance(timeout, list) and len(timeout) == 2:
            limits = httpx.Timeout(float(timeout[1]), connect=float(timeout[0]))
        else:
            limits = httpx.Timeout(float(timeout))
        request: dict[str, Any] = {"headers": headers}
        if arguments is not None:
            if method == "GET":
                request["params"] = arguments
            elif headers.get("Content-Type") == "application/json":
                request["json"] = arguments
            else:
                request["data"] = arguments
        transport = httpx.HTTPTransport(retries=int(spec.get("max_retries") or 0))
        try:
            with httpx.Client(
                timeout=limits, verify=bool(spec.get("verify_tls", True)), transport=transport, trust_env=False
            ) as client:
                response = client.request(method, str(spec["url"]), **request)
        except httpx.HTTPError as exc:
            raise ActivityFailed(f"{method} {spec['url']}: {type(exc).__name__}: {exc}") from None
        body: Any = response.text
        if response.headers.get("Content-Type") == "application/json":
            with contextlib.suppress(ValueError):
                body = response.json()
        return {"status": response.status_code, "headers": dict(response.headers), "body": body}

    def _process(self, spec: dict[str, Any]) -> dict[str, Any]:
        path = shutil.which(str(spec["path"])) or str(spec["path"])
        arguments = spec.get("arguments")
        timeout = float(spec.get("timeout") or DEFAULT_PROCESS_TIMEOUT)
        if isinstance(arguments, str):  # a string runs through the shell, as in Chaos Toolkit
            command: list[str] | str = f"{shlex.quote(path)} {arguments}"
        else:
            command = [path, *(str(a) for a in (arguments or []))]
        try:
            done = subprocess.run(
                command, shell=isinstance(command, str), capture_output=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise ActivityFailed(f"process {spec['path']} did not end within {timeout:g} s") from None
        except OSError as exc:
            raise ActivityFailed(f"process {spec['path']} could not start: {exc}") from None
        return {
            "status": done.returncode,
            "stdout": done.stdout.decode("utf-8", "replace"),
            "stderr": done.stderr.decode("utf-8", "replace"),
        }

    def _python(self, spec: dict[str, Any]) -> Any:
        module, func = str(spec["module"]), str(spec["func"])
        arguments = dict(spec.get("arguments") or {})
        if module in toxiproxy.MODULES:
            try:
                return self.bridge.call(module, func, arguments, self.configuration)
            except Exception as exc:
                raise ActivityFailed(f"{module}.{func}: {type(exc).__name__}: {exc}") from None
        try:
            function = getattr(importlib.import_module(module), func)
        except Exception as exc:
            raise ActivityFailed(f"cannot load {module}.{func}: {type(exc).__name__}: {exc}") from None
        parameters = inspect.signature(function).parameters
        if "configuration" in parameters:
            arguments["configuration"] = self.configuration
        if "secrets" in parameters:
            scopes = spec.get("secrets") or []
            arguments["secrets"] = {k: v for scope in scopes for k, v in (self.secrets.get(scope) or {}).items()}
        try:
            return function(**arguments)
        except Exception as exc:  # whatever the function raises fails the activity
            raise ActivityFailed(f"{module}.{func}: {type(exc).__name__}: {exc}") from None
