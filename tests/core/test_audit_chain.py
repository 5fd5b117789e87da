"""The hash-chained audit trail: append, verify, and every edit, deletion or re-ordering named."""

from __future__ import annotations

import sqlite3

import pytest

from ketmonitor.audit import (GENESIS, AuditChainError, append_audit, audit_head, audit_row_hash,
                              find_audit, verify_chain)
from ketmonitor.errors import VerificationError
from ketmonitor.store import open_db


@pytest.fixture
def db(tmp_path):
    db = open_db(tmp_path / "audit.db")
    db.conn.execute("BEGIN IMMEDIATE")
    for i in range(1, 6):
        append_audit(db, "login" if i % 2 else "entry.created", user_id=f"u{i}", session_id="s1",
                     entity="doses", entity_id=str(i), detail={"n": i, "note": "ü"},
                     t_wall=1_767_225_600.0 + i)
    db.conn.execute("COMMIT")
    yield db
    db.conn.close()


def test_each_row_links_to_the_previous(db):
    rows = db.conn.execute("SELECT seq, prev_hash, hash FROM audit_log ORDER BY seq").fetchall()
    assert rows[0][1] == GENESIS
    assert all(rows[i][1] == rows[i - 1][2] for i in range(1, len(rows)))
    report = verify_chain(db)
    assert (report.rows, report.head) == (5, rows[-1][2]) == audit_head(db)
    assert audit_row_hash(db, 3) == rows[2][2] and audit_row_hash(db, 0) == GENESIS
    assert audit_row_hash(db, 99) is None
    assert [seq for seq, _d in find_audit(db, "login")] == [1, 3, 5]
    assert find_audit(db, "entry.created", entity_id="4") == [(4, {"n": 4, "note": "ü"})]


def test_an_empty_trail_verifies(tmp_path):
    db = open_db(tmp_path / "empty.db")
    assert verify_chain(db).rows == 0 and audit_head(db) == (0, GENESIS)
    db.conn.close()


@pytest.mark.parametrize("sql", ["UPDATE audit_log SET user_id = 'x' WHERE seq = 2",
                                 "DELETE FROM audit_log WHERE seq = 5",
                                 "DELETE FROM audit_log"])
def test_triggers_refuse_update_and_delete(db, sql):
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.conn.execute(sql)
    assert verify_chain(db).rows == 5


@pytest.mark.parametrize("column, value", [("user_id", "mallory"), ("action", "nothing"),
                                           ("detail", '{"n":99,"note":"ü"}'),
                                           ("t_utc", "2026-01-01T00:00:09.000Z"),
                                           ("entity_id", "7")])
def test_an_edited_row_is_named(db, column, value):
    db.conn.execute("DROP TRIGGER audit_log_no_update")
    db.conn.execute(f"UPDATE audit_log SET {column} = ? WHERE seq = 3", (value,))
    with pytest.raises(AuditChainError) as err:
        verify_chain(db)
    assert err.value.seq == 3 and "audit row 3" in str(err.value)
    assert isinstance(err.value, VerificationError)


def test_a_deleted_row_is_named(db):
    db.conn.execute("DROP TRIGGER audit_log_no_delete")
    db.conn.execute("DELETE FROM audit_log WHERE seq = 2")
    with pytest.raises(AuditChainError, match="audit row 2 is missing") as err:
        verify_chain(db)
    assert err.value.seq == 2


def test_a_rehashed_row_breaks_the_next_link(db):
    """Editing a row and fixing its own hash still breaks the link the next row holds."""
    from ketmonitor.audit import _entry_hash, _fields

    db.conn.execute("DROP TRIGGER audit_log_no_update")
    seq, t_utc, user_id, action, session_id, entity, entity_id, prev = db.conn.execute(
        "SELECT seq, t_utc, user_id, action, session_id, entity, entity_id, prev_hash"
        " FROM audit_log WHERE seq = 2").fetchone()
    new = _entry_hash(_fields(seq, t_utc, "mallory", action, session_id, entity, entity_id,
                              {"n": 2, "note": "ü"}, prev))
    db.conn.execute("UPDATE audit_log SET user_id = 'mallory', hash = ? WHERE seq = 2", (new,))
    with pytest.raises(AuditChainError, match="audit row 3: previous-hash link broken"):
        verify_chain(db)


def test_garbage_detail_is_named(db):
    db.conn.execute("DROP TRIGGER audit_log_no_update")
    db.conn.execute("UPDATE audit_log SET detail = '{not json' WHERE seq = 4")
    with pytest.raises(AuditChainError, match="audit row 4: detail is not valid JSON"):
        verify_chain(db)


def test_detail_is_stored_json_safe(db):
    import datetime

    db.conn.execute("BEGIN IMMEDIATE")
    append_audit(db, "odd", detail={"when": datetime.date(2026, 1, 2)})
    db.conn.execute("COMMIT")
    assert find_audit(db, "odd") == [(6, {"when": "2026-01-02"})]
    assert verify_chain(db).rows == 6
