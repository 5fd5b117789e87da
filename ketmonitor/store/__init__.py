"""The session store: SQLite in WAL mode through sqlite-utils, numbered migrations, one writer thread."""

from .database import open_db, pending_migrations
from .writer import StoreWriter

__all__ = ["open_db", "pending_migrations", "StoreWriter"]
