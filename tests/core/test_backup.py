"""``ketmonitor backup``: SQLite's online backup of a WAL database while the store writer keeps
writing; the copy is consistent, self-contained and verifies; a plain file copy is not enough."""

from __future__ import annotations

import shutil
import sqlite3
import threading

import pytest

from ketmonitor.cli import main
from ketmonitor.commands.backup import backup_database
from ketmonitor.errors import ConfigError
from ketmonitor.samples import Numeric
from ketmonitor.sessions import create_session
from ketmonitor.signing import seal_session, verify_db
from ketmonitor.store import StoreWriter, open_db
from tests.core.test_signing_support import NURSE_PW, enrol_staff, make_session


def count(path, sql="SELECT count(*) FROM numerics") -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def check_copy(path) -> None:
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    finally:
        conn.close()
    assert not path.with_name(path.name + "-wal").exists()


def test_backup_while_the_writer_keeps_writing(tmp_path):
    src = tmp_path / "sessions.db"
    open_db(src).conn.close()
    writer = StoreWriter(src, commit_interval=0.02).start()
    stop = threading.Event()
    written = threading.Event()
    try:
        sid = writer.run(lambda db: create_session(db, wall_anchor=1_767_225_600.0, mono_anchor=0.0))

        def feed():
            i = 0
            while not stop.is_set():
                writer.put(sid, Numeric.of("spo2", 97.0, t_mono=float(i), t_wall=1_767_225_600.0 + i,
                                           source="sim"))
                i += 1
                if i % 200 == 0:
                    writer.flush()
                    written.set()
        thread = threading.Thread(target=feed, daemon=True)
        thread.start()
        assert written.wait(10)
        for k in range(3):
            before = count(src)
            out = tmp_path / f"backup{k}.db"
            facts = backup_database(src, out)
            after = count(src)
            check_copy(out)
            copied = count(out)
            assert before <= copied <= after  # one instant of the live database
            assert before > 0 and facts["sessions"] == 1 and facts["bytes"] == out.stat().st_size
            writer.flush()
    finally:
        stop.set()
        thread.join(5)
        writer.stop()
    assert count(src) > copied  # the writer went on during and after the backups


def test_a_plain_file_copy_misses_what_is_in_the_wal_and_the_backup_does_not(tmp_path):
    src = tmp_path / "sessions.db"
    open_db(src).conn.close()
    with StoreWriter(src, commit_interval=0.02) as writer:  # open: the WAL is not folded back yet
        sid = writer.run(lambda db: create_session(db, wall_anchor=1_767_225_600.0, mono_anchor=0.0))
        for i in range(100):
            writer.put(sid, Numeric.of("pulse_rate", 70.0 + i % 5, t_mono=float(i),
                                       t_wall=1_767_225_600.0 + i, source="sim"))
        writer.flush()
        shutil.copy(src, tmp_path / "filecopy.db")  # what a naive backup script does
        backup_database(src, tmp_path / "backup.db")
    assert count(tmp_path / "backup.db") == 100
    assert count(tmp_path / "filecopy.db") < 100


def test_the_backup_of_a_signed_database_verifies(tmp_path):
    db = open_db(tmp_path / "sessions.db")
    make_session(db)
    enrol_staff(db)
    seal_session(db, "s1", "nurse1", NURSE_PW)
    facts = backup_database(tmp_path / "sessions.db", tmp_path / "copy.db")
    db.conn.close()
    copy = open_db(facts["out"], readonly=True)
    try:
        report = verify_db(copy)
        assert "verified" in report.describe()
    finally:
        copy.conn.close()


def test_cli_backup_and_its_one_line_errors(tmp_path, capsys):
    src = tmp_path / "sessions.db"
    make_session(open_db(src))
    out = tmp_path / "backup.db"
    assert main(["backup", "--db", str(src), "--out", str(out)]) == 0
    assert f"written to {out}" in capsys.readouterr().out
    check_copy(out)

    assert main(["backup", "--db", str(src), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "exists; give --force" in err and err.count("\n") == 1
    assert main(["backup", "--db", str(src), "--out", str(out), "--force"]) == 0
    capsys.readouterr()

    assert main(["backup", "--db", str(tmp_path / "none.db"), "--out", str(tmp_path / "x.db")]) == 2
    assert "no database at" in capsys.readouterr().err
    assert main(["backup", "--db", str(src), "--out", str(tmp_path / "no" / "x.db")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not list(tmp_path.glob(".*.partial"))


def test_the_backup_never_replaces_its_source(tmp_path):
    src = tmp_path / "sessions.db"
    make_session(open_db(src))
    with pytest.raises(ConfigError, match="cannot replace the database itself"):
        backup_database(src, src, force=True)
    assert count(src) > 0
