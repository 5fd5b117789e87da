"""The next patient on the same monitor starts on the clinic's alarm limits: the previous patient's
bedside changes go (tiles no longer say "Limit changed"), and a limit the next protocol does not set
is the clinic's, not what the previous patient had. Real window, runtime, writer and SQLite file."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from ketmonitor.runtime import RESTORE_REASON
from ketmonitor.samples import Numeric
from ketmonitor.store import open_db
from tests.core.test_workflow import patient
from tests.ui.conftest import shot
from ui.workflow.sign import SessionEndForm


def vitals(rt, clock, spo2=96):
    rt.publish(Numeric.of("spo2", spo2, t_mono=clock.monotonic(), t_wall=clock.wall(),
                          source="ox"))
    for metric, value in (("nibp_systolic", 128), ("nibp_diastolic", 80), ("nibp_mean", 96)):
        rt.publish(Numeric.of(metric, value, t_mono=clock.monotonic(), t_wall=clock.wall(),
                              source="cuff"))
    clock.advance(1)


def test_next_patient_gets_the_clinics_limits_not_the_last_patients(nurse_bedside, qtbot):
    window, rt, clock, wui, lock_time = nurse_bedside
    engine, ui = rt.alarms, window.alarm_ui
    first_wf, first = wui.workflow, rt.session_id
    first_wf.check_in(patient(), "esketamine-intranasal")
    dlg = ui.open_limits()  # the nurse adapts limits to this patient
    qtbot.addWidget(dlg)
    dlg.editors["spo2_low"]["limit"].setValue(93)
    dlg.editors["nibp_mean_low"]["limit"].setValue(70)
    dlg.apply()
    vitals(rt, clock)
    spo2_tile, nibp_tile = window.tiles["spo2"], window.tiles["nibp"]
    qtbot.waitUntil(lambda: spo2_tile.limit_note.isVisible() and nibp_tile.limit_note.isVisible(),
                    timeout=3000)
    assert nibp_tile.limit_note.text() == "Limit changed: NIBP mean low < 70 (default 60)"
    shot(window, "next-patient-1-bedside-limits")

    first_wf.abandon("patient asked to stop before the dose")
    wui.panel.tick()
    form = wui.panel.step.currentWidget()
    assert isinstance(form, SessionEndForm)
    qtbot.mouseClick(form.next_button, Qt.LeftButton)
    assert wui.workflow is not first_wf and wui.workflow.state == "check_in"
    second = rt.session_id
    assert second != first
    assert engine.changed_limits() == ()
    assert (engine.spec("spo2_low").limit, engine.spec("nibp_mean_low").limit) == (90, 60)
    vitals(rt, clock)
    qtbot.waitUntil(lambda: not spo2_tile.limit_note.isVisible()
                    and not nibp_tile.limit_note.isVisible(), timeout=3000)
    qtbot.waitUntil(lambda: wui.panel.header.text().startswith("Awaiting check-in"), timeout=3000)
    QApplication.processEvents()  # pending layout requests, before the picture
    shot(window, "next-patient-2-awaiting-check-in")

    # sublingual-oral sets no NIBP mean limits: the clinic's stays in force
    wui.workflow.check_in(patient("MRN-2"), "sublingual-oral")
    assert engine.spec("nibp_mean_low").limit == 60 and engine.changed_limits() == ()
    rt.writer.flush()
    db = open_db(rt.writer.path, readonly=True)
    rows = db.conn.execute("SELECT user_id, session_id, entity_id, detail FROM audit_log WHERE"
                           " action = 'alarm.limits_changed' ORDER BY seq").fetchall()
    db.conn.close()
    restored = [(u, s, e, json.loads(d)["old"], json.loads(d)["new"]) for u, s, e, d in rows
                if json.loads(d).get("reason") == RESTORE_REASON]
    assert sorted(restored) == [("nina", second, "nibp_mean_low", 70, 60),
                                ("nina", second, "spo2_low", 93, 90)]
