"""rows.py: the record reads a column holding one value throughout once instead of per row; the
rows it returns are exactly the plain ordered read (values, types, order), whatever the columns
hold, wherever a differing value hides, and in every declared column type. Real SQLite files."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ketmonitor.signing.rows as rows_module
from ketmonitor.signing.rows import _affinity, _select, _select_constants_once, record_rows
from ketmonitor.signing.scope import TableScope

COLUMNS = {"a": "TEXT", "b": "REAL", "c": "INTEGER", "d": "NUMERIC", "e": "", "f": "TEXT COLLATE NOCASE", "g": "BLOB",
           "h": "VARCHAR(20)", "k": "DOUBLE PRECISION"}
VALUES = st.sampled_from([None, "", "sim", "A", "a", "98", "98.0", b"\x00\x01", b"", 0, 1, 98,
                          -5, 2**62, 0.0, -0.0, 98.0, 0.25, 1e-7, float("inf"), 1767225600.5])


def _typed(v):
    """A value with its type: 98 and 98.0 compare equal but are different records."""
    return (type(v).__name__, v)


def _snapshot(rows):
    return [tuple(map(_typed, r)) for r in rows]


@pytest.fixture
def conn(tmp_path):
    c = sqlite3.connect(tmp_path / "rows.db", isolation_level=None)
    cols = ", ".join(f"{name} {decl}" for name, decl in COLUMNS.items())
    c.execute(f"CREATE TABLE with_pk (id INTEGER PRIMARY KEY, session_id TEXT, {cols})")
    c.execute(f"CREATE TABLE no_pk (session_id TEXT, {cols})")
    c.execute("CREATE INDEX no_pk_session ON no_pk(session_id)")
    yield c
    c.close()


def _fill(conn, table, columns, n):
    names = list(COLUMNS)
    conn.execute("BEGIN")
    for i in range(n):
        row = [columns[name](i) for name in names]
        conn.execute(f"INSERT INTO {table} (session_id, {', '.join(names)})"
                     f" VALUES ('s', {', '.join('?' * len(names))})", row)
    conn.execute("INSERT INTO " + table + " (session_id, a) VALUES ('other', 'x')")  # not this one
    conn.execute("COMMIT")


@st.composite
def column_plans(draw):
    """Per column: one value throughout, or varying values; and perhaps one row that differs
    from the constant, anywhere (the sample of 3 x 32 rows usually misses it)."""
    n = draw(st.integers(40, 140))
    plans = {}
    for name in COLUMNS:
        kind = draw(st.sampled_from(["constant", "constant", "varying", "one differs"]))
        base = draw(VALUES)
        if kind == "varying":
            pool = draw(st.lists(VALUES, min_size=2, max_size=5))
            plans[name] = lambda i, pool=pool: pool[(i * 7) % len(pool)]
        elif kind == "one differs":
            at, other = draw(st.integers(0, n - 1)), draw(VALUES)
            plans[name] = lambda i, base=base, at=at, other=other: other if i == at else base
        else:
            plans[name] = lambda i, base=base: base
    return n, plans


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=column_plans(), table=st.sampled_from(["with_pk", "no_pk"]))
def test_constant_columns_read_once_give_exactly_the_plain_rows(conn, monkeypatch, plan, table):
    monkeypatch.setattr(rows_module, "_MIN_ROWS", 16)  # small tables: same code, faster examples
    monkeypatch.setattr(rows_module, "_SAMPLE", 4)
    conn.execute(f"DELETE FROM {table}")
    n, columns = plan
    _fill(conn, table, columns, n)
    scope = TableScope(table, ("id",) * (table == "with_pk") + tuple(COLUMNS),
                       "id" if table == "with_pk" else None)
    conn.execute("BEGIN")
    try:
        fast, plain = _select_constants_once(conn, scope, "s"), _select(conn, scope, "s")
    finally:
        conn.execute("COMMIT")
    assert _snapshot(fast) == _snapshot(plain)


def test_a_two_hour_sized_table_takes_the_fast_path_and_keeps_every_row(conn):
    n = 5000
    _fill(conn, "no_pk", {"a": lambda i: "sim", "b": lambda i: 1767225600.0 + i / 3, "f": lambda i: "x",
                          "c": lambda i: 25, "d": lambda i: i % 13, "e": lambda i: None,
                          "g": lambda i: None, "h": lambda i: f"t{i}", "k": lambda i: 75.0}, n)
    scope = TableScope("no_pk", tuple(COLUMNS), None)
    queries = []
    conn.set_trace_callback(queries.append)
    conn.execute("BEGIN")
    fast = _select_constants_once(conn, scope, "s")
    conn.execute("COMMIT")
    conn.set_trace_callback(None)
    conn.execute("BEGIN")
    plain = _select(conn, scope, "s")
    conn.execute("COMMIT")
    assert _snapshot(fast) == _snapshot(plain) and len(fast) == n
    main = [q for q in queries if "ORDER BY" in q]
    # a, c and k hold one value: read once; e and g (no affinity) are read per row anyway
    assert len(main) == 1 and main[0].startswith('SELECT "b", "d", "e", "g", "h", (')


def test_outside_a_transaction_the_table_is_read_plainly(conn):
    _fill(conn, "no_pk", {name: (lambda i: 1) for name in COLUMNS}, 2000)
    scope = TableScope("no_pk", tuple(COLUMNS), None)
    queries = []
    conn.set_trace_callback(queries.append)
    rows = _select_constants_once(conn, scope, "s")
    assert len(rows) == 2000 and len(queries) == 1  # no guessing across several snapshots


def test_record_rows_of_a_constant_heavy_table_are_the_reference_bytes(conn):
    import rfc8785

    from ketmonitor.signing.canonical import canonical_json, is_canonical
    from ketmonitor.signing.rows import json_value

    _fill(conn, "with_pk", {"a": lambda i: "sim", "b": lambda i: float(i), "c": lambda i: 25,
                            "d": lambda i: None, "e": lambda i: b"\x01" if i == 1500 else None,
                            "f": lambda i: "AaBb"[i % 4],
                            "g": lambda i: None, "h": lambda i: "", "k": lambda i: 75.0}, 3000)
    scope = TableScope("with_pk", ("id",) + tuple(COLUMNS), "id")
    conn.execute("BEGIN")
    rows = record_rows(conn, scope, "s")
    plain = _select(conn, scope, "s")
    conn.execute("COMMIT")
    assert is_canonical(rows)  # the BLOB became its digest, then the fast writer took it
    assert canonical_json(rows) == rfc8785.dumps([[json_value(v) for v in r] for r in plain])


@pytest.mark.parametrize("declared, affinity", [
    ("INTEGER", "INTEGER"), ("BIGINT", "INTEGER"), ("TEXT", "TEXT"), ("VARCHAR(20)", "TEXT"),
    ("CLOB", "TEXT"), ("BLOB", "BLOB"), ("", "BLOB"), ("REAL", "REAL"), ("DOUBLE", "REAL"),
    ("FLOAT", "REAL"), ("NUMERIC", "NUMERIC"), ("DECIMAL(10,5)", "NUMERIC"), ("BOOLEAN", "NUMERIC"),
    ("DATETIME", "NUMERIC"), ("CHARINT", "INTEGER")])
def test_affinity_follows_sqlites_rules(declared, affinity):
    assert _affinity(declared) == affinity


def test_a_value_differing_only_in_case_in_a_nocase_column_is_not_taken_for_a_constant(conn):
    """The comparison is binary: 'a' in a column of 'A's (COLLATE NOCASE) is its own value."""
    _fill(conn, "no_pk", {**{name: (lambda i: None) for name in COLUMNS},
                          "b": lambda i: float(i), "f": lambda i: "a" if i == 1234 else "A"}, 3000)
    scope = TableScope("no_pk", tuple(COLUMNS), None)
    conn.execute("BEGIN")
    fast, plain = _select_constants_once(conn, scope, "s"), _select(conn, scope, "s")
    conn.execute("COMMIT")
    i_f = scope.columns.index("f")
    assert [r[i_f] for r in fast].count("a") == 1
    assert _snapshot(fast) == _snapshot(plain)
