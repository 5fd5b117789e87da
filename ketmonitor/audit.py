"""Append to and verify the hash-chained audit trail.

Each row's ``hash`` is SHA-256 over the RFC 8785 canonical JSON of its fields together with the
previous row's hash, so editing, deleting or re-ordering any row breaks every later link. Appends must
run inside a write transaction (on the StoreWriter thread, or under BEGIN IMMEDIATE) so the chain
stays linear.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass

import rfc8785

from .clock import utc_iso
from .errors import VerificationError

GENESIS = "0" * 64


class AuditChainError(VerificationError):
    """An audit row is missing, re-ordered or altered; ``seq`` names the row."""

    def __init__(self, message: str, *, seq: int | None = None):
        super().__init__(message)
        self.seq = seq


def _entry_hash(fields: dict) -> str:
    return hashlib.sha256(rfc8785.dumps(fields)).hexdigest()


def _fields(seq, t_utc, user_id, action, session_id, entity, entity_id, detail, prev_hash) -> dict:
    return {"seq": seq, "t_utc": t_utc, "user_id": user_id, "action": action,
            "session_id": session_id, "entity": entity, "entity_id": entity_id,
            "detail": detail, "prev_hash": prev_hash}


def append_audit(db, action: str, *, user_id: str | None = None, session_id: str | None = None,
                 entity: str | None = None, entity_id: str | None = None,
                 detail: dict | None = None, t_wall: float | None = None) -> str:
    """Append one entry; returns its hash. ``db`` is a sqlite_utils.Database in a transaction."""
    conn = db.conn
    row = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS)
    t_utc = utc_iso(time.time() if t_wall is None else t_wall)
    detail = json.loads(json.dumps(detail or {}, default=str))  # JSON-safe, as stored
    fields = _fields(seq, t_utc, user_id, action, session_id, entity, entity_id, detail, prev)
    digest = _entry_hash(fields)
    conn.execute(
        "INSERT INTO audit_log (seq, t_utc, user_id, action, session_id, entity, entity_id, detail,"
        " prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (seq, t_utc, user_id, action, session_id, entity, entity_id,
         rfc8785.dumps(detail).decode(), prev, digest))
    return digest


def audit_head(db) -> tuple[int, str]:
    row = db.conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    return (row[0], row[1]) if row else (0, GENESIS)


@dataclass(frozen=True)
class ChainReport:
    rows: int
    head: str
    seq: int = 0  # the head's row number (0: an empty trail, whose head is GENESIS)


def verify_chain(db) -> ChainReport:
    """Recompute every link; raise VerificationError naming the first bad row."""
    prev, expected_seq, n = GENESIS, 1, 0
    for seq, t_utc, user_id, action, session_id, entity, entity_id, detail, prev_hash, digest in \
            db.conn.execute("SELECT seq, t_utc, user_id, action, session_id, entity, entity_id,"
                            " detail, prev_hash, hash FROM audit_log ORDER BY seq"):
        if seq != expected_seq:
            raise AuditChainError(f"audit row {expected_seq} is missing (next row is {seq})",
                                  seq=expected_seq)
        if prev_hash != prev:
            raise AuditChainError(f"audit row {seq}: previous-hash link broken", seq=seq)
        try:
            detail_obj = json.loads(detail)
        except ValueError:
            raise AuditChainError(f"audit row {seq}: detail is not valid JSON", seq=seq) from None
        fields = _fields(seq, t_utc, user_id, action, session_id, entity, entity_id, detail_obj,
                         prev_hash)
        if _entry_hash(fields) != digest:
            raise AuditChainError(f"audit row {seq} ({action}) was altered: hash mismatch", seq=seq)
        prev, expected_seq, n = digest, seq + 1, n + 1
    return ChainReport(n, prev, expected_seq - 1)


def audit_row_hash(db, seq: int) -> str | None:
    """The stored hash of audit row ``seq`` (GENESIS for 0), or None when there is no such row."""
    if seq == 0:
        return GENESIS
    row = db.conn.execute("SELECT hash FROM audit_log WHERE seq = ?", (seq,)).fetchone()
    return row[0] if row else None


def parse_head(text: str) -> tuple[int, str]:
    """``SEQ:HASH`` as ``verify`` prints it and export manifests record it; ValueError otherwise."""
    seq, sep, digest = (text or "").strip().partition(":")
    digest = digest.strip().lower()
    if not sep or not seq.strip().isdigit() or len(digest) != 64 \
            or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"{text!r} is not an audit head: expected SEQ:HASH, a row number and the "
                         "64 hex digits of its hash, as 'ketmonitor verify --db' prints them")
    return int(seq), digest


def check_head(db, seq: int, digest: str) -> None:
    """Raise AuditChainError unless audit row ``seq`` still has the hash seen earlier.

    With ``verify_chain`` this proves rows 1..seq unchanged (each hash covers all before it) and
    the trail not cut back below ``seq``. Rows after ``seq`` are not covered: nothing can prove
    what was never anchored outside the database.
    """
    actual = audit_row_hash(db, seq)
    if actual is None:
        last, _ = audit_head(db)
        raise AuditChainError(f"audit row {seq}, the head seen earlier (hash {digest[:16]}…), is "
                              f"missing: the audit trail was cut back (it now ends at row {last})",
                              seq=seq)
    if actual != digest:
        raise AuditChainError(f"audit row {seq} no longer has the hash seen earlier "
                              f"({digest[:16]}…, now {actual[:16]}…): the audit trail up to that row "
                              "was rewritten", seq=seq)


def find_audit(db, action: str, *, entity_id: str | None = None) -> list[tuple[int, dict]]:
    """[(seq, detail)] of the entries with this action (and entity id), oldest first."""
    sql, params = "SELECT seq, detail FROM audit_log WHERE action = ?", [action]
    if entity_id is not None:
        sql, params = sql + " AND entity_id = ?", params + [entity_id]
    return [(seq, json.loads(detail)) for seq, detail in db.conn.execute(sql + " ORDER BY seq", params)]
