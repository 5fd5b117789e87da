"""The alarm list and the limits dialog on real widgets, with a real engine."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog

from ketmonitor.alarms import AlarmConfig, AlarmEngine
from ketmonitor.clock import ManualClock
from ketmonitor.samples import Numeric
from ui.alarms import AlarmController, AlarmLimitsDialog, AlarmListWidget


def engine_with_events():
    clock = ManualClock(0.0)
    events = []
    return clock, AlarmEngine(clock=clock, emit=events.append), events


def feed(engine, clock, metric, values):
    for v in values:
        t = clock.monotonic()
        engine.feed(Numeric.of(metric, v, t_mono=t, t_wall=clock.wall(), source="ox"))
        engine.tick(t)
        clock.advance(1)


def test_list_shows_active_then_past(qtbot):
    clock, engine, _ = engine_with_events()
    controller = AlarmController(engine)
    table = AlarmListWidget(controller)
    qtbot.addWidget(table)
    assert table.rowCount() == 0
    feed(engine, clock, "pulse_rate", [130] * 11 + [100])  # raised then ended
    feed(engine, clock, "spo2", [88] * 11)
    engine.acknowledge("n1", "nurse")
    controller.refresh()
    rows = table.row_texts()
    assert [(r[1], r[2], r[3]) for r in rows] == [
        ("MEDIUM", "SpO2 low 88 (< 90)", "active, acknowledged"),
        ("MEDIUM", "Pulse rate high 130 (> 120)", "ended")]
    assert rows[0][4] == "" and rows[1][4] != ""


def test_nurse_changes_a_limit_but_not_a_priority(qtbot):
    _, engine, events = engine_with_events()
    dlg = AlarmLimitsDialog(engine, "nurse1", "nurse")
    qtbot.addWidget(dlg)
    eds = dlg.editors["spo2_low"]
    assert eds["limit"].isEnabled() and not eds["priority"].isEnabled()
    assert not eds["delay_s"].isEnabled() and "clinic settings" in dlg.info.text()
    eds["limit"].setValue(92)
    assert dlg.pending_changes() == {"spo2_low": {"limit": 92}}
    dlg.apply()
    assert dlg.result() == QDialog.DialogCode.Accepted.value
    assert engine.spec("spo2_low").limit == 92
    ev = [e for e in events if e.kind == "alarm.limits_changed"]
    assert [(e.data["field"], e.data["old"], e.data["new"], e.user_id) for e in ev] == [
        ("limit", 90, 92, "nurse1")]


def test_bad_limits_keep_the_dialog_open_and_change_nothing(qtbot):
    _, engine, events = engine_with_events()
    dlg = AlarmLimitsDialog(engine, "nurse1", "nurse")
    qtbot.addWidget(dlg)
    dlg.show()
    dlg.editors["spo2_desat"]["limit"].setValue(95)  # above SpO2 low (90)
    dlg.apply()
    assert dlg.isVisible() and "desaturation" in dlg.error.text()
    assert engine.spec("spo2_desat").limit == 85 and events == []


def test_moving_both_limits_past_each_other_is_applied_as_one_set(qtbot):
    # a clinic whose range lets the low pulse limit go above today's high one
    engine = AlarmEngine(AlarmConfig.from_dict({"conditions": {"pulse_rate_low": {
        "limit_max": 140}}}), clock=ManualClock(0.0))
    dlg = AlarmLimitsDialog(engine, "a1", "admin")
    qtbot.addWidget(dlg)
    dlg.editors["pulse_rate_low"]["limit"].setValue(130)
    dlg.editors["pulse_rate_high"]["limit"].setValue(150)
    dlg.editors["pulse_rate_high"]["priority"].setCurrentText("high")
    dlg.apply()
    assert dlg.error.text() == ""
    assert (engine.spec("pulse_rate_low").limit, engine.spec("pulse_rate_high").limit) == (130, 150)
    assert engine.spec("pulse_rate_high").priority.value == "high"


def test_auditor_and_anonymous_users_cannot_edit(qtbot):
    _, engine, _ = engine_with_events()
    for user, role, why in (("aud1", "auditor", "may not change"), (None, None, "Sign in")):
        dlg = AlarmLimitsDialog(engine, user, role)
        qtbot.addWidget(dlg)
        assert why in dlg.info.text()
        assert not any(ed.isEnabled() for eds in dlg.editors.values() for ed in eds.values())
