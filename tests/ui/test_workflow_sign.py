"""Signing the record at the bedside: a whole IM session walked under the panel, the monitor moves
its recording to a new session at the end, the nurse signs with her password again (a wrong one
first), the record verifies while samples keep arriving, and the next patient gets a fresh panel.
Real SQLite file, real Ed25519 and Argon2 (cheap parameters), real widgets offscreen."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from ketmonitor.clock import ManualClock
from ketmonitor.runtime import MonitorRuntime
from ketmonitor.samples import Numeric
from ketmonitor.signing import current_key, revoke_key, verify_db
from ketmonitor.store import open_db
from ketmonitor.users import Clinic
from tests.core.test_users import cheap_hasher
from tests.ui.conftest import shot
from ui.monitor_window import MonitorWindow
from ui.workflow import WorkflowUi
from ui.workflow.sign import SessionEndForm

PASSWORD = "Nurse-pass-2026"


class JumpingClock(ManualClock):
    def sleep_until(self, t_mono, stop=None):
        self.set(t_mono)
        return not (stop and stop.is_set())


@pytest.fixture
def ended_session(qtbot, db_path):
    clock = JumpingClock(0.0)
    rt = MonitorRuntime(db_path, [], clock=clock, t0=0.0, commit_interval=0.05)
    rt.start()
    window = MonitorWindow(rt)
    qtbot.addWidget(window)
    window.resize(1500, 900)
    window.show()
    wui = WorkflowUi(window, rt, hasher=cheap_hasher())
    admin = wui.auth.first_start(Clinic("North"), "admin", "Ada Admin", "Boss-key-2026x")
    nurse = wui.auth.create_user(admin, "nina", "Nina Nurse, RN", "nurse", PASSWORD,
                                 must_change=False)
    wui.start_session(nurse)
    first = rt.session_id
    wui.start_walkthrough("im-injection")
    qtbot.waitUntil(lambda: wui.walk_report is not None, timeout=20000)
    assert wui.walk_report.completed and wui.workflow.state == "ended"
    yield window, rt, clock, wui, first
    wui.stop_walkthrough()
    wui.lock.close()
    window.close()
    rt.stop()


def test_the_author_signs_at_the_bedside_and_the_monitor_goes_on(ended_session, qtbot):
    window, rt, clock, wui, first = ended_session
    # the end moved the recording to a new session awaiting check-in
    qtbot.waitUntil(lambda: rt.session_id != first, timeout=3000)
    later = rt.session_id
    panel = wui.panel
    panel.tick()
    form = panel.step.currentWidget()
    assert isinstance(form, SessionEndForm) and form.sign_button.isEnabled()
    assert "Sign it from the review screen" not in form.status.text()

    dialog = form.ask()
    qtbot.addWidget(dialog)
    assert dialog.who.text() == "Signing as Nina Nurse, RN (nina), nurse"
    dialog.password.setText("not-my-password")
    qtbot.mouseClick(dialog.sign_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: dialog.error.isVisible(), timeout=10000)
    assert dialog.error.text() == "Wrong password: nothing was signed. Enter your own password again."
    assert dialog.isVisible() and dialog.password.text() == ""
    shot(dialog, "sign-wrong-password")

    # the monitor records while the nurse signs: into the new session
    for t in range(3):
        rt.publish(Numeric.of("spo2", 97, t_mono=clock.monotonic() + t, t_wall=clock.wall() + t,
                              source="ox"))
    dialog.password.setText(PASSWORD)
    qtbot.keyClick(dialog.password, Qt.Key_Return)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=10000)
    assert form.result.text().startswith("Signed: record ")
    lines = form.result.text().splitlines()
    assert lines[1] == "Nina Nurse, RN (nurse, nina)" and lines[3] == "Meaning: authorship"
    assert lines[2][:4].isdigit()  # local date and time
    assert not form.sign_button.isEnabled() and form.status.text() == "The record is signed."
    panel.tabs.setCurrentWidget(panel.step)
    shot(panel, "signed-at-the-bedside")

    rt.writer.flush()
    db = open_db(rt.writer.path, readonly=True)
    try:
        status = db.conn.execute("SELECT status FROM sessions WHERE id = ?", (first,)).fetchone()
        assert status == ("signed",)
        assert db.conn.execute("SELECT count(*) FROM numerics WHERE session_id = ?",
                               (later,)).fetchone()[0] == 3
        actions = [a for (a,) in db.conn.execute("SELECT action FROM audit_log ORDER BY seq")]
        assert "signing.auth_failed" in actions and "record.signed" in actions
        result = verify_db(db, first, audit=False)  # nothing written into it after the seal
        assert len(result.records) == 1
    finally:
        db.conn.close()

    # next patient: a fresh panel on the session the monitor records into now
    old_panel = panel
    qtbot.mouseClick(form.next_button, Qt.LeftButton)
    assert wui.panel is not old_panel and wui.workflow.session_id == later
    assert wui.workflow.state == "check_in" and wui.lock.controls[0] is wui.panel
    assert window.dose_mono is None and window.dose_label.text() == "no dose yet"
    wui.panel.refresh()
    assert wui.panel.header.text().startswith("Awaiting check-in")


def test_no_signing_key_is_a_clear_error(ended_session, qtbot):
    window, rt, clock, wui, first = ended_session
    rt.writer.run(lambda db: revoke_key(db, current_key(db, "nina").kid, reason="lost password",
                                        by_user_id="admin"))
    panel = wui.panel
    panel.tick()
    form = panel.step.currentWidget()
    assert form.ask() is None
    assert "ask an administrator to enrol a signing key for nina" in form.error.text()
