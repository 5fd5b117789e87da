"""The live monitor, offscreen, with real widgets, a real runtime on simulated devices and a real
database. Waits are on conditions (qtbot.waitUntil)."""

import sys

import pytest

from ketmonitor.clock import ManualClock, ScaledClock
from ketmonitor.runtime import MonitorRuntime
from ketmonitor.samples import Condition, DeviceStatus, Numeric, SessionEvent
from ketmonitor.simulation import simulated_sources
from ui.app import build_demo
from ui.monitor_window import MonitorWindow
from ui.tiles import DASHES


@pytest.fixture
def manual_window(qtbot, db_path):
    clock = ManualClock(0.0)
    rt = MonitorRuntime(db_path, [], clock=clock, t0=0.0)
    rt.start()
    w = MonitorWindow(rt)
    qtbot.addWidget(w)
    yield w, rt, clock
    w.close()
    rt.stop()


def num(metric, value, t, flags=()):
    return Numeric.of(metric, value, t_mono=t, t_wall=1_767_225_600.0 + t, source="ox",
                      flags=frozenset(flags))


def test_missing_values_show_dashes_never_numbers(manual_window):
    w, rt, clock = manual_window
    w.frame([num("spo2", 97, 1), num("pulse_rate", 72, 1)])
    assert w.tiles["spo2"].text() == "97" and w.tiles["pulse_rate"].text() == "72"
    w.frame([num("spo2", None, 2, {Condition.SENSOR_OFF}), num("pulse_rate", None, 2)])
    assert w.tiles["spo2"].text() == DASHES and w.tiles["pulse_rate"].text() == DASHES
    assert w.tiles["nibp"].text() == f"{DASHES}/{DASHES}"


def test_sensor_off_or_disconnect_clears_the_oximeter_tiles(qtbot, db_path):
    clock = ManualClock(0.0)
    sources = simulated_sources(clock=clock, t0=0.0)
    rt = MonitorRuntime(db_path, sources, clock=clock, t0=0.0)
    w = MonitorWindow(rt)  # not started: sources never run, we feed the window by hand
    qtbot.addWidget(w)
    w.frame([Numeric.of("spo2", 96, t_mono=1, t_wall=1.0, source="oximeter")])
    assert w.tiles["spo2"].text() == "96"
    w.frame([DeviceStatus("oximeter", False, frozenset({Condition.DISCONNECTED}), 2, 2.0, "gone")])
    assert w.tiles["spo2"].text() == DASHES
    assert "DISCONNECTED" in w.chips["oximeter"].text()


def test_device_chip_shows_notes_without_the_warning_colour(qtbot):
    from ui.monitor_window import DeviceChip

    chip = DeviceChip("ox")
    qtbot.addWidget(chip)
    chip.show_status(DeviceStatus("ox", True, frozenset(), 1, 1.0))
    plain = chip.styleSheet()
    chip.show_status(DeviceStatus("ox", True, frozenset({Condition.SMARTPOINT}), 2, 2.0))
    assert chip.text() == "ox: connected (SmartPoint)" and chip.styleSheet() == plain
    chip.show_status(DeviceStatus("ox", True, frozenset({Condition.PI_INVALID}), 2, 2.0))
    assert chip.text() == "ox: connected (PI invalid)" and chip.styleSheet() == plain
    chip.show_status(DeviceStatus("ox", True, frozenset({Condition.SMARTPOINT,
                                                         Condition.SPO2_DROPPING}), 3, 3.0))
    assert chip.text() == "ox: SpO2 dropping, SmartPoint" and chip.styleSheet() != plain


def test_values_age_visibly(manual_window):
    w, rt, clock = manual_window
    w.frame([num("spo2", 97, 0)])
    clock.advance(30)
    w._slow_refresh(w.session_seconds())
    assert "stale" in w.tiles["spo2"].note.text()
    assert w.tiles["spo2"].text() == "97"  # the value stays, marked old
    assert "#5c6168" in w.tiles["spo2"].value_label.styleSheet()


def test_held_value_is_marked_questionable(manual_window):
    w, rt, clock = manual_window
    w.frame([num("spo2", 95, 1, {Condition.HELD, Condition.SENSOR_OFF})])
    assert w.tiles["spo2"].text() == "95?"


def test_nibp_reading_shows_sys_dia_mean_and_time(manual_window):
    w, rt, clock = manual_window
    w.frame([num("cuff_pressure", 150, 10)])
    assert "cuff 150" in w.tiles["nibp"].status.text()
    w.frame([num("nibp_systolic", 128, 40), num("nibp_diastolic", 81, 40), num("nibp_mean", 97, 40)])
    assert w.tiles["nibp"].text() == "128/81"
    assert "mean 97" in w.tiles["nibp"].note.text()
    w.frame([Numeric.of("nibp_error", 87, t_mono=50, t_wall=1.0, source="nibp",
                        flags={Condition.NIBP_FAILED}, detail="loose cuff")])
    assert "failed: loose cuff" in w.tiles["nibp"].status.text()
    assert w.tiles["nibp"].text() == "128/81"  # a failed measurement does not erase the last one


def test_dose_event_starts_the_since_dose_clock(manual_window):
    w, rt, clock = manual_window
    clock.set(100)
    w.frame([SessionEvent("dose.given", 100, 1.0, {})])
    clock.set(100 + 65)
    w._slow_refresh(w.session_seconds())
    assert w.dose_label.text() == "since dose 0:01:05"
    assert w.trends.event_lines


def test_demo_window_fills_with_live_data_and_stores_it(qtbot, db_path):
    rt, w = build_demo(db_path, speed=120.0, scenario="uneventful", seed=3)
    qtbot.addWidget(w)
    rt.start()
    w.show()
    w.start()
    try:
        qtbot.waitUntil(lambda: w.tiles["spo2"].text() not in (DASHES, "") and
                        w.pleth.samples_seen > 300, timeout=15000)
        qtbot.waitUntil(lambda: w.tiles["nibp"].text() != f"{DASHES}/{DASHES}", timeout=20000)
        assert 90 <= float(w.tiles["spo2"].text().rstrip("?")) <= 100
    finally:
        w.close()
        rt.stop()
    from ketmonitor.store import open_db
    db = open_db(db_path)
    assert db["numerics"].count > 100 and db["waveform_chunks"].count > 10


def test_rendering_hundreds_of_frames_does_not_drop_none_references(qtbot, db_path):
    """PySide6 6.12.0 on Python < 3.12 decrements None's refcount on every void Qt call and aborts
    long-running apps (none_dealloc). Render a few hundred frames and check None's count holds."""
    import PySide6

    rt, w = build_demo(db_path, speed=60.0, seed=2)
    qtbot.addWidget(w)
    rt.start()
    w.show()
    try:
        def has_spo2():
            w.frame(w.queue.drain())
            return w.tiles["spo2"].text() != DASHES

        qtbot.waitUntil(has_spo2, timeout=10000)
        before = sys.getrefcount(None)
        for _ in range(400):
            w.frame(w.queue.drain())
            w._slow_refresh(w.session_seconds())
            w.repaint()
        after = sys.getrefcount(None)
    finally:
        w.close()
        rt.stop()
    assert after >= before - 50, (f"None refcount fell from {before} to {after} over 400 frames "
                                  f"(PySide6 {PySide6.__version__})")
    if sys.version_info < (3, 12):
        assert PySide6.__version__ != "6.12.0"
