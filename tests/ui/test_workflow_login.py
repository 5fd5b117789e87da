"""Logging in at the bedside while the monitor runs: the password work (Argon2id hashes, and for a
password change two signing-key derivations) happens off the Qt main thread, so the vitals keep
being drawn meanwhile. Real monitor window, real writer and SQLite file, real Argon2id."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import Qt

from ketmonitor.clock import ManualClock
from ketmonitor.samples import Numeric
from ketmonitor.signing import current_key
from ketmonitor.users import Clinic
from tests.ui.conftest import monitor_with_workflow, shot
from ui.workflow.login import LoginDialog

TEMPORARY, CHOSEN = "Temp-pass-2026", "Chosen-pass-2026"


@pytest.fixture
def monitor(qtbot, db_path):
    """(window, runtime, clock, workflow_ui): nobody logged in, a nurse with a temporary password."""
    clock = ManualClock(0.0)
    with monitor_with_workflow(qtbot, db_path, clock) as (window, rt, wui):
        admin = wui.auth.first_start(Clinic("North"), "admin", "Ada Admin", "Boss-key-2026x")
        wui.auth.create_user(admin, "nina", "Nina Nurse", "nurse", TEMPORARY)  # must change it
        yield window, rt, clock, wui


def spo2(rt, clock, value):
    rt.publish(Numeric.of("spo2", value, t_mono=clock.monotonic(), t_wall=clock.wall(),
                          source="ox"))
    clock.advance(1)


class HeldWriter:
    """Holds the store writer in a transaction until released: whatever waits for the writer
    waits until then, so the password change is certainly still running while the test looks."""

    def __init__(self, writer):
        self.gate = threading.Event()
        self.holding = threading.Event()
        self.future = writer.call(lambda db: (self.holding.set(), self.gate.wait(30)))
        assert self.holding.wait(10)

    def release(self):
        self.gate.set()
        self.future.result(10)


def test_a_password_change_at_login_keeps_the_vitals_drawn(monitor, qtbot):
    window, rt, clock, wui = monitor
    wui.begin()
    dialog = wui.dialog
    assert isinstance(dialog, LoginDialog)
    dialog.user_id.setText("nina")
    dialog.password.setText(TEMPORARY)
    qtbot.keyClick(dialog.password, Qt.Key_Return)
    assert dialog.busy and dialog.button.text() == "Checking password..."
    qtbot.waitUntil(lambda: dialog.new_password.isVisible(), timeout=10000)
    assert "must choose a new password" in dialog.error.text() and not dialog.busy

    dialog.new_password.setText(CHOSEN)
    dialog.confirm.setText(CHOSEN)
    held = HeldWriter(rt.writer)
    try:
        qtbot.keyClick(dialog.confirm, Qt.Key_Return)  # returns at once: the work is on the worker
        assert dialog.busy and not dialog.button.isEnabled()
        assert dialog.button.text() == "Changing password..."
        qtbot.keyClick(dialog.confirm, Qt.Key_Return)  # pressed again: ignored, nothing twice
        dialog.reject()  # Esc while the answer is on its way: the answer decides
        assert dialog.isVisible()
        tile = window.tiles["spo2"]
        for value in (95, 94, 93):  # the monitor's frames go on drawing every new value
            spo2(rt, clock, value)
            qtbot.waitUntil(lambda v=value: tile.text() == str(v), timeout=3000)
        shot(window, "login-changing-password-monitor")
        shot(dialog, "login-changing-password")
        assert dialog.busy  # all of that happened while the change was still under way
    finally:
        held.release()
    with qtbot.waitSignal(wui.ready, timeout=20000):
        pass
    assert not dialog.isVisible() and dialog.user.id == "nina" and wui.workflow.user.id == "nina"
    assert dialog.password.text() == dialog.new_password.text() == ""
    assert rt.writer.run(lambda db: current_key(db, "nina")) is not None  # enrolled by the change
    assert wui.auth.login("nina", CHOSEN).id == "nina"


def test_a_refused_new_password_is_said_and_the_dialog_stays(monitor, qtbot):
    window, rt, clock, wui = monitor
    wui.begin()
    dialog = wui.dialog
    dialog.user_id.setText("nina")
    dialog.password.setText(TEMPORARY)
    qtbot.keyClick(dialog.password, Qt.Key_Return)
    qtbot.waitUntil(lambda: dialog.new_password.isVisible(), timeout=10000)
    dialog.new_password.setText("short")
    dialog.confirm.setText("short")
    qtbot.keyClick(dialog.confirm, Qt.Key_Return)
    qtbot.waitUntil(lambda: not dialog.busy, timeout=10000)
    assert dialog.error.text().startswith("password needs at least 10 characters")
    assert dialog.isVisible() and dialog.button.isEnabled()
    assert dialog.button.text() == "Change password and log in"
    shot(dialog, "login-new-password-refused")
