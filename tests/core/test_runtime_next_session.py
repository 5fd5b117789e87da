"""The monitor goes on recording after a session ends: into a new session awaiting check-in, with
the alarms already on carried into its alarm log. Real runtime, writer and SQLite file."""

from __future__ import annotations

from ketmonitor.alarms import alarm_log
from ketmonitor.clock import ManualClock
from ketmonitor.runtime import MonitorRuntime
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
