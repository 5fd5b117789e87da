"""Records the audit trail says were signed and the database no longer holds.

Someone with the file and the sqlite3 shell can drop the no-delete triggers, delete a session's
record with its signatures and set the session back to 'ended': there is then no row left to compare
with anything. The audit entries written with the record (``record.sealed``, ``record.signed``) stay,
in a hash chain whose rows cannot be removed from the middle unnoticed. ``missing_records`` reads
them; ``verify_db`` and ``check_session`` report what it finds as a failure, and ``seal_session``
refuses to sign such a session again (it would sign the altered rows as if they were the first
record).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..errors import WorkflowError
from .errors import AuditLinkError


@dataclass(frozen=True)
class MissingRecord:
    seq: int            # the audit row
    action: str         # record.sealed or record.signed
    session_id: str | None
    record_id: str
    detail: dict

    @property
    def original(self) -> bool:
        """The sealing of a session's original record (not an addendum, not a co-signature)."""
        return self.action == "record.sealed" and self.detail.get("kind", "original") == "original"

    def describe(self) -> str:
        d = self.detail
        what = (f"the sealing of {d.get('kind', 'a')} record {self.record_id}"
                if self.action == "record.sealed" else
                f"signature {d.get('index')} ({d.get('meaning')}, key {d.get('kid')}) on record "
                f"{self.record_id}")
        return (f"audit row {self.seq} ({self.action}) records {what} of session "
                f"{self.session_id}, but that record is missing from the database (deleted)")

    def error(self) -> AuditLinkError:
        return AuditLinkError(self.describe(), seq=self.seq, record_id=self.record_id)


def missing_records(db, session_id: str | None = None) -> list[MissingRecord]:
    """Every ``record.sealed`` / ``record.signed`` entry (of one session, or all) whose record is not
    in ``session_records``, oldest first. (Signatures missing from a record that is still there are
    ``verification._check_audit_links``'s business.)"""
    sql = ("SELECT a.seq, a.action, a.session_id, a.entity_id, a.detail FROM audit_log a"
           " WHERE a.action IN ('record.sealed', 'record.signed')"
           " AND NOT EXISTS (SELECT 1 FROM session_records r WHERE r.record_id = a.entity_id)")
    rows = (db.conn.execute(sql + " AND a.session_id = ? ORDER BY a.seq", (session_id,))
            if session_id else db.conn.execute(sql + " ORDER BY a.seq"))
    out = []
    for seq, action, sid, rid, detail in rows:
        try:
            d = json.loads(detail)
        except (TypeError, ValueError):
            d = {}
        out.append(MissingRecord(seq, action, sid, rid, d if isinstance(d, dict) else {}))
    return out


def refuse_if_deleted(db, session_id: str) -> None:
    """Refuse (WorkflowError) to sign ``session_id`` when its audit trail records the sealing of a
    record the database no longer holds."""
    gone = [m for m in missing_records(db, session_id) if m.action == "record.sealed"]
    if gone:
        first = gone[0]
        raise WorkflowError(
            f"session {session_id} cannot be signed: it was signed before ({first.describe()}). "
            "Signing it again would sign the rows as they are now as if they were its record. "
            "Nothing was signed; report it to the clinic's administrator ('ketmonitor verify --db' "
            "names what is missing).")
