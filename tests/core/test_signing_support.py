"""Shared helpers for the signing tests (no tests here): a real SQLite session with samples written
by the store writer's own SQL, workflow rows, enrolled users and a sealed record."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import pytest

from ketmonitor.samples import Condition, DeviceStatus, Numeric, SessionEvent, WaveformChunk
from ketmonitor.sessions import create_session, end_session
from ketmonitor.signing import enrol_key, seal_session
from ketmonitor.store import open_db
from ketmonitor.store.writer import StoreWriter

# Cheap Argon2id parameters so the suite stays fast; one test uses the production defaults.
FAST_KDF = {"t": 1, "m": 1024, "p": 1}
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
NURSE_PW, DOCTOR_PW = "nurse-secret-1", "doctor-secret-2"


def write_samples(db, samples, session_id):
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    StoreWriter._write_samples(conn, [(session_id, s) for s in samples])
    conn.execute("COMMIT")


def make_session(db, session_id="s1", *, seconds=20, t0=T0, end=True) -> str:
    db.conn.execute("BEGIN IMMEDIATE")
    if db.conn.execute("SELECT 1 FROM patients WHERE id = 'p1'").fetchone() is None:
        db.conn.execute("INSERT INTO patients (id, mrn, name, created_utc) VALUES"
                        " ('p1', 'MRN-0001', 'Test Patient', '2026-01-01T00:00:00.000Z')")
    create_session(db, wall_anchor=t0, mono_anchor=0.0, protocol="spravato-56mg",
                   patient_id="p1", session_id=session_id, user_id="nurse1")
    db.conn.execute("COMMIT")
    samples = []
    for i in range(seconds):
        for metric, value in (("spo2", 97.0), ("pulse_rate", 72.0 + i % 3), ("perfusion_index", 2.5)):
            samples.append(Numeric.of(metric, value, t_mono=float(i), t_wall=t0 + i, source="sim"))
        samples.append(WaveformChunk("pleth", 75.0, float(i), t0 + i,
                                     tuple((i * 7 + k) % 500 for k in range(75)), "sim"))
    samples.append(Numeric.of("nibp_systolic", 128.0, t_mono=5.0, t_wall=t0 + 5, source="nibp"))
    samples.append(Numeric.of("spo2", None, t_mono=6.5, t_wall=t0 + 6.5, source="sim",
                              flags=frozenset({Condition.SENSOR_OFF})))
    samples.append(DeviceStatus("sim", True, frozenset(), 0.0, t0))
    samples.append(SessionEvent("note", 3.0, t0 + 3, {"text": "patient calm"}, "nurse1"))
    write_samples(db, samples, session_id)
    conn = db.conn
    conn.execute("INSERT INTO doses (session_id, action, drug, amount, unit, route, t_mono, t_wall,"
                 " t_utc, user_id) VALUES (?, 'dose', 'esketamine', 56, 'mg', 'intranasal', 1, ?, ?,"
                 " 'nurse1')", (session_id, t0 + 1, "2026-01-01T00:00:01.000Z"))
    conn.execute("INSERT INTO scale_entries (session_id, scale, scale_version, items, total, complete,"
                 " t_mono, t_wall, t_utc, user_id) VALUES (?, 'cadss6', '1', ?, 3, 1, 2, ?, ?,"
                 " 'nurse1')", (session_id, json.dumps({"1": 1, "2": 2}), t0 + 2,
                                "2026-01-01T00:00:02.000Z"))
    conn.execute("INSERT INTO alarm_log (session_id, alarm_id, condition, kind, priority, metric,"
                 " direction, limit_value, trigger_value, start_mono, start_wall, start_utc, end_mono,"
                 " end_wall, end_utc) VALUES (?, 'a1', 'spo2_low', 'limit', 'high', 'spo2', 'low', 90,"
                 " 88, 8, ?, '2026-01-01T00:00:08.000Z', 12, ?, '2026-01-01T00:00:12.000Z')",
                 (session_id, t0 + 8, t0 + 12))
    conn.execute("INSERT INTO amendments (session_id, target_table, target_id, reason, changes,"
                 " t_mono, t_wall, t_utc, user_id) VALUES (?, 'doses', '1', 'typo in lot number',"
                 " '{\"lot_number\": \"B12\"}', 9, ?, '2026-01-01T00:00:09.000Z', 'nurse1')",
                 (session_id, t0 + 9))
    if end:
        db.conn.execute("BEGIN IMMEDIATE")
        end_session(db, session_id, user_id="nurse1", t_wall=t0 + seconds)
        db.conn.execute("COMMIT")
    return session_id


def enrol_staff(db):
    nurse = enrol_key(db, "nurse1", "Nora Nurse, RN", "nurse", NURSE_PW, kdf_params=FAST_KDF)
    doctor = enrol_key(db, "doc1", "Dan Doctor, MD", "physician", DOCTOR_PW, kdf_params=FAST_KDF)
    return nurse, doctor


@dataclass
class World:
    db: object
    path: object
    session_id: str
    record_id: str
    nurse: object
    doctor: object


@pytest.fixture
def world(tmp_path) -> World:
    path = tmp_path / "clinic.db"
    db = open_db(path)
    nurse, doctor = enrol_staff(db)
    sid = make_session(db)
    rec = seal_session(db, sid, "nurse1", NURSE_PW)
    yield World(db, path, sid, rec.record_id, nurse, doctor)
    db.conn.close()


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def drop_trigger(db, name: str) -> None:
    """What an attacker with raw file access does first."""
    db.conn.execute(f"DROP TRIGGER {name}")


def delete_signed_record(db, session_id: str) -> list[str]:
    """An attacker with the file: drop the no-delete triggers, delete the session's records and
    their signatures, and set the session back to 'ended' as if it had never been signed (its rows
    are then no longer sealed). Returns the ids of the records deleted."""
    for name in ("record_signatures_no_delete", "session_records_no_delete"):
        db.conn.execute(f"DROP TRIGGER IF EXISTS {name}")
    ids = [r[0] for r in db.conn.execute("SELECT record_id FROM session_records WHERE session_id = ?"
                                         " ORDER BY created_utc", (session_id,))]
    db.conn.execute("DELETE FROM record_signatures WHERE record_id IN (SELECT record_id FROM"
                    " session_records WHERE session_id = ?)", (session_id,))
    db.conn.execute("DELETE FROM session_records WHERE session_id = ?", (session_id,))
    db.conn.execute("UPDATE sessions SET status = 'ended' WHERE id = ?", (session_id,))
    return ids
