"""Python providers the runner tests name in their experiments (``module: tests.ctk.activities``)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

#: Set by `hold`, waited for by a test that interrupts a run in the middle of its method.
holding = threading.Event()


def exists(path: str) -> bool:
    return Path(path).exists()


def remove(path: str) -> None:
    Path(path).unlink(missing_ok=True)


def create(path: str) -> None:
    Path(path).touch()


def stamp(path: str, seconds: float = 0.0) -> float:
    """Append when it started to ``path``, then take ``seconds``."""
    started = time.monotonic()
    with open(path, "a") as out:
        out.write(f"{started}\n")
    time.sleep(seconds)
    return started


def hold(seconds: float) -> None:
    holding.set()
    time.sleep(seconds)


def echo(value: Any, secrets: dict[str, Any] | None = None) -> Any:
    return {"value": value, "secrets": secrets}


def fail() -> None:
    raise RuntimeError("this action always fails")


def has_status(value: Any, status: int) -> bool:
    """A tolerance probe: whether the probe's output (``value``) has ``status``."""
    return isinstance(value, dict) and value.get("status") == status
