"""What a user may give as the store's location, as an SQLAlchemy async URL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from chaos_service.errors import InvalidInput

_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg"}


def store_url(location: str | Path) -> URL:
    """A file path (SQLite), ``sqlite:///path`` or ``postgresql://user@host/db`` as an async URL.

    Raises:
        InvalidInput: any other scheme, or a URL that does not parse.
    """
    text = str(location)
    if "://" not in text:
        return URL.create("sqlite+aiosqlite", database=str(Path(text).expanduser()))
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):
        raise InvalidInput(f"the store URL does not parse: {text!r}") from None
    backend = url.get_backend_name()
    if backend not in _DRIVERS:
        raise InvalidInput(f"the store must be SQLite or Postgres (sqlite:///file, postgresql://…), not {backend!r}")
    if backend == "sqlite" and not url.database:
        raise InvalidInput("an SQLite store needs a file: sqlite:///path/to/chaos.db")
    return url.set(drivername=_DRIVERS[backend])
