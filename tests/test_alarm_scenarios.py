"""Whole simulated sessions through the real runtime (simulators, dispatcher, ticker, writer): the
expected alarms are in the alarm log, with the limits in force and sensible times."""

from __future__ import annotations

import pytest

from ketmonitor.alarms import alarm_log, summarise_alarms
from ketmonitor.clock import ScaledClock
from ketmonitor.runtime import MonitorRuntime
from ketmonitor.simulation import simulated_sources
from ketmonitor.store import open_db

SPEED = 600.0  # simulated seconds per real second, as the headless demo


def run_session(db_path, scenario: str, minutes: float, seed: int = 1) -> tuple[str, list[dict]]:
    clock = ScaledClock(SPEED)
    sources = simulated_sources(scenario=scenario, seed=seed, clock=clock, t0=0.0,
                                until=minutes * 60.0)
    runtime = MonitorRuntime(db_path, sources, clock=clock, scenario=scenario, seed=seed, t0=0.0)
    sid = runtime.start()
    try:
        for s in sources:
            s.wait_stopped()
    finally:
        runtime.stop()
    db = open_db(db_path, readonly=True)
    try:
        return sid, alarm_log(db, sid), summarise_alarms(db, sid)
    finally:
        db.conn.close()


def by_condition(rows):
    out = {}
    for r in rows:
        out.setdefault(r["condition"], []).append(r)
    return out


def test_desaturation_raises_spo2_low_then_the_high_priority_desaturation(db_path):
    sid, rows, lines = run_session(db_path, "desaturation", 30)
    found = by_condition(rows)
    assert set(found) == {"spo2_low", "spo2_desat"}, lines
    low, desat = found["spo2_low"][0], found["spo2_desat"][0]
    assert (low["priority"], desat["priority"]) == ("medium", "high")
    # the model's episode runs 15-21 min after the dose at 5 min: 20-26 min into the session
    assert 20 * 60 < low["start_mono"] < desat["start_mono"] < 26 * 60
    assert low["trigger_value"] < 90 and desat["trigger_value"] < 85
    assert desat["extreme_value"] <= desat["trigger_value"]
    assert low["limits"] == {"spo2_desat": 85, "spo2_low": 90} and low["delay_s"] == 10
    assert low["end_mono"] is not None and low["end_mono"] < 28 * 60  # recovered in the session
    assert any("HIGH" in line and "SpO2 desaturation" in line for line in lines)


def test_hypertensive_surge_raises_nibp_high_on_a_reading(db_path):
    sid, rows, lines = run_session(db_path, "hypertensive-surge", 50)
    found = by_condition(rows)
    assert "nibp_systolic_high" in found, lines
    sys_high = found["nibp_systolic_high"][0]
    assert sys_high["trigger_value"] > 160 and sys_high["limit_value"] == 160
    assert sys_high["delay_s"] == 0 and sys_high["source"] is None
    assert not {c for c in found if c.startswith("spo2")}
    db = open_db(db_path, readonly=True)
    # raised on a completed reading, not on a delay: right after one (120 s simulated = 200 ms real,
    # room for a loaded machine)
    readings = [t for (t,) in db.conn.execute(
        "SELECT t_mono FROM numerics WHERE session_id=? AND metric='nibp_systolic'", (sid,))]
    db.conn.close()
    assert any(0 <= sys_high["start_mono"] - t < 120 for t in readings)


def test_device_disconnect_raises_a_technical_alarm_for_the_oximeter(db_path):
    sid, rows, lines = run_session(db_path, "device-disconnect", 30)
    found = by_condition(rows)
    gone = found.get("device_disconnected")
    assert gone, lines
    assert len(gone) == 1 and gone[0]["source"] == "oximeter" and gone[0]["kind"] == "technical"
    # disconnected 20-22 min after the dose at 5 min (upper bounds leave 200 ms of real time for a
    # loaded machine at 600x)
    assert 25 * 60 - 5 < gone[0]["start_mono"] < 25 * 60 + 120
    assert 26.5 * 60 < gone[0]["end_mono"] < 29 * 60
    assert not {c for c in found if c.startswith("spo2")}  # no values is no limit alarm


@pytest.mark.parametrize("scenario", ["uneventful"])
def test_an_uneventful_session_raises_no_physiological_alarm(db_path, scenario):
    sid, rows, lines = run_session(db_path, scenario, 30)
    assert not [r for r in rows if r["kind"] == "limit"], lines
