"""What the demo's parts share: applying toxics for the length of a scenario."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx


@contextmanager
def toxics_applied(api: httpx.Client, proxy: str, toxics: list[dict[str, Any]]) -> Iterator[None]:
    """Add ``toxics`` to ``proxy`` for the block, and remove them after it, whatever happens."""
    names = []
    try:
        for toxic in toxics:
            response = api.post(f"/proxies/{proxy}/toxics", json=toxic)
            response.raise_for_status()
            names.append(response.json()["name"])
        yield
    finally:
        for name in names:
            api.delete(f"/proxies/{proxy}/toxics/{name}")
