"""`ketmonitor demo --headless` ends by signing its record as the demo nurse and prints its path."""

import re

from ketmonitor.cli import main
from ketmonitor.clock import ManualClock
from ketmonitor.store import open_db
from ketmonitor.users import Authenticator, Clinic


def run_demo(db, capsys, *extra):
    assert main(["demo", "--headless", "--minutes", "4", "--speed", "1200", "--db", str(db),
                 *extra]) == 0
    return capsys.readouterr().out


def test_demo_record_is_signed_and_verifies(tmp_path, capsys):
    db = tmp_path / "demo.db"
    out = run_demo(db, capsys)
    path = re.search(r"^record (\S+)", out, re.M).group(1)
    assert main(["verify", path, "--db", str(db)]) == 0
    assert "Demo Nurse (simulated)" in capsys.readouterr().out
    assert main(["verify", "--db", str(db)]) == 0
    row = next(open_db(db).query("SELECT status, started_utc, ended_utc FROM sessions"))
    assert row["status"] == "signed"
    sig = next(open_db(db).query("SELECT signed_utc FROM record_signatures"))
    assert row["started_utc"] < row["ended_utc"] <= sig["signed_utc"]  # times in their true order


def test_demo_never_signs_in_a_real_clinics_database(tmp_path, capsys):
    db_path = tmp_path / "clinic.db"
    db = open_db(db_path)

    class Runner:
        def run(self, fn, timeout=None):
            with db.conn:
                db.conn.execute("BEGIN IMMEDIATE")
                return fn(db)

    Authenticator(Runner(), clock=ManualClock()).first_start(
        Clinic("Riverside Ketamine Clinic"), "admin", "Ada Admin", "Correct-Horse-9")
    db.conn.close()
    out = run_demo(db_path, capsys)
    assert "record not signed" in out
    assert not list(open_db(db_path).query("SELECT * FROM session_records"))
