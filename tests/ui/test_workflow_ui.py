"""A whole esketamine session walked through the UI, offscreen, on simulated devices and a real
database: first start, login, check-in, baseline with a high BP and its reason, checklist, two
devices, keyboard scale entry, the scheduled BP measured by the device when due, quick events and a
note, the automatic lock (vitals stay live) with a handover, discharge and end."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from ketmonitor.audit import verify_chain
from ketmonitor.clock import ManualClock
from ketmonitor.runtime import MonitorRuntime
from ketmonitor.sources import create_source
from ketmonitor.store import open_db
from ketmonitor.users import Clinic
from tests.core.test_users import cheap_hasher
from tests.ui.conftest import monitor_with_workflow
from ui.monitor_window import MonitorWindow
from ui.tiles import DASHES
from ui.workflow import WorkflowUi
from ui.workflow.forms import CheckInForm, DischargeForm, DoseForm, PreDoseForm
from ui.workflow.scale_entry import value_complete


@pytest.fixture
def bedside(qtbot, db_path):
    clock = ManualClock(0.0)
    opts = dict(clock=clock, t0=0.0, seed=3, dose_at=120.0)
    sources = [create_source("sim-oximeter", "oximeter", **opts),
               create_source("sim-nibp", "nibp", interval_s=None, failure_rate=0.0, **opts)]
    rt = MonitorRuntime(db_path, sources, clock=clock, t0=0.0, commit_interval=0.05)
    rt.start()
    window = MonitorWindow(rt)
    qtbot.addWidget(window)
    window.resize(1500, 900)
    window.show()
    qtbot.waitExposed(window)
    window.start()
    lock_time = [0.0]
    wui = WorkflowUi(window, rt, hasher=cheap_hasher(), lock_timeout_s=300,
                     lock_clock=lambda: lock_time[0])
    yield window, rt, clock, wui, lock_time
    window.close()
    rt.stop()


def advance(qtbot, clock, wui, seconds, step=30.0):
    """Move simulated time on in steps, letting the devices, writer and UI keep up."""
    end = clock.monotonic() + seconds
    while clock.monotonic() < end:
        clock.advance(min(step, end - clock.monotonic()))
        qtbot.wait(5)
        wui.panel.tick() if wui.panel else None


def type_in(qtbot, widget, text):
    widget.clear()
    qtbot.keyClicks(widget, text)


def test_value_complete_rule():
    assert value_complete("3", 0, 4) and not value_complete("1", 0, 92)
    assert value_complete("-3", -5, 4) and not value_complete("-", -5, 4)
    assert not value_complete("7", 0, 4) and value_complete("6", 1, 6)


def test_whole_session_through_the_ui(bedside, qtbot):
    window, rt, clock, wui, lock_time = bedside

    # -- first start and login
    wui.begin()
    first = wui.dialog
    for field, text in ((first.clinic_name, "North clinic"), (first.admin_id, "admin"),
                        (first.admin_name, "Ada Admin"), (first.password, "Boss-key-2026x"),
                        (first.confirm, "Boss-key-2026y")):
        type_in(qtbot, field, text)
    qtbot.mouseClick(first.button, Qt.LeftButton)
    assert first.error.text() == "the two passwords differ"
    type_in(qtbot, first.confirm, "Boss-key-2026x")
    with qtbot.waitSignal(first.accepted, timeout=10000):  # hashed on the dialog's worker
        qtbot.mouseClick(first.button, Qt.LeftButton)
    assert first.user is not None and first.user.role == "admin"
    wui.auth.create_user(first.user, "nina", "Nina Nurse", "nurse", "Nurse-pass-2026",
                         must_change=False)
    wui.auth.create_user(first.user, "paula", "Paula Nurse", "nurse", "Ward-key-2026",
                         must_change=False)
    login = wui.dialog
    assert login is not first and login.isVisible()
    type_in(qtbot, login.user_id, "nina")
    type_in(qtbot, login.password, "wrong-Pass-1")
    qtbot.keyClick(login.password, Qt.Key_Return)
    qtbot.waitUntil(lambda: not login.busy, timeout=10000)
    assert "wrong" in login.error.text() and wui.panel is None
    type_in(qtbot, login.password, "Nurse-pass-2026")
    with qtbot.waitSignal(wui.ready, timeout=5000):
        qtbot.keyClick(login.password, Qt.Key_Return)
    panel, wf = wui.panel, wui.workflow
    assert "Nina Nurse" in panel.header.text()

    # -- check-in
    form = panel.step.currentWidget()
    assert isinstance(form, CheckInForm)
    type_in(qtbot, form.mrn, "MRN-0042")
    type_in(qtbot, form.name, "Robin Example")
    type_in(qtbot, form.birth_date, "1975-04-30")
    form.sex.setCurrentText("female")
    form.weight.setValue(68)
    form.protocol.setCurrentIndex(form.protocol.findData("esketamine-intranasal"))
    for box in form.rems.values():
        box.setCurrentText("no")
    form.rems["opioids"].setCurrentText("yes")
    qtbot.mouseClick(form.button, Qt.LeftButton)
    assert form.error.text() == "" and wf.state == "pre_dose"
    panel.tick()

    # -- pre-dose: baseline from the monitor plus a typed high BP; reason; checklist
    advance(qtbot, clock, wui, 60)
    qtbot.waitUntil(lambda: "spo2" in wui.latest(), timeout=5000)
    pre = panel.step.currentWidget()
    assert isinstance(pre, PreDoseForm)
    qtbot.mouseClick(pre.from_monitor, Qt.LeftButton)
    assert pre.fields["spo2"].text() != ""
    type_in(qtbot, pre.fields["nibp_systolic"], "152")
    type_in(qtbot, pre.fields["nibp_diastolic"], "94")
    qtbot.mouseClick(pre.baseline_button, Qt.LeftButton)
    assert pre.warning.isVisible() and pre.reason.isVisible()
    qtbot.mouseClick(pre.checklist_button, Qt.LeftButton)
    assert "checklist not complete" in pre.error.text()
    for box in pre.checks.values():
        box.setChecked(True)
    qtbot.mouseClick(pre.checklist_button, Qt.LeftButton)
    panel.tick()
    assert panel.step.currentWidget() is pre  # the reason is still missing
    type_in(qtbot, pre.reason, "Repeat after rest 146/88, physician agrees")
    qtbot.mouseClick(pre.reason_button, Qt.LeftButton)
    panel.tick()

    # -- two devices with the lot number, 5 minutes apart
    dose = panel.step.currentWidget()
    assert isinstance(dose, DoseForm) and dose.amount.text() == "28"
    type_in(qtbot, dose.lot, "LOT-42")
    qtbot.mouseClick(dose.give_button, Qt.LeftButton)
    assert wf.state == "dosing" and dose.error.text() == ""
    first_dose = wf.snapshot.first_dose_mono
    advance(qtbot, clock, wui, 120)
    assert "next device in 3:00" in dose.given.text()
    advance(qtbot, clock, wui, 180)
    assert "next device may be given" in dose.given.text()
    qtbot.mouseClick(dose.give_button, Qt.LeftButton)
    qtbot.mouseClick(dose.finish_button, Qt.LeftButton)
    panel.tick()
    assert wf.state == "monitoring" and panel.tabs.currentWidget() is panel.scales

    # -- MOAA/S at 15 min: the banner reminds, one keystroke and Enter records it
    advance(qtbot, clock, wui, first_dose + 14 * 60 - clock.monotonic())
    assert panel.banner.isVisible() and "MOAA/S at 15 min" in panel.banner.text()
    panel.scales.select("moaas")
    edit = panel.scales.items[1]
    qtbot.keyClicks(edit, "4")
    qtbot.keyClick(edit, Qt.Key_Return)
    assert panel.scales.error.text() == ""
    assert {t.id: t.state for t in wf.tasks()}["moaas@15"] == "done"

    # -- quick events and a note
    panel.tabs.setCurrentWidget(panel.events)
    qtbot.mouseClick(panel.events.buttons["nausea"], Qt.LeftButton)
    type_in(qtbot, panel.events.note, "Resting, eyes closed")
    qtbot.keyClick(panel.events.note, Qt.Key_Return)
    assert panel.events.last.text() == "Note recorded"
    panel.refresh()
    entries = panel.events.entries
    entries.setCurrentIndex(next(i for i in range(entries.count())
                                 if "note: Resting" in entries.itemText(i)))
    type_in(qtbot, panel.events.changes, "Resting, eyes open")
    qtbot.mouseClick(panel.events.amend_button, Qt.LeftButton)
    assert "needs a reason" in panel.events.error.text()
    type_in(qtbot, panel.events.amend_reason, "wrong word")
    qtbot.mouseClick(panel.events.amend_button, Qt.LeftButton)
    assert panel.events.last.text().startswith("Correction recorded")
    # doses, the scale score, the event and the note are on the trend timeline
    qtbot.waitUntil(lambda: len(window.trends.event_lines) >= 5, timeout=3000)
    assert window.dose_mono == first_dose

    # -- at 40 min the scheduled BP starts on the device by itself and fulfils its check
    advance(qtbot, clock, wui, first_dose + 40 * 60 - clock.monotonic())
    qtbot.waitUntil(lambda: rt.sources[1].measuring or rt.sources[1].measurements, timeout=5000)
    advance(qtbot, clock, wui, 60, step=5)
    qtbot.waitUntil(lambda: {t.id: t.state for t in wf.tasks()}["bp@40"] == "done", timeout=5000)

    # CADSS typed item after item; the focus moves on by itself
    panel.tabs.setCurrentWidget(panel.scales)
    panel.scales.select("cadss")
    items = panel.scales.items
    qtbot.keyClicks(items[1], "2")
    assert QApplication.focusWidget() is items[2]
    for n in range(2, 24):  # type into whatever has the focus: the chain moves by itself
        qtbot.keyClicks(QApplication.focusWidget(), "1")
    assert QApplication.focusWidget() is items[23]
    assert "total 24" in panel.scales.total_label.text()
    qtbot.keyClick(items[23], Qt.Key_Return)
    assert {t.id: t.state for t in wf.tasks()}["cadss@40"] == "done"

    # -- the automatic lock: controls locked, vitals live; unlocked by Paula = handover
    lock_time[0] += 301
    wui.lock.poll()
    assert wui.lock.lock.locked and not panel.isEnabled() and not window.nibp_button.isEnabled()
    spo2_before = rt.sources[0].last_data_mono
    advance(qtbot, clock, wui, 10, step=2)
    qtbot.waitUntil(lambda: rt.sources[0].last_data_mono > spo2_before, timeout=5000)
    window.frame(window.queue.drain())
    assert window.tiles["spo2"].isVisible() and window.tiles["spo2"].text() != DASHES
    overlay = wui.lock.overlay
    assert overlay.isVisible()
    type_in(qtbot, overlay.user_id, "paula")
    type_in(qtbot, overlay.password, "Ward-key-2026")
    qtbot.mouseClick(overlay.button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not wui.lock.lock.locked, timeout=10000)
    assert panel.isEnabled() and wf.user.id == "paula"
    panel.tick()
    assert "Paula Nurse" in panel.header.text()

    # the nurse locks the screen by hand; she unlocks it herself: no handover
    qtbot.mouseClick(panel.lock_button, Qt.LeftButton)
    assert wui.lock.lock.locked and overlay.isVisible()
    type_in(qtbot, overlay.user_id, "paula")
    type_in(qtbot, overlay.password, "Ward-key-2026")
    qtbot.keyClick(overlay.password, Qt.Key_Return)
    qtbot.waitUntil(lambda: not wui.lock.lock.locked, timeout=10000)
    assert wf.user.id == "paula"

    # -- discharge after the minimum monitoring time, counted from the last device. The oximeter
    # has shown what it had to; it stops here so the next 80 simulated minutes do not cost seconds
    # of tile drawing.
    rt.sources[0].stop()
    last_dose = wf.snapshot.last_dose_mono
    assert last_dose == first_dose + 300
    advance(qtbot, clock, wui, last_dose + 121 * 60 - clock.monotonic(), step=120)
    panel.tabs.setCurrentWidget(panel.step)
    dis = panel.step.currentWidget()
    assert isinstance(dis, DischargeForm)
    qtbot.mouseClick(dis.begin_button, Qt.LeftButton)
    assert wf.state == "discharge"
    type_in(qtbot, panel.bp_sys, "128")
    type_in(qtbot, panel.bp_dia, "80")
    qtbot.mouseClick(panel.bp_button, Qt.LeftButton)
    panel.scales.select("cadss")
    for n in range(1, 24):
        qtbot.keyClicks(panel.scales.items[n], "0")
    qtbot.keyClick(panel.scales.items[23], Qt.Key_Return)
    panel.tick()
    qtbot.mouseClick(dis.discharge_button, Qt.LeftButton)
    assert "give a reason" in dis.error.text()
    for box in dis.criteria.values():
        box.setChecked(True)
    qtbot.mouseClick(dis.discharge_button, Qt.LeftButton)
    assert dis.error.text() == "" and dis.end_button.isEnabled()
    qtbot.mouseClick(dis.end_button, Qt.LeftButton)
    assert wf.state == "ended"
    panel.tick()
    states = {t.id: t.state for t in wf.tasks()}
    assert states["bp@discharge"] == states["cadss@discharge"] == "done"
    assert states["cadss@pre"] == "overdue"  # not entered before the dose: shown as missed

    # -- what the record holds
    rt.writer.flush()
    db = open_db(rt.writer.path, readonly=True)
    kinds = [k for (k,) in db.conn.execute("SELECT kind FROM events ORDER BY id")]
    for kind in ("checkin", "baseline", "baseline.proceed", "checklist", "dose", "scale", "event",
                 "note", "amendment", "nibp.requested", "handover", "discharge"):
        assert kind in kinds, kind
    users = {u for (u,) in db.conn.execute(
        "SELECT DISTINCT user_id FROM events WHERE kind IN ('checkin', 'baseline', 'checklist',"
        " 'dose', 'scale', 'event', 'note', 'bp.manual', 'handover', 'discharge',"
        " 'workflow.state')")}
    assert users == {"nina", "paula"}
    lots = [r[0] for r in db.conn.execute("SELECT lot_number FROM doses")]
    assert lots == ["LOT-42", "LOT-42"]
    bp40 = json.loads(db.conn.execute("SELECT data FROM check_results WHERE check_id='bp@40'"
                                      ).fetchone()[0])
    assert bp40["source"] == "nibp"
    actions = [a for (a,) in db.conn.execute("SELECT action FROM audit_log")]
    assert {"session.handover", "session.unlock", "auth.failed", "auth.login"} <= set(actions)
    assert actions.count("session.handover") == 1
    verify_chain(db)
    db.conn.close()


class JumpingClock(ManualClock):
    def sleep_until(self, t_mono, stop=None):
        self.set(t_mono)
        return not (stop and stop.is_set())


def test_gui_demo_walk_through_runs_under_the_panel(qtbot, db_path):
    with monitor_with_workflow(qtbot, db_path, JumpingClock(0.0)) as (window, rt, wui):
        admin = wui.auth.first_start(Clinic("Demo"), "admin", "Ada Admin", "Boss-key-2026x")
        nurse = wui.auth.create_user(admin, "nina", "Nina Nurse", "nurse", "Nurse-pass-2026",
                                     must_change=False)
        wui.start_session(nurse)
        wui.start_walkthrough("im-injection")
        qtbot.waitUntil(lambda: wui.walk_report is not None, timeout=20000)
        assert wui.walk_report.completed and wui.workflow.state == "ended"
        qtbot.waitUntil(lambda: "Session ended" in wui.panel.header.text(), timeout=3000)
        qtbot.waitUntil(lambda: len(window.trends.event_lines) > 5, timeout=3000)
        # no BP device: every scheduled BP was entered by hand after the device request failed
        rows = rt.writer.run(lambda db: db.conn.execute(
            "SELECT count(*) FROM events WHERE kind='nibp.requested' AND data LIKE '%\"ok\": false%'"
        ).fetchone()[0])
        assert rows >= 1
