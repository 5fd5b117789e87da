"""``ketmonitor review``: clear one-line errors before any window (no database, unknown session, no
display), and the command never imports Qt or ui on those paths."""

from __future__ import annotations

import sys

import pytest

from ketmonitor.cli import main
from ketmonitor.sessions import create_session
from ketmonitor.store import open_db


@pytest.fixture
def one_session(db_path):
    db = open_db(db_path)
    db.conn.execute("BEGIN IMMEDIATE")
    sid = create_session(db, wall_anchor=1_767_225_600.0, mono_anchor=0.0, session_id="s-1")
    db.conn.execute("COMMIT")
    db.conn.close()
    return sid


def _one_line_error(capsys, text):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and text in err and "Traceback" not in err
    return err


def test_missing_database(tmp_path, capsys):
    assert main(["review", "--db", str(tmp_path / "none.db")]) == 2
    _one_line_error(capsys, "no database at")


def test_unknown_session(db_path, one_session, capsys):
    assert main(["review", "--db", str(db_path), "--session", "nope"]) == 2
    _one_line_error(capsys, "no session nope")


def test_no_display_is_a_clear_error(db_path, one_session, capsys, monkeypatch):
    for var in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(var, raising=False)
    assert main(["--db", str(db_path), "review", "--session", one_session]) == 2
    _one_line_error(capsys, "no display found")


def test_error_paths_load_no_qt(db_path, one_session):
    import os
    import subprocess

    code = ("import sys\nfrom ketmonitor.cli import main\n"
            f"rc = main(['review', '--db', {str(db_path)!r}, '--session', 's-1'])\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'ui')]\n"
            "assert rc == 2 and not bad, (rc, bad)\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert "no display found" in r.stderr


def test_help_describes_the_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["review", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--session" in out and "--db" in out and "co-sign" in out
