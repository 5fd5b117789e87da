"""The rows of one session table in record order: as ``verify_db`` compares them (``table_rows``) and
as the record holds them (``record_rows``, fast: a 2-hour session has half a million values).

Values are JSON-safe (``json_value``): BLOBs become ``"sha256:<hex>"``, non-finite floats and
integers beyond 2**53 become strings (RFC 8785 cannot carry them as numbers). Rows come straight
from sqlite3 when a column-wise check finds no such value, which is the usual case.
"""

from __future__ import annotations

import hashlib
import math
import sqlite3
from itertools import repeat

from .canonical import MAX_INT, canonical_rows, is_canonical, json_floats
from .scope import TableScope, _q, table_columns

_PLAIN = frozenset({str, type(None), int, float})
_MIN_ROWS = 1024  # smaller tables are read plainly
_SAMPLE = 32  # rows looked at, three times, to guess which columns hold one value throughout


def json_value(v):
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return v if -MAX_INT <= v <= MAX_INT else str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return v
    if isinstance(v, (bytes, memoryview)):
        return "sha256:" + hashlib.sha256(bytes(v)).hexdigest()
    return str(v)


def table_rows(conn: sqlite3.Connection, scope: TableScope, session_id: str) -> list[tuple]:
    """The rows as stored (through ``json_value``), ordered by their columns, as tuples."""
    rows = _select(conn, scope, session_id)
    return rows if _json_safe(rows) else [tuple(map(json_value, row)) for row in rows]


def record_rows(conn: sqlite3.Connection, scope: TableScope, session_id: str):
    """The same rows, with their RFC 8785 text when ``canonical_rows`` can write it (see
    canonical.py): the same bytes the reference writes, written once and fast."""
    rows = _select_constants_once(conn, scope, session_id)
    marked = canonical_rows(rows)
    if is_canonical(marked):  # then every value is a str, None, an int within 2**53 or a finite
        return marked  # float: json_value would leave them all as they are
    return canonical_rows([tuple(map(json_value, row)) for row in rows])


def _select(conn: sqlite3.Connection, scope: TableScope, session_id: str) -> list[tuple]:
    sql, order = scope.select_sql()
    return conn.execute(f"{sql} ORDER BY {order}", (session_id,)).fetchall()


def _json_safe(rows: list[tuple]) -> bool:
    """True when ``json_value`` would return every value of ``rows`` unchanged: no BLOB, no
    non-finite float, no integer beyond 2**53. Checked per column with C-level iteration."""
    for column in zip(*rows):
        kinds = set(map(type, column))
        if not kinds <= _PLAIN or json_floats(column, kinds) is None:
            return False
    return True


def _select_constants_once(conn: sqlite3.Connection, scope: TableScope, session_id: str):
    """What ``_select`` returns; but a column holding one and the same value in every row of the
    session (a single device's source name, a fixed sample rate, empty flags, NULLs) is read once,
    not once per row: sqlite3 spends about as long handing Python one value as the C JSON encoder
    spends writing it, and such columns can be half the values of a 2-hour record.

    Rows from the start, the middle and the end of the session suggest such columns; the query
    then reads the other columns and, per row, whether any suggested column differs from its value
    (a BINARY comparison, in a column whose affinity stores equal numbers in one storage class, so
    98 and 98.0 cannot both occur). If one does, the table is read plainly instead. The value is
    the database's own. Leaving those columns out of ORDER BY keeps the order: they compare equal
    in every row. Its queries need one snapshot: only inside a transaction.
    """
    cols = scope.columns
    source = scope.from_where()
    if not conn.in_transaction or not cols:
        return _select(conn, scope, session_id)
    (n,) = conn.execute(f"SELECT count(*) {source}", (session_id,)).fetchone()
    if n < _MIN_ROWS:
        return _select(conn, scope, session_id)
    names = ", ".join(map(_q, cols))
    try:
        sample = [row for offset in (0, n // 2, n - _SAMPLE) for row in conn.execute(
            f"SELECT {names} FROM {_q(scope.name)} WHERE rowid IN"
            f" (SELECT rowid {source} LIMIT {_SAMPLE} OFFSET {offset})", (session_id,))]
    except sqlite3.OperationalError:  # a WITHOUT ROWID table
        return _select(conn, scope, session_id)
    typed = {c for c, declared, _pk in table_columns(conn, scope.name)
             if _affinity(declared) != "BLOB"}
    const = {i: values[0] for i, values in enumerate(zip(*sample))
             if cols[i] in typed and cols[i] != scope.pk and len({(type(v), v) for v in values}) == 1}
    vary = [i for i in range(len(cols)) if i not in const]
    if not const or not vary:
        return _select(conn, scope, session_id)
    differs = " OR ".join(f"({_q(cols[i])} COLLATE BINARY) IS NOT ?" for i in const)
    order = ", ".join(_q(c) for c in ((scope.pk,) if scope.pk else ()) + tuple(cols[i] for i in vary))
    fetched = conn.execute(f"SELECT {', '.join(_q(cols[i]) for i in vary)}, ({differs}) {source}"
                           f" ORDER BY {order}", (*const.values(), session_id)).fetchall()
    *columns, differing = zip(*fetched)
    if any(differing) or len(fetched) != n:  # a suggestion was wrong (n: one snapshot, always)
        return _select(conn, scope, session_id)
    columns = iter(columns)
    return list(zip(*[repeat(const[i], n) if i in const else next(columns)
                      for i in range(len(cols))]))


def _affinity(declared: str) -> str:
    """SQLite's column affinity of a declared type (https://sqlite.org/datatype3.html, 3.1)."""
    t = declared.upper()
    if "INT" in t:
        return "INTEGER"
    if "CHAR" in t or "CLOB" in t or "TEXT" in t:
        return "TEXT"
    if "BLOB" in t or not t:
        return "BLOB"
    if "REAL" in t or "FLOA" in t or "DOUB" in t:
        return "REAL"
    return "NUMERIC"
