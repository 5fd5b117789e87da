"""The audit trail: append-only, hash-chained. Triggers refuse UPDATE and DELETE."""

from .schema import MIGRATIONS


@MIGRATIONS(name="0002_audit")
def m0002_audit(db):
    db.executescript(
        """
        CREATE TABLE audit_log (
            seq INTEGER PRIMARY KEY,
            t_utc TEXT NOT NULL,
            user_id TEXT,
            action TEXT NOT NULL,
            session_id TEXT,
            entity TEXT,
            entity_id TEXT,
            detail TEXT NOT NULL DEFAULT '{}',   -- canonical JSON (RFC 8785)
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL UNIQUE
        );
        CREATE INDEX audit_session ON audit_log(session_id);
        CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
        CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
        """
    )
