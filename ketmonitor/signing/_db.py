"""Transactions of the signing code.

``write_transaction``: a write that nests: a savepoint inside a caller's transaction (e.g. a
StoreWriter call), otherwise BEGIN IMMEDIATE ... COMMIT so the audit chain stays linear.

``read_snapshot``: one consistent read of many tables while the app may be writing (a record built,
a session compared with its record, a database verified, a session exported): the caller's
transaction when one is open, otherwise a read transaction of its own (WAL: it sees the database as
of its first read, whatever commits meanwhile).
"""

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


@contextmanager
def read_snapshot(conn):
    """Read in one snapshot (see the module docstring); ``conn`` is a sqlite3 connection."""
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        if conn.in_transaction:  # a read transaction: COMMIT only ends it
            conn.execute("COMMIT")
