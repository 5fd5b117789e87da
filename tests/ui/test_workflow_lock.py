"""The automatic lock on the real monitor window: alarm banner and sound go on, anyone may
acknowledge (recorded as done at the locked screen, by nobody), the alarm limits are locked, and
unlocking gives back only the controls there is something behind."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from ketmonitor.alarms import Priority
from ketmonitor.samples import Numeric
from ketmonitor.store import open_db
from tests.ui.conftest import NURSE_PASSWORD, shot
from tests.ui.test_workflow_login import HeldWriter

@pytest.fixture
def locked_bedside(nurse_bedside):
    return nurse_bedside


def desaturate(rt, clock, value=81, seconds=7):
    for _ in range(seconds):
        rt.publish(Numeric.of("spo2", value, t_mono=clock.monotonic(), t_wall=clock.wall(),
                              source="ox"))
        clock.advance(1)


def lock(qtbot, wui, lock_time):
    lock_time[0] += 301
    wui.lock.poll()
    assert wui.lock.lock.locked


def unlock(qtbot, wui, user_id="nina", password=NURSE_PASSWORD):
    """Type and click Unlock; the password is checked on a worker: wait for its answer."""
    wui.lock.overlay.user_id.setText(user_id)
    wui.lock.overlay.password.setText(password)
    qtbot.mouseClick(wui.lock.overlay.button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not wui.lock.checking, timeout=10000)


def test_alarm_banner_and_sound_survive_the_lock(locked_bedside, qtbot):
    window, rt, clock, wui, lock_time = locked_bedside
    ui = window.alarm_ui
    desaturate(rt, clock)
    qtbot.waitUntil(lambda: ui.banner.priority == "high", timeout=3000)
    playing_before = ui.audio.playing
    assert ui.controller.snapshot.audio_priority is Priority.HIGH
    assert playing_before == ("high" if ui.audio.available else None)

    lock(qtbot, wui, lock_time)
    desaturate(rt, clock, 80, 3)  # time and samples go on while locked
    qtbot.waitUntil(lambda: ui.banner.text.text() == "SpO2 desaturation 80 (< 85)", timeout=3000)
    qtbot.waitUntil(lambda: window.tiles["spo2"].text() == "80", timeout=3000)  # drawn by frames
    QApplication.processEvents()  # pending layout requests, before the picture
    shot(window, "locked-with-desaturation")
    assert ui.banner.isVisible() and ui.banner.priority == "high"
    assert window.tiles["spo2"].alarm_priority == "high"
    assert ui.controller.snapshot.audio_priority is Priority.HIGH
    assert ui.audio.playing == playing_before  # the tone never stopped
    assert ui.banner.ack_button.isEnabled() and ui.banner.pause_button.isEnabled()


def test_acknowledge_at_a_locked_screen_is_recorded_as_such(locked_bedside, qtbot):
    window, rt, clock, wui, lock_time = locked_bedside
    ui = window.alarm_ui
    desaturate(rt, clock)
    qtbot.waitUntil(lambda: ui.banner.priority == "high", timeout=3000)
    lock(qtbot, wui, lock_time)
    assert wui.user_provider() == (None, None)
    qtbot.mouseClick(ui.banner.pause_button, Qt.LeftButton)
    qtbot.mouseClick(ui.banner.ack_button, Qt.LeftButton)
    assert ui.controller.snapshot.audio_priority is None and ui.banner.priority == "high"

    rt.writer.flush()
    db = open_db(rt.writer.path, readonly=True)
    actions = db.conn.execute(  # one row per alarm shown (audio unavailable too, offscreen)
        "SELECT action, user_id, role, detail FROM alarm_actions WHERE alarm_id = (SELECT"
        " alarm_id FROM alarm_log WHERE condition = 'spo2_desat') ORDER BY id").fetchall()
    assert [(a, u, r, json.loads(d).get("locked")) for a, u, r, d in actions] == [
        ("audio_paused", None, None, True), ("acknowledged", None, None, True)]
    audit = db.conn.execute("SELECT user_id, detail FROM audit_log WHERE action ="
                            " 'alarm.acknowledged'").fetchall()
    assert [(u, json.loads(d)["locked"]) for u, d in audit] == [(None, True)]
    db.conn.close()

    # unlocked again, the same buttons act in the nurse's name
    unlock(qtbot, wui)
    assert not wui.lock.lock.locked and wui.user_provider() == ("nina", "nurse")
    assert ui.banner.pause_button.text() == "Resume audio"  # the pause runs on
    qtbot.mouseClick(ui.banner.pause_button, Qt.LeftButton)
    rt.writer.flush()
    db = open_db(rt.writer.path, readonly=True)
    last = db.conn.execute("SELECT action, user_id, role, detail FROM alarm_actions"
                           " ORDER BY id DESC LIMIT 1").fetchone()
    assert last[:3] == ("audio_resumed", "nina", "nurse") and "locked" not in json.loads(last[3])
    db.conn.close()


def test_alarm_limits_are_locked_with_the_controls(locked_bedside, qtbot):
    window, rt, clock, wui, lock_time = locked_bedside
    ui = window.alarm_ui
    engine = rt.alarms
    dlg = ui.open_limits()  # opened by the nurse, left open
    qtbot.addWidget(dlg)
    assert dlg.can_limits and dlg.user_id == "nina"
    dlg.editors["spo2_low"]["limit"].setValue(85)

    lock(qtbot, wui, lock_time)
    qtbot.waitUntil(lambda: not dlg.isVisible(), timeout=2000)
    assert engine.spec("spo2_low").limit == 90  # nothing typed into it was applied
    assert not ui.banner.limits_button.isEnabled()
    assert ui.open_limits() is None
    ui.banner.limits_button.click()  # a disabled button does nothing
    assert ui.limits_dialog is None
    shot(window, "locked-limits-button")

    unlock(qtbot, wui)
    assert ui.banner.limits_button.isEnabled()
    again = ui.open_limits()
    qtbot.addWidget(again)
    assert again.can_limits and again.user_id == "nina"


def test_unlocking_leaves_start_nibp_off_without_a_blood_pressure_device(locked_bedside, qtbot):
    window, rt, clock, wui, lock_time = locked_bedside
    assert not window.nibp_available() and not window.nibp_button.isEnabled()
    lock(qtbot, wui, lock_time)
    unlock(qtbot, wui)
    assert not wui.lock.lock.locked and wui.panel.isEnabled()
    assert not window.nibp_button.isEnabled()


def test_a_changed_limit_is_shown_on_tile_banner_and_dialog(locked_bedside, qtbot):
    window, rt, clock, wui, lock_time = locked_bedside
    ui = window.alarm_ui
    dlg = ui.open_limits()
    qtbot.addWidget(dlg)
    spin = dlg.editors["spo2_low"]["limit"]
    assert (spin.minimum(), spin.maximum()) == (80, 99)  # the clinic's range
    spin.setValue(92)
    assert "changed" in dlg.default_items["spo2_low"].text()
    shot(dlg, "limits-dialog-changed")
    dlg.apply()
    desaturate(rt, clock, 91, 12)
    def low():
        return [a for a in ui.controller.snapshot.alarms if a.condition == "spo2_low"]
    qtbot.waitUntil(lambda: bool(low()), timeout=3000)
    assert low()[0].text == "SpO2 low 91 (< 92, default 90)"  # the banner line of that alarm
    tile = window.tiles["spo2"]
    qtbot.waitUntil(lambda: tile.limit_note.isVisible(), timeout=3000)
    assert tile.limit_note.text() == "Limit changed: SpO2 low < 92 (default 90)"
    qtbot.waitUntil(lambda: tile.text() == "91", timeout=3000)  # the frames have drawn it
    QApplication.processEvents()  # pending layout requests, before the picture
    shot(window, "limit-changed-tile-and-banner")


def test_the_vitals_are_drawn_while_the_unlock_password_is_checked(locked_bedside, qtbot):
    """The unlock's Argon2id check (about 0.2 s, six frames) runs on a worker: the tiles are drawn
    and an alarm can be acknowledged while the overlay says "Checking password..."."""
    window, rt, clock, wui, lock_time = locked_bedside
    ui = window.alarm_ui
    lock(qtbot, wui, lock_time)
    overlay = wui.lock.overlay
    overlay.user_id.setText("nina")
    overlay.password.setText(NURSE_PASSWORD)
    held = HeldWriter(rt.writer)  # the check cannot finish before the test lets it
    try:
        qtbot.mouseClick(overlay.button, Qt.LeftButton)
        assert wui.lock.checking and overlay.button.text() == "Checking password..."
        assert not overlay.button.isEnabled() and wui.lock.lock.locked
        qtbot.keyClick(overlay.password, Qt.Key_Return)  # again: ignored while checking
        desaturate(rt, clock, 82, 7)
        tile = window.tiles["spo2"]
        qtbot.waitUntil(lambda: tile.text() == "82" and ui.banner.priority == "high",
                        timeout=3000)
        qtbot.mouseClick(ui.banner.ack_button, Qt.LeftButton)  # at the locked screen
        assert ui.controller.snapshot.top.acknowledged
        shot(window, "unlock-checking-password")
        assert wui.lock.checking and wui.lock.lock.locked  # all while the check was under way
    finally:
        held.release()
    qtbot.waitUntil(lambda: not wui.lock.lock.locked, timeout=10000)
    assert overlay.button.text() == "Unlock" and overlay.button.isEnabled()
    assert wui.user_provider() == ("nina", "nurse") and wui.panel.isEnabled()
    rt.writer.flush()
    db = open_db(rt.writer.path, readonly=True)
    actions = [a for (a,) in db.conn.execute("SELECT action FROM audit_log ORDER BY seq")]
    db.conn.close()
    assert actions.count("auth.unlock") == 1 and actions.count("session.unlock") == 1


def test_a_wrong_unlock_password_is_said_and_the_controls_stay_locked(locked_bedside, qtbot):
    window, rt, clock, wui, lock_time = locked_bedside
    lock(qtbot, wui, lock_time)
    unlock(qtbot, wui, password="not-the-password")
    overlay = wui.lock.overlay
    assert wui.lock.lock.locked and not wui.panel.isEnabled()
    assert overlay.error.text() == "user id or password is wrong" and overlay.password.text() == ""
    assert overlay.button.isEnabled() and overlay.button.text() == "Unlock"
    shot(overlay, "unlock-wrong-password")
