"""The fast RFC 8785 writer (ketmonitor/signing/canonical.py) against the reference, the ``rfc8785``
package: the same bytes, or the same error, for arbitrary JSON values, for the escaping and number
edge cases where the standard library and RFC 8785 part ways, for columnar tables, for records of
real sessions (including values only the reference can write), and for every record signed in
sessions.db.example."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rfc8785
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ketmonitor.signing import record_bytes, seal_session, verify_db
from ketmonitor.signing.canonical import MAX_INT, canonical_json, canonical_rows, is_canonical
from ketmonitor.signing.jws import b64url_decode, strict_json
from ketmonitor.signing.record import build_session_record, json_value
from ketmonitor.signing.scope import session_tables
from ketmonitor.store import open_db
from tests.core.test_signing_support import NURSE_PW, enrol_staff, make_session, world  # noqa: F401

EXAMPLE = Path(__file__).resolve().parents[2] / "sessions.db.example"

# Characters where JSON writers differ: the escapes RFC 8785 3.2.2.2 prescribes, DEL, the line and
# paragraph separators ECMAScript once escaped, lone surrogates (no UTF-8 form), the top of the BMP
# and beyond it (UTF-16 surrogate pairs sort below U+E000..U+FFFF), and the characters the column
# writer's float rewrite looks at (".0", "-0.0", "e", "n", separators).
SPECIAL = ['"', "\\", "/", "\b", "\t", "\n", "\f", "\r", "\x00", "\x01", "\x1f", "\x7f", "\x80",
           "\u2028", "\u2029", "\ud800", "\udfff", "\ue000", "\uffff", "\U00010000", "\U0001f600",
           ".", "0", ",", "]", "-", "e", "n", "é"]
chars = st.characters(exclude_categories=()) | st.sampled_from(SPECIAL)  # surrogates included
texts = st.text(chars, max_size=12)

EDGE_FLOATS = [0.0, -0.0, 98.0, -98.0, 0.1 + 0.2, 1 / 3, 2 / 3, 1e-4, 9.999999999999999e-05,
               1.0000000000000002e-4, 1e-5, 1e-6, 9.99e-7, 1e-7, 5e-324, 2.2250738585072014e-308,
               1e15, 1e16 - 2, 1e16, 9.999999999999999e20, 1e21, 1e22, 2.0**52, 2.0**52 + 0.5,
               2.0**53, 2.0**53 + 2, -(2.0**53), 1.7976931348623157e308, 123456789012345.67,
               1767225600.3333333, float("inf"), float("-inf"), float("nan")]
EDGE_INTS = [0, -1, MAX_INT, -MAX_INT, MAX_INT + 1, -MAX_INT - 1, 2**64, -(2**64)]
floats = (st.floats() | st.sampled_from(EDGE_FLOATS) | st.integers(-2**60, 2**60).map(float)
          | st.floats(min_value=1e-4, max_value=1e15) | st.floats(min_value=-1e-3, max_value=1e-3))
ints = st.integers() | st.integers(-MAX_INT - 3, MAX_INT + 3) | st.sampled_from(EDGE_INTS)
scalars = st.none() | st.booleans() | ints | floats | texts
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=5) | st.tuples(inner, inner)
    | st.dictionaries(texts, inner, max_size=5), max_leaves=25)


def outcome(fn, value):
    """What ``fn(value)`` gives: its bytes, or the type and text of what it raised."""
    try:
        return fn(value)
    except Exception as exc:  # noqa: BLE001 - the point is to compare errors too
        return type(exc), str(exc)


@settings(max_examples=1500, deadline=None)
@given(json_values)
@example({"\ue000": 1, "\U0001f600": 2, "a": [98.0, -0.0, 1e-7, 1e21, "x"]})
@example(["\u2028\u2029\x7f\x1f", "\ud800"])
@example({"\ud800": 1})
@example([1, 2**53, 3])
def test_any_json_value_gives_the_reference_bytes_or_its_error(value):
    assert outcome(canonical_json, value) == outcome(rfc8785.dumps, value)


@pytest.mark.parametrize("value", EDGE_FLOATS + EDGE_INTS + [[x] for x in EDGE_FLOATS]
                         + [{"k": x} for x in EDGE_INTS] + SPECIAL + [SPECIAL, "".join(SPECIAL)])
def test_edge_values_give_the_reference_bytes_or_its_error(value):
    assert outcome(canonical_json, value) == outcome(rfc8785.dumps, value)


def test_the_fast_paths_do_not_silently_defer_everything_to_the_reference(monkeypatch):
    """Values inside the fast subset never reach rfc8785.dumps (else the speed-up is gone)."""
    import ketmonitor.signing.canonical as canonical

    def refuse(value):
        raise AssertionError(f"reference called for {value!r}")

    monkeypatch.setattr(canonical.rfc8785, "dumps", refuse)
    plain = {"a": [1, -MAX_INT, 0.5, 1e-4, "\u2028\x00\"é\U0001f600"], "b": None, "c": True,
             "d": {"\uffff": [], "": {}}}
    assert canonical_json(plain) == json.dumps(plain, sort_keys=True, separators=(",", ":"),
                                               ensure_ascii=False).encode()
    rows = canonical_rows([("sim", 97.0, 1767225600.25, 3, None), ("s,.0]", -0.0, 0.5, -7, "x")])
    assert is_canonical(rows)
    assert canonical_json(rows) == b'[["sim",97,1767225600.25,3,null],["s,.0]",0,0.5,-7,"x"]]'


# -- columnar tables ------------------------------------------------------------------------------

plain_floats = (st.floats(min_value=1e-4, max_value=1e15) | st.floats(min_value=-1e15, max_value=-1e-4)
                | st.integers(-10**15, 10**15).map(float) | st.sampled_from([0.0, -0.0]))
# sqlite3 never returns lone surrogates (TEXT is UTF-8); tables_with_odd_values still try them
db_texts = st.text(st.characters(exclude_categories=("Cs",))
                   | st.sampled_from([c for c in SPECIAL if c not in "\ud800\udfff"]), max_size=12)
COLUMN_KINDS = {
    "text": db_texts, "float": plain_floats, "int": st.integers(-MAX_INT, MAX_INT), "null": st.none(),
    "float|null": plain_floats | st.none(), "text|null": db_texts | st.none(),
    "int|float": st.integers(-MAX_INT, MAX_INT) | plain_floats,
    "any": st.none() | db_texts | plain_floats | st.integers(-MAX_INT, MAX_INT),
}
ODD = st.sampled_from([b"\x00blob", True, float("inf"), float("nan"), 1e-7, 1e16, 2.0**60,
                       MAX_INT + 1, -(2**70), [1], {"a": 1}, "\ud800"])


@st.composite
def tables(draw, odd: bool):
    kinds = draw(st.lists(st.sampled_from(sorted(COLUMN_KINDS)), max_size=6))
    n = draw(st.integers(0, 12))
    rows = [[draw(COLUMN_KINDS[k]) for k in kinds] for _ in range(n)]
    if odd and rows and kinds:
        for _ in range(draw(st.integers(1, 3))):
            rows[draw(st.integers(0, n - 1))][draw(st.integers(0, len(kinds) - 1))] = draw(ODD)
    return [tuple(r) for r in rows]


@settings(max_examples=800, deadline=None)
@given(tables(odd=False))
def test_tables_of_plain_columns_are_written_once_and_exactly(rows):
    marked = canonical_rows(rows)
    assert is_canonical(marked), rows
    assert canonical_json(marked) == rfc8785.dumps(rows)


@settings(max_examples=800, deadline=None)
@given(tables(odd=True))
def test_tables_with_odd_values_give_the_reference_bytes_or_its_error(rows):
    assert outcome(canonical_json, canonical_rows(rows)) == outcome(rfc8785.dumps, rows)


def test_long_tables_are_written_in_chunks_without_losing_a_row():
    rows = [(i, f"t{i}", i / 4, None if i % 7 else 1.0) for i in range(20_000)]
    marked = canonical_rows(rows)
    assert is_canonical(marked) and canonical_json(marked) == rfc8785.dumps(rows)


# -- records of real sessions ---------------------------------------------------------------------

def test_a_sealed_record_and_its_file_are_the_reference_bytes(world):
    record = build_session_record(world.db, "s1", record_id="r", created_utc="t")
    assert is_canonical(record["tables"]["numerics"]["rows"])
    assert is_canonical(record["tables"]["waveform_chunks"]["rows"])
    assert canonical_json(record) == rfc8785.dumps(record)
    data = record_bytes(world.db, world.record_id)
    assert rfc8785.dumps(json.loads(data)) == data
    doc = json.loads(data)
    payload = b64url_decode(doc["payload"])
    assert rfc8785.dumps(json.loads(payload)) == payload


def _old_style_record(db, session_id, record):
    """The record as the builder made it before the fast writer: json_value on every value."""
    conn = db.conn
    old = dict(record, tables={})
    for scope in session_tables(conn):
        sql, order = scope.select_sql()
        old["tables"][scope.name] = {
            "columns": list(scope.columns),
            "rows": [[json_value(v) for v in row]
                     for row in conn.execute(f"{sql} ORDER BY {order}", (session_id,))]}
    return old


def test_values_only_the_reference_can_write_keep_their_meaning_and_bytes(tmp_path):
    """BLOBs, infinities, huge and tiny numbers, -0.0, and text that looks like numbers, in real
    session tables: the record has the same values and the same bytes as the per-value builder
    made, the sealed record verifies, and verify_db compares every row."""
    db = open_db(tmp_path / "odd.db")
    enrol_staff(db)
    make_session(db, "s1", seconds=3)
    conn = db.conn
    odd = [b"\x01\x02", float("inf"), float("-inf"), 1e-7, 3e-5, 1e17, 2.0**60, -0.0, 0.0,
           "1.0,", "-0.0]", "1e-7", "nan", 10**18, -(10**18), MAX_INT, 98.0]
    for i, value in enumerate(odd):
        conn.execute("INSERT INTO numerics (session_id, source, metric, t_mono, t_wall, t_utc, value,"
                     " unit, flags, device_time, detail) VALUES ('s1', 'odd', ?, ?, ?, ?, ?, '', '',"
                     " ?, ?)", (f"m{i:02d}", 100.0 + i, 1767225700.5 + i, f"t{i}", value,
                                value if isinstance(value, (str, bytes)) else None, value))
    conn.execute("INSERT INTO events (session_id, kind, t_mono, t_wall, t_utc, user_id, data)"
                 " VALUES ('s1', 'note', 1e-6, 1e-300, '1.0,2.0]', 'nurse1', ?)", (b"\xff\x00",))
    record = build_session_record(db, "s1", record_id="r", created_utc="t")
    old = _old_style_record(db, "s1", record)
    assert canonical_json(record) == rfc8785.dumps(old)
    assert {n: [list(r) for r in t["rows"]] for n, t in record["tables"].items()} == \
        {n: t["rows"] for n, t in old["tables"].items()}
    # 2**60 is written 1152921504606847000 (RFC 8785: shortest digits) and read back as an int:
    # verify_db must still take it for the stored float
    seal_session(db, "s1", "nurse1", NURSE_PW)
    report = verify_db(db, "s1")
    signed = report.records[0].record
    assert report.rows == sum(len(t["rows"]) for t in signed["tables"].values())
    numerics = signed["tables"]["numerics"]
    i_source = numerics["columns"].index("source")
    assert sum(r[i_source] == "odd" for r in numerics["rows"]) == len(odd)


def test_table_rows_for_verification_keep_the_databases_own_values(world):
    """verify_db compares rows as stored: floats stay floats (its messages show 99.0), BLOBs as
    their digests; only the record's text writes integral floats as integers."""
    from ketmonitor.signing.rows import table_rows

    scope = {s.name: s for s in session_tables(world.db.conn)}["numerics"]
    rows = table_rows(world.db.conn, scope, "s1")
    i_val = scope.columns.index("value")
    assert 97.0 in [r[i_val] for r in rows] and all(
        type(r[i_val]) in (float, type(None)) for r in rows)


@pytest.mark.skipif(not EXAMPLE.is_file(), reason="sessions.db.example is missing")
def test_every_record_signed_in_the_example_database_is_reproduced(tmp_path):
    """The payloads signed with the rfc8785 package: parsed and written again they are the same
    bytes, and each original record's tables, rebuilt from the (sealed) database rows, are too."""
    db = open_db(EXAMPLE, readonly=True)
    try:
        rows = db.conn.execute("SELECT record_id, session_id, kind, payload FROM session_records"
                               " ORDER BY created_utc").fetchall()
        assert rows
        for record_id, session_id, kind, payload in rows:
            payload = bytes(payload)
            signed = strict_json(payload)
            assert canonical_json(signed) == payload, record_id
            if kind != "original":
                continue
            rebuilt = build_session_record(db, session_id, record_id=record_id,
                                           created_utc=signed["created_utc"],
                                           protocol=signed["protocol"]["definition"])
            for name, table in signed["tables"].items():
                mine = rebuilt["tables"][name]
                assert mine["columns"] == table["columns"], (record_id, name)
                assert canonical_json(mine) == rfc8785.dumps(table), (record_id, name)
    finally:
        db.conn.close()
