"""The demo GUI as `make demo` opens it: monitor plus login prefilled for the demo nurse; logging in
brings the workflow panel, and the alarm UI knows who is at the bedside."""

from types import SimpleNamespace

from PySide6.QtWidgets import QApplication

from ketmonitor.demo_walkthrough import DEMO_NURSE, DEMO_NURSE_PASSWORD
from ui.app import attach_workflow, build_demo


def test_demo_gui_logs_in_the_demo_nurse_and_shows_the_workflow(qtbot, db_path):
    rt, w = build_demo(db_path, speed=60.0, simulate_dose=False)
    qtbot.addWidget(w)
    rt.start()
    w.show()
    w.start()
    try:
        wui = attach_workflow(w, rt, demo=True)
        dlg = wui.dialog
        assert dlg.user_id.text() == DEMO_NURSE.id
        dlg.password.setText(DEMO_NURSE_PASSWORD)
        dlg.button.click()
        qtbot.waitUntil(lambda: wui.panel is not None, timeout=10000)
        qtbot.waitUntil(wui.panel.isVisible, timeout=5000)
        assert w.alarm_ui.controller.user() == (DEMO_NURSE.id, "nurse")
    finally:
        w.close()
        rt.stop()
