"""Indexes for the session browser (review issue): every filter of ``ketmonitor.review`` finds its
sessions through an index, so filtering stays fast on thousands of sessions.

Only indexes: no table is added, so the sealed-session triggers and the signed records are unchanged.
"""

from .schema import MIGRATIONS


@MIGRATIONS(name="0007_review")
def m0007_review(db):
    db.executescript(
        """
        CREATE INDEX IF NOT EXISTS sessions_patient ON sessions(patient_id, started_utc);
        CREATE INDEX IF NOT EXISTS sessions_protocol ON sessions(protocol, started_utc);
        CREATE INDEX IF NOT EXISTS events_user ON events(user_id, session_id);
        CREATE INDEX IF NOT EXISTS alarm_log_priority ON alarm_log(priority, session_id);
        CREATE INDEX IF NOT EXISTS session_records_kind ON session_records(kind, session_id);
        CREATE INDEX IF NOT EXISTS record_signatures_signer ON record_signatures(signer_id, record_id);
        CREATE INDEX IF NOT EXISTS patients_name ON patients(name COLLATE NOCASE);
        """
    )
