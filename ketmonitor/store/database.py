"""Opening the session database: pragmas, migrations, clear errors for bad paths."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import sqlite_utils

from ..errors import StoreError
from .schema import load_migrations

BUSY_TIMEOUT_MS = 10_000


def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
    if readonly:
        if not path.exists():
            raise StoreError(f"no database at {path}")
        uri = f"file:{path}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
    else:
        parent = path.parent
        if not parent.exists():
            raise StoreError(f"cannot create database {path}: folder {parent} does not exist")
        if path.exists() and not os.access(path, os.W_OK):
            raise StoreError(f"database {path} is not writable")
        if not path.exists() and not os.access(parent, os.W_OK):
            raise StoreError(f"cannot create database {path}: folder {parent} is not writable")
        conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def open_db(path: str | os.PathLike, *, readonly: bool = False, migrate: bool = True
            ) -> sqlite_utils.Database:
    """Open (and, unless read-only, create and migrate) the database at ``path``.

    Writers use WAL with synchronous=NORMAL: a committed transaction survives a killed process;
    readers never block the writer.
    """
    path = Path(path)
    try:
        conn = _connect(path, readonly)
        if not readonly:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        db = sqlite_utils.Database(conn)
        if migrate and not readonly:
            load_migrations().apply(db)
        return db
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot open database {path}: {exc}") from exc


def pending_migrations(db: sqlite_utils.Database) -> list[str]:
    return [m.name for m in load_migrations().pending(db)]
