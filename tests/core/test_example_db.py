"""sessions.db.example (made by ``make example-db`` through ketmonitor/example_db.py): it opens, no
migration is pending, every signed record, waveform digest and audit row in it verifies, each of the
five kinds of session is there, and the example users log in with the passwords the docs state."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from ketmonitor.example_db import EXAMPLE_USERS, KINDS, SESSIONS
from ketmonitor.signing import verify_db
from ketmonitor.store import open_db
from ketmonitor.store.database import pending_migrations

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "sessions.db.example"
DOC = ROOT / "docs" / "example-db.md"


@pytest.fixture(scope="module")
def db():
    assert EXAMPLE.is_file(), "sessions.db.example is missing: run 'make example-db'"
    d = open_db(EXAMPLE, readonly=True)
    yield d
    d.conn.close()


def one(db, sql, *params):
    return db.conn.execute(sql, params).fetchone()[0]


def sessions_where(db, sql, *params) -> set[str]:
    return {r[0] for r in db.conn.execute(sql, params)}


def test_it_is_one_self_contained_file_with_no_pending_migration(db):
    assert one(db, "PRAGMA journal_mode") == "delete"  # no -wal file needed beside it
    assert one(db, "PRAGMA integrity_check") == "ok"
    assert pending_migrations(db) == [], "regenerate it: make example-db"


def test_every_record_signature_digest_and_audit_row_verifies(db):
    report = verify_db(db)  # raises VerificationError naming what fails
    text = report.describe()
    assert text.count(": verified") == len(SESSIONS) + 1  # five originals and one addendum
    assert "audit chain:" in text and "FAILED" not in text


def test_every_session_is_ended_signed_and_walked_through_its_protocol(db):
    rows = db.conn.execute("SELECT id, status, protocol, patient_id FROM sessions").fetchall()
    assert len(rows) == len(SESSIONS)
    for sid, status, protocol, patient in rows:
        assert status in ("signed", "cosigned"), sid
        assert protocol and patient
        assert one(db, "SELECT count(*) FROM session_records WHERE session_id = ? AND kind ="
                   " 'original'", sid) == 1
        assert one(db, "SELECT count(*) FROM discharges WHERE session_id = ?", sid) == 1
        assert one(db, "SELECT count(*) FROM doses WHERE session_id = ?", sid) >= 1
        assert one(db, "SELECT count(*) FROM numerics WHERE session_id = ? AND metric = 'spo2'",
                   sid) > 50 * 60  # an hour or more of 1 Hz SpO2
        assert one(db, "SELECT count(*) FROM waveform_chunks WHERE session_id = ?", sid) > 0


def test_it_has_each_of_the_five_kinds_of_session(db):
    assert KINDS == ("uneventful-iv", "hypertensive-surge", "desaturation", "cosigned", "addendum")
    uneventful_iv = sessions_where(
        db, "SELECT s.id FROM sessions s WHERE s.protocol = 'iv-infusion' AND s.scenario ="
            " 'uneventful' AND EXISTS (SELECT 1 FROM doses d WHERE d.session_id = s.id AND d.route"
            " = 'iv') AND NOT EXISTS (SELECT 1 FROM alarm_log a WHERE a.session_id = s.id AND"
            " (a.priority = 'high' OR a.condition LIKE 'spo2%'))")
    surge = sessions_where(
        db, "SELECT s.id FROM sessions s JOIN alarm_log a ON a.session_id = s.id WHERE s.protocol"
            " = 'esketamine-intranasal' AND s.scenario = 'hypertensive-surge' AND a.condition LIKE"
            " 'nibp_systolic%high%'")
    surge_peak = max(one(db, "SELECT max(value) FROM numerics WHERE session_id = ? AND metric ="
                         " 'nibp_systolic'", sid) for sid in surge) if surge else 0
    desat = sessions_where(  # SpO2 alarms acknowledged by the nurse on the alarm engine
        db, "SELECT s.id FROM sessions s JOIN alarm_log a ON a.session_id = s.id JOIN alarm_actions"
            " x ON x.alarm_id = a.alarm_id AND x.session_id = s.id WHERE s.scenario = 'desaturation'"
            " AND a.condition LIKE 'spo2%' AND x.action = 'acknowledged' AND x.role = 'nurse'")
    cosigned = sessions_where(
        db, "SELECT r.session_id FROM session_records r JOIN record_signatures g ON g.record_id ="
            " r.record_id JOIN signing_keys k ON k.kid = g.kid WHERE r.kind = 'original' AND g.idx"
            " > 0 AND k.role = 'physician'")
    addendum = sessions_where(
        db, "SELECT r.session_id FROM session_records r JOIN record_signatures g ON g.record_id ="
            " r.record_id JOIN signing_keys k ON k.kid = g.kid WHERE r.kind = 'addendum' AND"
            " k.role = 'physician'")
    assert len(uneventful_iv) == 1
    assert len(surge) == 1 and surge_peak >= 165
    assert len(desat) == 1
    assert one(db, "SELECT min(value) FROM numerics WHERE metric = 'spo2' AND session_id = ?",
               next(iter(desat))) < 88
    assert len(cosigned) == 1 and len(addendum) == 1
    assert len(uneventful_iv | surge | desat | cosigned | addendum) == 5


def test_the_example_users_are_the_documented_ones(db):
    users = {r[0]: (r[1], r[2]) for r in db.conn.execute(
        "SELECT id, role, active FROM users")}
    assert users == {u.id: (u.role, 1) for u in EXAMPLE_USERS}
    assert {u.role for u in EXAMPLE_USERS} == {"nurse", "physician", "auditor", "admin"}
    text = DOC.read_text()
    for u in EXAMPLE_USERS:
        assert re.search(rf"`{re.escape(u.id)}`.*`{re.escape(u.password)}`", text), \
            f"docs/example-db.md does not state the password of {u.id}"


def test_every_documented_password_logs_in(tmp_path):
    from ketmonitor.users import Authenticator, InlineRunner

    copy = tmp_path / "example.db"
    shutil.copy(EXAMPLE, copy)  # a login writes audit rows: never into the committed file
    d = open_db(copy)
    try:
        auth = Authenticator(InlineRunner(d))
        for u in EXAMPLE_USERS:
            user = auth.login(u.id, u.password)  # raises on a wrong or expired password
            assert (user.id, user.role) == (u.id, u.role)
        assert auth.policy().max_age_days == 0
        assert verify_db(d).describe()  # logging in touched no signed data
    finally:
        d.conn.close()


@pytest.mark.slow
def test_the_generator_builds_a_verified_database_through_the_pipeline(tmp_path):
    """The generator itself (what 'make example-db' runs), on one short session that exercises
    every path: alarms acknowledged, sealed, co-signed and amended by an addendum."""
    from ketmonitor.example_db import ExampleSession, build

    spec = ExampleSession("all", "every path at once", "im-injection", "desaturation", seed=13,
                          day=1, acknowledge_alarms=True, cosign="review",
                          addendum="checked the next day", notes=("a note from the generator",))
    out = tmp_path / "example.db"
    lines = []
    built = build(out, speed=1200.0, sessions=(spec,), log=lines.append)
    assert [b.spec.kind for b in built] == ["all"] and built[0].alarms_acknowledged >= 1
    assert lines[-1].startswith(f"wrote {out}")
    assert not list(tmp_path.glob("*.tmp")) and not (tmp_path / "example.db-wal").exists()
    d = open_db(out, readonly=True)
    try:
        assert pending_migrations(d) == []
        assert verify_db(d).describe().count(": verified") == 2
        sid = built[0].session_id
        assert one(d, "SELECT status FROM sessions WHERE id = ?", sid) == "cosigned"
        assert one(d, "SELECT count(*) FROM alarm_actions WHERE session_id = ? AND action ="
                   " 'acknowledged' AND user_id = 'nurse'", sid) >= 1
        assert one(d, "SELECT count(*) FROM events WHERE session_id = ? AND kind = 'note'"
                   " AND data LIKE '%a note from the generator%'", sid) == 1
    finally:
        d.conn.close()


def test_the_generator_refuses_a_missing_folder(tmp_path):
    from ketmonitor.errors import ConfigError
    from ketmonitor.example_db import build

    with pytest.raises(ConfigError, match="does not exist"):
        build(tmp_path / "no" / "example.db")


def test_max_minutes_cuts_sessions_through_the_early_discharge_path(tmp_path):
    from ketmonitor.example_db import SESSIONS as ALL, build

    iv = next(s for s in ALL if s.protocol == "iv-infusion")  # cut while the infusion runs
    out = tmp_path / "short.db"
    built = build(out, speed=1200.0, sessions=(iv,), max_minutes=15, log=lambda _line: None)
    d = open_db(out, readonly=True)
    try:
        sid = built[0].session_id
        assert verify_db(d).describe().count(": verified") == 1
        assert one(d, "SELECT status FROM sessions WHERE id = ?", sid) == "signed"
        assert one(d, "SELECT max(t_mono) FROM numerics WHERE session_id = ? AND metric = 'spo2'",
                   sid) <= 16 * 60
        assert one(d, "SELECT count(*) FROM doses WHERE session_id = ? AND action ="
                   " 'infusion_stop'", sid) == 1
        skipped = one(d, "SELECT count(*) FROM check_results WHERE session_id = ? AND status ="
                      " 'skipped' AND reason LIKE 'Example database: session shortened%'", sid)
        assert skipped >= 1
        assert one(d, "SELECT count(*) FROM discharges WHERE session_id = ?", sid) == 1
    finally:
        d.conn.close()
    from ketmonitor.errors import ConfigError

    with pytest.raises(ConfigError, match="at least 10 minutes after the dose"):
        build(tmp_path / "x.db", sessions=(iv,), max_minutes=5)
