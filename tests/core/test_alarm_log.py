"""The alarm log in a real SQLite file: written by the store listener on the writer thread."""

from __future__ import annotations

import json

import pytest

from ketmonitor.alarms import (AlarmConfig, AlarmEngine, alarm_log, alarm_log_listener,
                               load_alarm_config, summarise_alarms)
from ketmonitor.audit import verify_chain
from ketmonitor.clock import ManualClock, utc_iso
from ketmonitor.dispatch import Dispatcher
from ketmonitor.errors import ConfigError
from ketmonitor.samples import Condition, DeviceStatus, Numeric
from ketmonitor.store import StoreWriter, open_db

SID = "s-1"


@pytest.fixture
def rig(tmp_path):
    path = tmp_path / "k.db"
    clock = ManualClock(0.0)
    writer = StoreWriter(path, commit_interval=0.05).start()
    writer.run(lambda db: db["sessions"].insert({
        "id": SID, "created_utc": utc_iso(clock.wall()), "started_utc": utc_iso(clock.wall()),
        "wall_anchor": clock.wall(), "mono_anchor": 0.0}))
    d = Dispatcher()
    engine = AlarmEngine(AlarmConfig.from_dict({"settings": {"latching": True}}), clock=clock,
                         emit=d.publish)
    d.add_listener(writer.listener(SID))
    d.add_listener(alarm_log_listener(writer, SID))
    d.add_listener(engine.feed)
    yield clock, d, engine, writer, path
    writer.stop()


def spo2(d, clock, t, v):
    clock.set(t)
    d.publish(Numeric.of("spo2", v, t_mono=t, t_wall=clock.wall(), source="ox"))


def test_alarms_actions_and_limit_changes_are_logged(rig):
    clock, d, engine, writer, path = rig
    for t in range(12):
        spo2(d, clock, t, 84 if t < 11 else 86)  # desat raised at 5, low at 10; desat ends at 11
        engine.tick(t)
    engine.pause_audio("nurse1", "nurse", now=12)
    engine.acknowledge("nurse2", "nurse", now=13)  # clears latched desat, acks spo2 low
    engine.set_limit("spo2_low", user_id="nurse2", role="nurse", limit=85, now=14)  # ends spo2 low
    clock.set(20)
    d.publish(DeviceStatus("ox", False, frozenset({Condition.DISCONNECTED}), 20, clock.wall(),
                           "no response on the device link"))
    writer.flush()

    db = open_db(path, readonly=True)
    rows = alarm_log(db, SID)
    assert [(r["condition"], r["priority"], r["start_mono"], r["end_mono"]) for r in rows] == [
        ("spo2_desat", "high", 5, 11), ("spo2_low", "medium", 10, 14),
        ("device_disconnected", "medium", 20, None)]
    desat, low, gone = rows
    assert desat["trigger_value"] == 84 and desat["limit_value"] == 85 and desat["latched"]
    assert desat["limits"] == {"spo2_desat": 85, "spo2_low": 90}
    assert desat["start_utc"] == utc_iso(clock.wall() - 15)
    assert [(a["action"], a["user_id"]) for a in desat["actions"]] == [
        ("audio_paused", "nurse1"), ("cleared", "nurse2")]
    assert [(a["action"], a["user_id"], a["role"]) for a in low["actions"]] == [
        ("audio_paused", "nurse1", "nurse"), ("acknowledged", "nurse2", "nurse")]
    assert low["actions"][0]["detail"] == {"duration_s": 120}
    assert low["end_value"] == 86 and not low["latched"]  # acknowledged before it ended
    assert gone["source"] == "ox" and gone["message"] == "no response on the device link"

    kinds = [k for (k,) in db.conn.execute("SELECT kind FROM events WHERE session_id=? ORDER BY id",
                                           (SID,))]
    assert kinds.count("alarm.raised") == 3 and "alarm.limits_changed" in kinds
    audit = db.conn.execute("SELECT user_id, action, entity_id, detail FROM audit_log").fetchall()
    assert [(u, a) for u, a, _e, _d in audit] == [
        ("nurse1", "alarm.audio_paused"), ("nurse2", "alarm.acknowledged"),
        ("nurse2", "alarm.limits_changed")]
    paused, acked = json.loads(audit[0][3]), json.loads(audit[1][3])
    assert paused["conditions"] == ["spo2_desat", "spo2_low"] and paused["duration_s"] == 120
    assert not paused["locked"] and paused["role"] == "nurse"
    assert acked["alarm_ids"] == [low["alarm_id"], desat["alarm_id"]]
    assert acked["cleared"] == [desat["alarm_id"]]
    assert audit[2][2:] == ("spo2_low", json.dumps(
        {"field": "limit", "new": 85, "old": 90, "role": "nurse"}, separators=(",", ":")))
    assert verify_chain(db).rows == 3

    lines = summarise_alarms(db, SID)
    assert len(lines) == 3
    assert "HIGH" in lines[0] and "SpO2 desaturation 84 (< 85)" in lines[0]
    assert "acknowledged by nurse2" in lines[0]
    assert "lasted 4s" in lines[1]
    assert "Device disconnected" in lines[2] and "still active" in lines[2]
    db.conn.close()


def test_alarm_log_of_another_session_is_empty(rig):
    clock, d, engine, writer, path = rig
    for t in range(12):
        spo2(d, clock, t, 80)
        engine.tick(t)
    writer.flush()
    db = open_db(path, readonly=True)
    assert len(alarm_log(db, SID)) == 2
    assert alarm_log(db, "other") == [] and summarise_alarms(db, "other") == []
    db.conn.close()


def test_clinic_settings_and_protocol_combine(tmp_path):
    db = open_db(tmp_path / "k.db")
    assert load_alarm_config(db) == AlarmConfig()
    db["settings"].insert({"key": "alarms", "value": json.dumps(
        {"settings": {"latching": True}, "conditions": {"spo2_low": {"limit": 92, "delay_s": 15}}})})
    cfg = load_alarm_config(db, {"conditions": {"spo2_low": {"limit": 93}}})
    assert cfg.settings.latching and cfg.specs["spo2_low"].limit == 93
    assert cfg.specs["spo2_low"].delay_s == 15
    with pytest.raises(ConfigError):
        load_alarm_config(db, {"conditions": {"spo2_low": {"limit": 300}}})


def test_actions_at_a_locked_screen_are_recorded_as_such(rig):
    clock, d, engine, writer, path = rig
    for t in range(12):
        spo2(d, clock, t, 88)
        engine.tick(t)
    engine.pause_audio("nurse1", "nurse", now=12, locked=True)
    engine.resume_audio("nurse1", "nurse", now=13, locked=True)
    engine.acknowledge("nurse1", "nurse", now=14, locked=True)
    writer.flush()
    db = open_db(path, readonly=True)
    (low,) = alarm_log(db, SID)
    assert [(a["action"], a["user_id"], a["role"], a["detail"].get("locked")) for a in
            low["actions"]] == [("audio_paused", None, None, True),
                                ("audio_resumed", None, None, True),
                                ("acknowledged", None, None, True)]
    audit = [(u, a, json.loads(det)["locked"]) for u, a, det in db.conn.execute(
        "SELECT user_id, action, detail FROM audit_log ORDER BY seq")]
    assert audit == [(None, "alarm.audio_paused", True), (None, "alarm.audio_resumed", True),
                     (None, "alarm.acknowledged", True)]
    assert "acknowledged by unknown user" in summarise_alarms(db, SID)[0]
    verify_chain(db)
    db.conn.close()
