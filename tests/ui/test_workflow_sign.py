"""Signing the record at the bedside: a whole IM session walked under the panel, the monitor moves
its recording to a new session at the end, the nurse signs with her password again (a wrong one
first), the record verifies while samples keep arriving, and the next patient gets a fresh panel.
Real SQLite file, real Ed25519 and Argon2 (cheap parameters), real widgets offscreen."""

from __future__ import annotations

import logging

import pytest
from PySide6.QtCore import Qt

from ketmonitor.clock import ManualClock
from ketmonitor.samples import Numeric
from ketmonitor.signing import current_key, revoke_key, verify_db
from ketmonitor.store import open_db
from ketmonitor.users import User
from tests.ui.conftest import NURSE_PASSWORD as PASSWORD
from tests.ui.conftest import bedside, shot
from ui.workflow.sign import SessionEndForm


class JumpingClock(ManualClock):
    def sleep_until(self, t_mono, stop=None):
        self.set(t_mono)
        return not (stop and stop.is_set())


@pytest.fixture
def ended_session(qtbot, db_path):
    """(window, runtime, clock, workflow_ui, the ended session's id): nina walked an IM session
    under the panel to its end; the monitor records into the next session."""
    clock = JumpingClock(0.0)
    with bedside(qtbot, db_path, clock) as (window, rt, wui):
        first = rt.session_id
        wui.start_walkthrough("im-injection")
        qtbot.waitUntil(lambda: wui.walk_report is not None, timeout=20000)
        assert wui.walk_report.completed and wui.workflow.state == "ended"
        yield window, rt, clock, wui, first


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
    assert dialog.who.text() == "Signing as Nina Nurse (nina), nurse"
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
    assert lines[1] == "Nina Nurse (nurse, nina)" and lines[3] == "Meaning: authorship"
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


def _end_form(wui):
    wui.panel.tick()
    form = wui.panel.step.currentWidget()
    assert isinstance(form, SessionEndForm)
    return form


def test_the_bedside_signs_by_the_same_rules_as_the_review_screen(ended_session, qtbot):
    """Who may sign for what is decided in one place (signing.rules): a nurse who made no entries
    is no author; a physician who made none signs for responsibility, the only meaning offered."""
    window, rt, clock, wui, first = ended_session
    admin = User("admin", "Ada Admin", "admin")
    nell = wui.auth.create_user(admin, "nell", "Nell Other", "nurse", "Nurse-pass-2027",
                                must_change=False)
    dora = wui.auth.create_user(admin, "dora", "Dora Doctor", "physician", "Doctor-pass-2027",
                                must_change=False)
    wui.workflow.set_user(nell)
    form = _end_form(wui)
    assert form.ask() is None
    assert "nell (nurse) made no entries in session" in form.error.text()
    wui.workflow.set_user(dora)
    dialog = form.ask()
    qtbot.addWidget(dialog)
    assert [dialog.meaning.itemData(i) for i in range(dialog.meaning.count())] == ["responsibility"]
    assert "I take responsibility for this session record" in dialog.statement.text()
    shot(dialog, "sign-at-the-bedside-responsibility")
    dialog.password.setText("Doctor-pass-2027")
    qtbot.mouseClick(dialog.sign_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=20000)
    assert form.result.text().splitlines()[3] == "Meaning: responsibility"
    rt.writer.flush()
    db = open_db(rt.writer.path, readonly=True)
    try:
        (sig,) = verify_db(db, first, audit=False).records[0].signatures
        assert (sig.signer_id, sig.role, sig.meaning) == ("dora", "physician", "responsibility")
    finally:
        db.conn.close()


def test_a_database_error_while_signing_is_said_and_the_dialog_stays_usable(ended_session, qtbot,
                                                                           caplog):
    """A future carrying a non-ketmonitor error (here sqlite3's) never escapes the polling slot:
    logged with its traceback, said in the dialog, the Sign button usable again."""
    window, rt, clock, wui, first = ended_session
    form = _end_form(wui)
    dialog = form.ask()
    qtbot.addWidget(dialog)
    rt.writer.run(lambda db: db.conn.execute("ALTER TABLE session_records RENAME TO gone"))
    dialog.password.setText(PASSWORD)
    with caplog.at_level(logging.ERROR):
        qtbot.mouseClick(dialog.sign_button, Qt.LeftButton)
        qtbot.waitUntil(lambda: dialog.error.isVisible(), timeout=20000)
    assert dialog.error.text().startswith(
        "Signing failed unexpectedly (OperationalError: no such table: session_records)")
    assert dialog.isVisible() and dialog.sign_button.isEnabled() and not form.busy()
    assert "signing failed" in caplog.text and "Traceback" in caplog.text
    shot(dialog, "sign-unexpected-error")
    rt.writer.run(lambda db: db.conn.execute("ALTER TABLE gone RENAME TO session_records"))
    dialog.password.setText(PASSWORD)  # the same dialog signs once the database is whole again
    qtbot.mouseClick(dialog.sign_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=20000)
    assert form.result.text().startswith("Signed: record ")
