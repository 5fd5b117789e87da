"""Transactions of the signing code.

``write_transaction``: a write that nests: a savepoint inside a caller's transaction (e.g. a
StoreWriter call), otherwise BEGIN IMMEDIATE ... COMMIT so the audit chain stays linear.

``read_snapshot``: one consistent read of many tables while the app may be writing (a record built,
a session compared with its record, a database verified, a session exported): the caller's
transaction when one is open, otherwise a read transaction of its own (WAL: it sees the database as
of its first read, whatever commits meanwhile).

``stored_bytes``: a stored record's payload as bytes, whatever a tampered database holds there.
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


def stored_bytes(value) -> bytes:
    """The bytes of a stored payload. It is a BLOB unless someone rewrote it: TEXT, a number or
    NULL is turned into bytes here, never raised on, so the digest and signature checks that follow
    report the damage (a payload that is not a BLOB: ``is_blob``) instead of a TypeError."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return ("" if value is None else str(value)).encode("utf-8", "surrogatepass")


def is_blob(value) -> bool:
    return isinstance(value, (bytes, bytearray, memoryview))
