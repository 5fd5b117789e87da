"""The alarm log: one row per alarm episode, one row per operator action on it.

``alarm_log`` holds condition, priority, start, end, the limits in force and the triggering value;
``alarm_actions`` every acknowledgement, audio pause and resume with user, role and time. Limit
changes are in ``events`` (alarm.limits_changed) and in the audit trail.
"""

from .schema import MIGRATIONS


@MIGRATIONS(name="0004_alarms")
def m0004_alarms(db):
    db.executescript(
        """
        CREATE TABLE alarm_log (
            id INTEGER PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES sessions(id),
            alarm_id TEXT NOT NULL,
            condition TEXT NOT NULL,
            label TEXT NOT NULL DEFAULT '',
            kind TEXT NOT NULL,                 -- limit, technical
            priority TEXT NOT NULL,             -- high, medium, low
            source TEXT,
            metric TEXT,
            direction TEXT,                     -- low, high (limit alarms)
            limit_value REAL,
            hysteresis REAL,
            delay_s REAL,
            limits TEXT NOT NULL DEFAULT '{}',  -- JSON: every limit in force on the metric
            trigger_value REAL,
            extreme_value REAL,
            end_value REAL,
            message TEXT NOT NULL DEFAULT '',
            start_mono REAL NOT NULL,
            start_wall REAL NOT NULL,
            start_utc TEXT NOT NULL,
            end_mono REAL,
            end_wall REAL,
            end_utc TEXT,
            latched INTEGER NOT NULL DEFAULT 0,
            UNIQUE (session_id, alarm_id)
        );
        CREATE INDEX alarm_log_session ON alarm_log(session_id, start_wall);

        CREATE TABLE alarm_actions (
            id INTEGER PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES sessions(id),
            action TEXT NOT NULL,               -- acknowledged, cleared, audio_paused, audio_resumed
            alarm_id TEXT,                      -- NULL: a pause or resume that covered no alarm
            t_mono REAL NOT NULL,
            t_wall REAL NOT NULL,
            t_utc TEXT NOT NULL,
            user_id TEXT,
            role TEXT,
            detail TEXT NOT NULL DEFAULT '{}'   -- JSON (pause duration, resume reason)
        );
        CREATE INDEX alarm_actions_session ON alarm_actions(session_id, alarm_id, t_wall);
        """
    )
