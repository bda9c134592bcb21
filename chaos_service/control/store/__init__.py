"""The control plane's store: SQLite by default, Postgres (asyncpg) for several replicas.

`open_store(url)` applies the versioned migrations and returns a `Store`.
"""

from chaos_service.control.store.database import Store, open_store
from chaos_service.control.store.urls import store_url

__all__ = ["Store", "open_store", "store_url"]
