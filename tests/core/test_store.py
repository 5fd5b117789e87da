import sqlite3
import threading

import pytest

from ketmonitor.clock import utc_iso
from ketmonitor.errors import StoreError
from ketmonitor.samples import Condition, DeviceStatus, Numeric, SessionEvent, WaveformChunk
from ketmonitor.sessions import create_session, unfinished_sessions
from ketmonitor.store import StoreWriter, open_db, pending_migrations
from ketmonitor.store.writer import unpack_samples


def test_fresh_database_is_migrated_in_wal_mode(db_path):
    db = open_db(db_path)
    assert pending_migrations(db) == []
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"sessions", "numerics", "waveform_chunks", "events", "audit_log"} <= set(db.table_names())
    applied = [r["name"] for r in db.query("SELECT name FROM _sqlite_migrations ORDER BY rowid")]
    assert applied[:2] == ["0001_core", "0002_audit"]
    assert applied == sorted(applied)


def test_bad_paths_give_clear_errors(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        open_db(tmp_path / "no" / "such" / "dir.db")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open database"):
        open_db(junk)


def _session(writer):
    return writer.run(lambda db: create_session(db, wall_anchor=1_767_225_600.0, mono_anchor=0.0))


def test_writer_stores_every_kind_of_sample(db_path):
    with StoreWriter(db_path) as w:
        sid = _session(w)
        rec = w.listener(sid)
        rec(Numeric.of("spo2", 97.0, t_mono=1.0, t_wall=1_767_225_601.0, source="ox"))
        rec(Numeric.of("pulse_rate", None, t_mono=1.0, t_wall=1_767_225_601.0, source="ox",
                       flags={Condition.SENSOR_OFF}))
        rec(WaveformChunk("pleth", 75.0, 1.0, 1_767_225_601.0, (1, 2, 300, -5), "ox"))
        rec(DeviceStatus("ox", False, frozenset({Condition.DISCONNECTED}), 2.0, 1_767_225_602.0, "gone"))
        rec(SessionEvent("note", 3.0, 1_767_225_603.0, {"text": "ok"}, "nurse1"))
        w.flush()
    db = open_db(db_path)
    rows = list(db.query("SELECT metric, value, flags, t_utc FROM numerics ORDER BY metric"))
    assert rows == [{"metric": "pulse_rate", "value": None, "flags": "sensor_off",
                     "t_utc": "2026-01-01T00:00:01.000Z"},
                    {"metric": "spo2", "value": 97.0, "flags": "", "t_utc": utc_iso(1_767_225_601.0)}]
    chunk = next(db.query("SELECT samples, n, sha256 FROM waveform_chunks"))
    assert unpack_samples(chunk["samples"]) == (1, 2, 300, -5) and chunk["n"] == 4
    assert len(chunk["sha256"]) == 64
    assert next(db.query("SELECT connected, conditions FROM device_status")) == {
        "connected": 0, "conditions": "disconnected"}
    assert next(db.query("SELECT kind, user_id FROM events")) == {"kind": "note", "user_id": "nurse1"}


def test_writer_call_errors_reach_the_caller_and_roll_back_only_that_call(db_path):
    with StoreWriter(db_path) as w:
        sid = _session(w)
        w.put(sid, Numeric.of("spo2", 95.0, t_mono=1, t_wall=1_767_225_601.0, source="ox"))

        def bad(db):
            db.conn.execute("INSERT INTO settings (key, value) VALUES ('a', '1')")
            raise ValueError("nope")

        with pytest.raises(ValueError, match="nope"):
            w.run(bad)
        w.flush()
    db = open_db(db_path)
    assert db["numerics"].count == 1
    assert db["settings"].count == 0


def test_full_database_keeps_samples_queued_and_reports_then_recovers(db_path):
    """SQLite's max_page_count gives the real SQLITE_FULL path: the writer must report it, keep
    monitoring (put never raises) and lose nothing once space is back."""
    errors = []
    seen = threading.Event()

    def on_error(message):
        errors.append(message)
        if message:
            seen.set()

    with StoreWriter(db_path, commit_interval=0.05, on_error=on_error) as w:
        sid = _session(w)
        pages = w.run(lambda db: db.conn.execute("PRAGMA page_count").fetchone()[0])
        w.run(lambda db: db.conn.execute(f"PRAGMA max_page_count={pages}"))
        for i in range(3000):
            w.put(sid, WaveformChunk("pleth", 75.0, i / 3, 1_767_225_600.0 + i / 3,
                                     tuple(range(25)), "ox"))
        assert seen.wait(10), "storage failure was not reported"
        assert "full" in errors[-1]
        w.run(lambda db: db.conn.execute("PRAGMA max_page_count=1073741823"))
        w.flush()
        assert errors[-1] is None  # recovery reported
    db = open_db(db_path)
    assert db["waveform_chunks"].count == 3000


def test_a_call_that_cannot_be_committed_fails_at_once_and_never_lands_later(db_path):
    """A clinical entry made while the disk is full must fail promptly with the storage error (the
    nurse sees it and may enter it again), must not be committed behind her back once space is
    back, and must not stop the samples from being written then."""
    with StoreWriter(db_path, commit_interval=0.05) as w:
        sid = _session(w)
        w.run(lambda db: db.conn.execute("CREATE TABLE notes (body TEXT)"))
        pages = w.run(lambda db: db.conn.execute("PRAGMA page_count").fetchone()[0])
        w.run(lambda db: db.conn.execute(f"PRAGMA max_page_count={pages}"))
        big = "x" * 200_000  # needs pages the database may no longer take

        def note(db):
            db.conn.execute("INSERT INTO notes VALUES (?)", (big,))
        with pytest.raises(StoreError, match="full"):
            w.run(note, timeout=10)
        for i in range(50):
            w.put(sid, Numeric.of("spo2", 97, t_mono=i, t_wall=1_767_225_600.0 + i, source="ox"))
        w.run(lambda db: db.conn.execute("PRAGMA max_page_count=1073741823"))
        w.flush()
    db = open_db(db_path)
    assert db["numerics"].count == 50
    assert db["notes"].count == 0


def test_unfinished_sessions_are_found(db_path):
    db = open_db(db_path)
    with db.conn:
        sid = create_session(db, wall_anchor=1_767_225_600.0, mono_anchor=0.0, scenario="x")
    assert [s["id"] for s in unfinished_sessions(db)] == [sid]


def test_integrity_of_database_after_concurrent_reader(db_path):
    with StoreWriter(db_path, commit_interval=0.01) as w:
        sid = _session(w)
        reader = sqlite3.connect(db_path)
        for i in range(200):
            w.put(sid, Numeric.of("spo2", 90 + i % 10, t_mono=i, t_wall=1_767_225_600.0 + i, source="ox"))
            reader.execute("SELECT count(*) FROM numerics").fetchone()
        w.flush()
        assert reader.execute("SELECT count(*) FROM numerics").fetchone()[0] == 200
        reader.close()


def test_a_stopped_writer_refuses_calls_at_once(tmp_path):
    # a UI timer firing after the monitor stopped must get an error, not wait 30 s for an answer
    writer = StoreWriter(tmp_path / "k.db").start()
    assert writer.run(lambda db: 1) == 1
    writer.stop()
    with pytest.raises(StoreError, match="has stopped"):
        writer.run(lambda db: 1, timeout=0.5)
