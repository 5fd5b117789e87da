"""A write transaction that nests: a savepoint inside a caller's transaction (e.g. a StoreWriter
call), otherwise BEGIN IMMEDIATE ... COMMIT so the audit chain stays linear."""

from __future__ import annotations

import itertools
from contextlib import contextmanager

_names = itertools.count(1)


@contextmanager
def write_transaction(db):
    conn = db.conn
    if conn.in_transaction:
        name = f"ketmonitor_signing_{next(_names)}"
        conn.execute(f"SAVEPOINT {name}")
        try:
            yield conn
        except BaseException:
            conn.execute(f"ROLLBACK TO {name}")
            conn.execute(f"RELEASE {name}")
            raise
        conn.execute(f"RELEASE {name}")
    else:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
