"""Session rows: create, end, find unfinished ones after a crash, and summarise."""

from __future__ import annotations

import platform
import statistics
import time
import uuid
from dataclasses import dataclass

from .audit import append_audit
from .clock import utc_iso
from .errors import StoreError

OPEN, ENDED, ABANDONED = "open", "ended", "abandoned"
AWAITING_CHECK_IN = "check_in"  # the workflow's first state (ketmonitor.workflow.STATES)


def create_session(db, *, wall_anchor: float, mono_anchor: float, protocol: str | None = None,
                   patient_id: str | None = None, scenario: str | None = None,
                   seed: int | None = None, user_id: str | None = None,
                   session_id: str | None = None) -> str:
    """A new open session, awaiting check-in (workflow state ``check_in``): the monitor records
    vitals and alarms from the start, clinical entries wait for the patient to be checked in."""
    sid = session_id or str(uuid.uuid4())
    now = utc_iso(time.time())
    db["sessions"].insert({
        "id": sid, "created_utc": now, "started_utc": utc_iso(wall_anchor), "status": OPEN,
        "state": AWAITING_CHECK_IN,
        "protocol": protocol, "patient_id": patient_id, "scenario": scenario, "seed": seed,
        "wall_anchor": wall_anchor, "mono_anchor": mono_anchor, "last_seen_utc": now,
        "workstation": platform.node(),
    })
    append_audit(db, "session.created", user_id=user_id, session_id=sid, entity="session",
                 entity_id=sid, detail={"protocol": protocol, "scenario": scenario, "seed": seed})
    return sid


def end_session(db, session_id: str, *, status: str = ENDED, user_id: str | None = None,
                t_wall: float | None = None, reason: str | None = None) -> None:
    row = db.conn.execute("SELECT ended_utc FROM sessions WHERE id=?", (session_id,)).fetchone()
    if row is None:
        raise StoreError(f"no session {session_id}")
    if row[0] is not None:
        return
    ended = utc_iso(time.time() if t_wall is None else t_wall)
    db.conn.execute("UPDATE sessions SET ended_utc=?, status=? WHERE id=?",
                    (ended, status, session_id))
    append_audit(db, f"session.{status}", user_id=user_id, session_id=session_id,
                 entity="session", entity_id=session_id, detail={"reason": reason} if reason else {})


def unfinished_sessions(db) -> list[dict]:
    """Sessions left open by a crash or power cut, newest first."""
    return [dict(r) for r in db.query(
        "SELECT id, started_utc, last_seen_utc, protocol, patient_id, scenario FROM sessions"
        " WHERE ended_utc IS NULL ORDER BY started_utc DESC")]


@dataclass(frozen=True)
class MetricSummary:
    metric: str
    count: int
    missing: int
    minimum: float | None
    median: float | None
    maximum: float | None


def summarise(db, session_id: str) -> dict:
    q = db.conn.execute
    out = {"session_id": session_id,
           "numerics": q("SELECT count(*) FROM numerics WHERE session_id=?", (session_id,)).fetchone()[0],
           "waveform_chunks": q("SELECT count(*) FROM waveform_chunks WHERE session_id=?",
                                (session_id,)).fetchone()[0],
           "waveform_samples": q("SELECT coalesce(sum(n),0) FROM waveform_chunks WHERE session_id=?",
                                 (session_id,)).fetchone()[0],
           "events": q("SELECT count(*) FROM events WHERE session_id=?", (session_id,)).fetchone()[0],
           "metrics": []}
    metrics = [r[0] for r in q("SELECT DISTINCT metric FROM numerics WHERE session_id=? ORDER BY metric",
                               (session_id,))]
    for m in metrics:
        values = [r[0] for r in q("SELECT value FROM numerics WHERE session_id=? AND metric=?",
                                  (session_id, m))]
        present = [v for v in values if v is not None]
        out["metrics"].append(MetricSummary(
            m, len(values), len(values) - len(present), min(present) if present else None,
            statistics.median(present) if present else None, max(present) if present else None))
    return out
