"""Core tables: sessions, numerics, waveform chunks, device status and session events.

Times: ``*_utc`` columns are ISO 8601 UTC text; ``t_mono`` is seconds on the session's monotonic
clock (ordering and intervals); ``t_wall`` is epoch seconds UTC (the same instant as ``t_utc``, kept
numeric so time-range queries use an index).
"""

from .schema import MIGRATIONS


@MIGRATIONS(name="0001_core")
def m0001_core(db):
    db.executescript(
        """
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            created_utc TEXT NOT NULL,
            started_utc TEXT NOT NULL,
            ended_utc TEXT,
            status TEXT NOT NULL DEFAULT 'open',      -- open, ended, signed, cosigned, abandoned
            state TEXT NOT NULL DEFAULT 'monitoring', -- workflow step (workflow issue)
            protocol TEXT,
            patient_id TEXT,
            scenario TEXT,
            seed INTEGER,
            wall_anchor REAL NOT NULL,                -- epoch seconds at t_mono = mono_anchor
            mono_anchor REAL NOT NULL,
            last_seen_utc TEXT,                        -- heartbeat: last commit while open
            workstation TEXT,
            notes TEXT
        );
        CREATE INDEX sessions_started ON sessions(started_utc);
        CREATE INDEX sessions_status ON sessions(status);

        CREATE TABLE numerics (
            session_id TEXT NOT NULL REFERENCES sessions(id),
            source TEXT NOT NULL,
            metric TEXT NOT NULL,
            t_mono REAL NOT NULL,
            t_wall REAL NOT NULL,
            t_utc TEXT NOT NULL,
            value REAL,                                 -- NULL: the device said missing
            unit TEXT NOT NULL,
            flags TEXT NOT NULL DEFAULT '',             -- comma-separated condition names
            device_time TEXT,
            detail TEXT
        );
        CREATE INDEX numerics_session_metric ON numerics(session_id, metric, t_wall);

        CREATE TABLE waveform_chunks (
            id INTEGER PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES sessions(id),
            source TEXT NOT NULL,
            metric TEXT NOT NULL,
            rate_hz REAL NOT NULL,
            t_mono REAL NOT NULL,
            t_wall REAL NOT NULL,
            t_utc TEXT NOT NULL,
            n INTEGER NOT NULL,
            samples BLOB NOT NULL,                      -- little-endian int32
            sha256 TEXT NOT NULL,                       -- of samples; the signed record commits to it
            flags TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX waveform_session ON waveform_chunks(session_id, metric, t_wall);

        CREATE TABLE device_status (
            session_id TEXT NOT NULL REFERENCES sessions(id),
            source TEXT NOT NULL,
            t_mono REAL NOT NULL,
            t_wall REAL NOT NULL,
            t_utc TEXT NOT NULL,
            connected INTEGER NOT NULL,
            conditions TEXT NOT NULL DEFAULT '',
            message TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX device_status_session ON device_status(session_id, t_wall);

        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES sessions(id),
            kind TEXT NOT NULL,
            t_mono REAL NOT NULL,
            t_wall REAL NOT NULL,
            t_utc TEXT NOT NULL,
            user_id TEXT,
            data TEXT NOT NULL DEFAULT '{}'             -- JSON
        );
        CREATE INDEX events_session ON events(session_id, kind, t_wall);

        CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL                          -- JSON
        );
        """
    )
