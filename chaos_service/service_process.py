"""Start chaos-service servers (the engine, the LLM stub) as child processes.

The engine always runs in a process of its own, so proxied traffic never shares an
event loop with the probes or the control plane that drive it. Each server prints one
line when it accepts connections, ``chaos-service <command>: … on http://HOST:PORT …``;
the launcher waits for that line and takes the URL from it.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

from chaos_service.errors import ChaosServiceError

START_TIMEOUT = 20.0


class ServiceStartFailed(ChaosServiceError):
    """The server process exited or stayed silent instead of reporting its address."""


class ServiceProcess:
    """``chaos-service COMMAND`` in a child process, by default on a free port."""

    command = ""

    def __init__(
        self,
        *args: str,
        port: int = 0,
        cwd: Path | None = None,
        log_level: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.args = ["--port", str(port), *args]
        self.cwd = cwd
        self.log_level = log_level
        self.extra_env = dict(env or {})
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.ready_line = ""

    def start(self, timeout: float = START_TIMEOUT) -> Self:
        """Start and wait for the ready line; raises `ServiceStartFailed` with its stderr."""
        env = {**os.environ, **self.extra_env, "PYTHONUNBUFFERED": "1"}
        if self.log_level:
            env["LOG_LEVEL"] = self.log_level
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chaos_service", self.command, *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=self.cwd,
        )
        line = self._first_line(timeout)
        urls = [word for word in line.split() if word.startswith("http://")]
        if not line.startswith(f"chaos-service {self.command}:") or not urls:
            self.stop()
            raise ServiceStartFailed(f"{self.command} did not start: {line.strip() or 'no output'}")
        self.ready_line = line
        self.url = urls[0]
        return self

    def _first_line(self, timeout: float) -> str:
        assert self.proc is not None and self.proc.stdout is not None and self.proc.stderr is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                return f"no output within {timeout:g} s"
        line = self.proc.stdout.readline()
        if line:
            return line.strip()
        self.proc.wait(timeout=5)
        return self.proc.stderr.read()

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"the {self.command} was not started"
        return self.proc.pid

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait (SIGKILL after ``timeout``); returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return self.proc.returncode

    def __enter__(self) -> Self:
        return self.start() if self.proc is None else self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
