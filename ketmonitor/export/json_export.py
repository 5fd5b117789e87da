"""json: each signed record of a session exactly as stored — the JWS General JSON object whose bytes
``signing.record_bytes`` gives (the payload is the stored RFC 8785 bytes, the signatures the stored
strings; nothing is re-serialised). ``<session>.record.json`` is the original record,
``<session>.addendum-<n>.json`` its addenda in signing order.
"""

from __future__ import annotations

from ..errors import ExportError
from ..signing import list_records, record_bytes


def file_names(session_id: str, records) -> list[tuple[str, str]]:
    """[(record id, file name)] for a session's records, original first."""
    out, n = [], 0
    for r in sorted(records, key=lambda r: (r.kind != "original", r.created_utc, r.record_id)):
        if r.kind == "original":
            out.append((r.record_id, f"{session_id}.record.json"))
        else:
            n += 1
            out.append((r.record_id, f"{session_id}.addendum-{n}.json"))
    return out


class Exporter:
    needs_data = False

    def __init__(self, db, out):
        self.db, self.out = db, out

    def add(self, session_id: str, data=None) -> dict:
        records = list_records(self.db, session_id)
        if not records:
            status = self.db.conn.execute("SELECT status FROM sessions WHERE id = ?",
                                          (session_id,)).fetchone()
            raise ExportError(f"session {session_id} has no signed record (status "
                              f"{status[0] if status else '?'}): sign it before a json export")
        names = []
        for record_id, name in file_names(session_id, records):
            self.out.write(name, record_bytes(self.db, record_id))
            names.append(name)
        return {"files": names, "records": [r.record_id for r in records]}

    def finish(self) -> None:
        pass
