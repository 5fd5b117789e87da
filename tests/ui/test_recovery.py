"""Crash recovery in the GUI: an unfinished session is offered for resuming or closing."""

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from ketmonitor.clock import Clock
from ketmonitor.runtime import MonitorRuntime
from ketmonitor.sessions import create_session, unfinished_sessions
from ketmonitor.store import open_db
from ui.app import recover_unfinished
from ui.recovery import RecoveryDialog


def _left_open(db_path):
    db = open_db(db_path)
    with db.conn:
        sid = create_session(db, wall_anchor=Clock().wall() - 600, mono_anchor=0.0, protocol="im")
    db.conn.close()
    return sid


def _answer(button_name):
    def click():
        dlg = next(w for w in QApplication.topLevelWidgets() if isinstance(w, RecoveryDialog)
                   and w.isVisible())
        getattr(dlg, button_name).click()
    QTimer.singleShot(200, click)


def test_close_marks_the_session_abandoned(qtbot, db_path):
    sid = _left_open(db_path)
    _answer("close_button")
    assert recover_unfinished(db_path) is None
    db = open_db(db_path)
    assert unfinished_sessions(db) == []
    assert db["sessions"].get(sid)["status"] == "abandoned"


def test_resume_continues_the_same_session_on_its_time_base(qtbot, db_path):
    sid = _left_open(db_path)
    _answer("resume_button")
    assert recover_unfinished(db_path) == sid
    clock = Clock()
    rt = MonitorRuntime(db_path, [], clock=clock, session_id=sid)
    rt.start()
    try:
        assert 590 <= clock.monotonic() - rt.t0 <= 700  # the session is ten minutes old
    finally:
        rt.stop()
    db = open_db(db_path)
    assert db["sessions"].count == 1
    kinds = [r["kind"] for r in db.query("SELECT kind FROM events WHERE session_id=?", [sid])]
    assert "session.resumed" in kinds
