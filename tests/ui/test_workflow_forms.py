"""The step forms on the real panel: a device outside the protocol needs a reason, a correction
lists and keeps to the entry's correctable fields, entries wait for check-in."""

from __future__ import annotations

import json

import pytest

from PySide6.QtCore import Qt

from ketmonitor.patients import Patient
from ketmonitor.protocols import load_protocol
from tests.ui.conftest import shot
from ui.workflow.forms import DoseForm

ESK = load_protocol("esketamine-intranasal")


def type_in(qtbot, widget, text):
    widget.clear()
    qtbot.keyClicks(widget, text)


def ready_to_dose(wf):
    wf.check_in(Patient("MRN-7", "Robin Example", "1975-04-30", "female", 68.0), ESK)
    wf.record_baseline(nibp_systolic=128, nibp_diastolic=80, spo2=98, pulse_rate=72)
    wf.confirm_checklist({i.id: True for i in ESK.pre_dose_checklist})


def test_a_device_too_soon_needs_a_recorded_reason(nurse_bedside, qtbot):
    window, rt, clock, wui, _ = nurse_bedside
    panel, wf = wui.panel, wui.workflow
    ready_to_dose(wf)
    panel.tick()
    dose = panel.step.currentWidget()
    assert isinstance(dose, DoseForm)
    type_in(qtbot, dose.lot, "LOT-42")
    qtbot.mouseClick(dose.give_button, Qt.LeftButton)
    assert wf.snapshot.doses == 1 and not dose.deviation.isVisible()
    clock.advance(10)
    qtbot.mouseClick(dose.give_button, Qt.LeftButton)
    assert wf.snapshot.doses == 1  # refused
    assert dose.deviation.isVisible() and dose.deviation_reason.isVisible()
    assert "device 2 comes 0:10 after the previous one" in dose.deviation.text()
    panel.tabs.setCurrentWidget(panel.step)
    shot(panel, "dose-deviation")
    qtbot.mouseClick(dose.deviation_button, Qt.LeftButton)
    assert "needs a reason" in dose.error.text() and wf.snapshot.doses == 1
    type_in(qtbot, dose.deviation_reason, "first device not fully sprayed")
    qtbot.mouseClick(dose.deviation_button, Qt.LeftButton)
    assert wf.snapshot.doses == 2 and not dose.deviation.isVisible()
    assert dose.error.text() == "" and dose.deviation_reason.text() == ""
    rt.writer.flush()
    data = rt.writer.run(lambda db: json.loads(db.conn.execute(
        "SELECT data FROM events WHERE kind='dose' ORDER BY id DESC LIMIT 1").fetchone()[0]))
    assert data["deviation_reason"] == "first device not fully sprayed"


def test_a_correction_keeps_to_the_entrys_fields(nurse_bedside, qtbot):
    window, rt, clock, wui, _ = nurse_bedside
    panel, wf = wui.panel, wui.workflow
    ready_to_dose(wf)
    wf.give_dose(drug="esketamine", amount=28, unit="mg", route="intranasal", lot_number="LOT-4")
    panel.tick()
    ev = panel.events
    panel.tabs.setCurrentWidget(ev)
    ev.reload_entries()
    ev.entries.setCurrentIndex(next(i for i in range(ev.entries.count())
                                    if "lot LOT-4" in ev.entries.itemText(i)))
    assert "lot_number=AB12" in ev.changes.placeholderText()
    assert ev.changes.toolTip() == "Correctable: drug, amount, unit, lot_number"
    shot(panel, "correction-hint")
    type_in(qtbot, ev.changes, "user_id=paula")
    type_in(qtbot, ev.amend_reason, "wrong nurse")
    qtbot.mouseClick(ev.amend_button, Qt.LeftButton)
    assert "user_id cannot be corrected" in ev.error.text()
    type_in(qtbot, ev.changes, "amount=-28")
    type_in(qtbot, ev.amend_reason, "typo")
    qtbot.mouseClick(ev.amend_button, Qt.LeftButton)
    assert "must be a number above 0" in ev.error.text()
    type_in(qtbot, ev.changes, "lot_number=LOT-44")
    qtbot.mouseClick(ev.amend_button, Qt.LeftButton)
    assert ev.error.text() == "" and ev.last.text().startswith("Correction recorded")
    rows = rt.writer.run(lambda db: db.conn.execute(
        "SELECT target_table, changes FROM amendments").fetchall())
    assert rows == [("doses", json.dumps({"lot_number": "LOT-44"}))]


def test_the_panel_says_the_session_awaits_check_in(nurse_bedside, qtbot):
    window, rt, clock, wui, _ = nurse_bedside
    panel, wf = wui.panel, wui.workflow
    panel.refresh()
    assert wf.state == "check_in"
    assert panel.header.text().startswith("Awaiting check-in")
    assert not panel.tabs.isTabEnabled(1) and not panel.tabs.isTabEnabled(2)
    type_in(qtbot, panel.bp_sys, "120")
    type_in(qtbot, panel.bp_dia, "80")
    qtbot.mouseClick(panel.bp_button, Qt.LeftButton)
    assert "before check-in: check the patient in first" in panel.task_error.text()
    panel.tabs.setCurrentIndex(3)
    shot(panel, "awaiting-check-in-tasks")


def test_a_clinic_folder_with_only_protocols_works(qtbot, db_path, tmp_path):
    from ketmonitor.clock import ManualClock
    from ketmonitor.errors import ConfigError
    from ketmonitor.protocols import BUILTIN_DIR
    from ketmonitor.runtime import MonitorRuntime
    from ketmonitor.users import Clinic
    from tests.core.test_users import cheap_hasher
    from ui.monitor_window import MonitorWindow
    from ui.workflow import WorkflowUi

    clinic = tmp_path / "clinic"
    (clinic / "protocols").mkdir(parents=True)  # no scales/ subfolder
    data = json.loads((BUILTIN_DIR / "im-injection.json").read_text())
    data.update(name="im-north", title="IM, North clinic")
    (clinic / "protocols" / "im-north.json").write_text(json.dumps(data))
    rt = MonitorRuntime(db_path, [], clock=ManualClock(0.0), t0=0.0, commit_interval=0.05)
    rt.start()
    window = MonitorWindow(rt)
    qtbot.addWidget(window)
    try:
        with pytest.raises(ConfigError, match="clinic folder .*nowhere does not exist"):
            WorkflowUi(window, rt, clinic_dir=tmp_path / "nowhere")
        wui = WorkflowUi(window, rt, clinic_dir=clinic, hasher=cheap_hasher())
        admin = wui.auth.first_start(Clinic("North"), "admin", "Ada Admin", "Boss-key-2026x")
        nurse = wui.auth.create_user(admin, "nina", "Nina Nurse", "nurse", "Nurse-pass-2026",
                                     must_change=False)
        wui.start_session(nurse)
        assert "im-north" in wui.panel.protocols and "cadss" in wui.workflow.scales
        wui.lock.close()
    finally:
        window.close()
        rt.stop()
