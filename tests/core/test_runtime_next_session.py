"""The monitor goes on recording after a session ends: into a new session awaiting check-in, with
the alarms already on carried into its alarm log and the clinic's alarm configuration back in
force. Real runtime, writer and SQLite file."""

from __future__ import annotations

import json

from ketmonitor.alarms import alarm_log
from ketmonitor.audit import verify_chain
from ketmonitor.clock import ManualClock
from ketmonitor.runtime import RESTORE_REASON, MonitorRuntime
from ketmonitor.samples import Numeric
from ketmonitor.store import open_db
from tests.waiting import wait_for


def spo2(rt, clock, value, seconds):
    for _ in range(seconds):
        rt.publish(Numeric.of("spo2", value, t_mono=clock.monotonic(), t_wall=clock.wall(),
                              source="ox"))
        clock.advance(1)


def test_next_session_takes_the_samples_and_the_active_alarms(db_path):
    clock = ManualClock(0.0)
    rt = MonitorRuntime(db_path, [], clock=clock, t0=0.0, commit_interval=0.05)
    first = rt.start()
    try:
        spo2(rt, clock, 82, 7)  # desaturation raised at 5 s
        wait_for(lambda: rt.alarms.snapshot().top is not None)
        second = rt.next_session(user_id="nina")
        assert second != first and rt.session_id == second
        spo2(rt, clock, 97, 3)  # ends the desaturation, in the new session
        rt.writer.flush()
        db = open_db(db_path, readonly=True)
        q = db.conn.execute
        assert q("SELECT state, status, ended_utc FROM sessions WHERE id = ?",
                 (second,)).fetchone() == ("check_in", "open", None)
        n = {sid: q("SELECT count(*) FROM numerics WHERE session_id = ?", (sid,)).fetchone()[0]
             for sid in (first, second)}
        assert n == {first: 7, second: 3}
        (old,) = [r for r in alarm_log(db, first) if r["condition"] == "spo2_desat"]
        (new,) = [r for r in alarm_log(db, second) if r["condition"] == "spo2_desat"]
        assert old["alarm_id"] == new["alarm_id"] and old["start_mono"] == new["start_mono"] == 5
        assert old["end_mono"] is None  # still on when the first session stopped recording
        assert new["end_mono"] == 7 and new["end_value"] == 97
        continued = q("SELECT data, user_id FROM events WHERE session_id = ? AND kind ="
                      " 'session.continued'", (second,)).fetchone()
        assert first in continued[0] and continued[1] == "nina"
        carried = q("SELECT data FROM events WHERE session_id = ? AND kind = 'alarm.raised'",
                    (second,)).fetchall()
        assert carried and all('"carried_over": true' in d for (d,) in carried)
        db.conn.close()
    finally:
        rt.stop()


def clinic_settings(db_path, settings: dict) -> None:
    db = open_db(db_path)
    with db.conn:
        db.conn.execute("INSERT OR REPLACE INTO settings (key, value) VALUES ('alarms', ?)",
                        (json.dumps(settings),))
    db.conn.close()


def test_the_next_patient_gets_the_clinics_alarm_configuration_back(db_path):
    """The previous patient's protocol limits (one the next protocol may not set at all) and the
    bedside changes go; the clinic's settings, not only the defaults, come back, recorded in the
    new session; a carried-over alarm the clinic's limit no longer raises ends there."""
    clinic_settings(db_path, {"conditions": {"spo2_low": {"limit": 91}}})
    clock = ManualClock(0.0)
    rt = MonitorRuntime(db_path, [], clock=clock, t0=0.0, commit_interval=0.05)
    first = rt.start()
    engine = rt.alarms
    try:
        assert engine.spec("spo2_low").limit == 91  # the clinic's setting
        engine.apply_limits({"spo2_low": 94, "nibp_mean_low": 70}, user_id="nina", role="nurse",
                            reason="protocol strict")  # as a check-in applies them
        engine.set_limit("pulse_rate_high", user_id="nina", role="nurse", limit=130)
        engine.set_limit("spo2_desat", user_id="admin", role="admin", delay_s=10)
        spo2(rt, clock, 93, 12)  # SpO2 low by the protocol's 94, raised at 10 s
        wait_for(lambda: [a for a in engine.snapshot().alarms if a.condition == "spo2_low"])

        second = rt.next_session(user_id="nina")
        assert {k: engine.spec(k).limit for k in ("spo2_low", "nibp_mean_low",
                                                  "pulse_rate_high")} == {
            "spo2_low": 91, "nibp_mean_low": 60, "pulse_rate_high": 120}
        assert engine.spec("spo2_desat").delay_s == 5
        assert engine.changed_limits() == () and engine.limit_defaults()["spo2_low"] == 91
        assert not [a for a in engine.snapshot().alarms if a.condition == "spo2_low"]  # 93 > 91+1

        rt.writer.flush()
        db = open_db(db_path, readonly=True)
        audit = [(s, e, json.loads(d)) for s, e, d in db.conn.execute(
            "SELECT session_id, entity_id, detail FROM audit_log WHERE action ="
            " 'alarm.limits_changed' ORDER BY seq")]
        restored = [(s, e, d["field"], d["old"], d["new"]) for s, e, d in audit
                    if d.get("reason") == RESTORE_REASON]
        assert sorted(restored) == sorted([
            (second, "spo2_low", "limit", 94, 91), (second, "nibp_mean_low", "limit", 70, 60),
            (second, "pulse_rate_high", "limit", 130, 120),
            (second, "spo2_desat", "delay_s", 10, 5)])
        events = db.conn.execute("SELECT count(*) FROM events WHERE session_id = ? AND kind ="
                                 " 'alarm.limits_changed'", (second,)).fetchone()[0]
        assert events == 4
        (low,) = [r for r in alarm_log(db, second) if r["condition"] == "spo2_low"]
        assert low["start_mono"] == 10 and low["end_mono"] == 12  # carried over, then ended
        (old_low,) = [r for r in alarm_log(db, first) if r["condition"] == "spo2_low"]
        assert old_low["end_mono"] is None  # the first session's record stays as it stopped
        db.conn.close()
        rt.writer.run(verify_chain)
    finally:
        rt.stop()


def test_bad_clinic_settings_leave_the_limits_and_say_so(db_path):
    clock = ManualClock(0.0)
    rt = MonitorRuntime(db_path, [], clock=clock, t0=0.0, commit_interval=0.05)
    rt.start()
    try:
        rt.alarms.apply_limits({"spo2_low": 94}, user_id="nina", role="nurse", reason="protocol p")
        rt.writer.run(lambda db: db.conn.execute(  # an administrator's typo, after the start
            "INSERT OR REPLACE INTO settings (key, value) VALUES ('alarms', ?)",
            (json.dumps({"conditions": {"spo2_low": {"limitt": 91}}}),)))
        second = rt.next_session(user_id="nina")
        assert rt.session_id == second and rt.alarms.spec("spo2_low").limit == 94
        rt.writer.flush()
        (data,) = rt.writer.run(lambda db: db.conn.execute(
            "SELECT data FROM events WHERE session_id = ? AND kind = 'alarm.restore_failed'",
            (second,)).fetchone())
        assert "limitt" in json.loads(data)["error"]
    finally:
        rt.stop()
