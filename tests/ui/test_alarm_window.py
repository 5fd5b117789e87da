"""The alarm parts inside the real MonitorWindow, fed through the real runtime's dispatcher."""

from __future__ import annotations

from ketmonitor.clock import ManualClock
from ketmonitor.runtime import MonitorRuntime
from ketmonitor.samples import Numeric
from ui import theme
from ui.monitor_window import MonitorWindow


def test_window_shows_the_banner_first_and_colours_the_tile(qtbot, db_path):
    clock = ManualClock(0.0)
    rt = MonitorRuntime(db_path, [], clock=clock, t0=0.0)  # not started: no threads, no session
    w = MonitorWindow(rt)
    qtbot.addWidget(w)
    ui = w.alarm_ui
    assert ui is not None and w.banner_layout.itemAt(0).widget() is ui.banner
    assert ui.controller.timer.isActive()
    for t in range(7):
        clock.set(t)
        rt.publish(Numeric.of("spo2", 81, t_mono=t, t_wall=clock.wall(), source="ox"))
    qtbot.waitUntil(lambda: ui.banner.priority == "high", timeout=3000)
    assert ui.banner.text.text() == "SpO2 desaturation 81 (< 85)"
    assert w.tiles["spo2"].alarm_priority == "high" and w.tiles["nibp"].alarm_priority is None
    assert f"solid {theme.ALARM_COLOURS['high']}" in w.tiles["spo2"].styleSheet()
    rt.publish(Numeric.of("nibp_systolic", 175, t_mono=7, t_wall=clock.wall(), source="cuff"))
    qtbot.waitUntil(lambda: w.tiles["nibp"].alarm_priority == "medium", timeout=3000)
    ui.banner.ack_button.click()
    assert ui.controller.snapshot.audio_priority is None
    assert ui.banner.priority == "high"  # acknowledged, still shown
    rt.publish(Numeric.of("spo2", 97, t_mono=8, t_wall=clock.wall(), source="ox"))
    qtbot.waitUntil(lambda: w.tiles["spo2"].alarm_priority is None, timeout=3000)
    assert ui.banner.priority == "medium"  # the NIBP alarm is what is left
    dlg = ui.open_list(w)
    qtbot.addWidget(dlg)
    limits = ui.open_limits(w)
    qtbot.addWidget(limits)
    assert "Sign in" in limits.info.text()  # no login yet: the limits are read-only
    w.close()
