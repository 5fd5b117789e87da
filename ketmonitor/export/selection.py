"""Choosing the sessions to export: one by id, or every session started in a date range.

Dates are UTC. ``--since 2026-01-01`` starts at 00:00:00Z that day; ``--until 2026-01-31`` runs to the
end of that day (inclusive); a full ISO 8601 time (``2026-01-31T12:00:00Z``, or with an offset) is
taken exactly. Sessions are chosen by their start time (``sessions.started_utc``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from ..clock import utc_iso
from ..errors import ExportError

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Selection:
    session_ids: tuple[str, ...]
    description: str  # for the audit trail and the manifest


def parse_date(text: str, *, end_of_day: bool = False, option: str = "date") -> float:
    """A UTC date or ISO 8601 time -> epoch seconds; ExportError naming the option otherwise."""
    text = (text or "").strip()
    try:
        if _DATE.match(text):
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
            return (start + timedelta(days=1) if end_of_day else start).timestamp()
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ExportError(f"{option} {text!r} is not a date: use YYYY-MM-DD or an ISO 8601 time "
                          "such as 2026-01-31T12:00:00Z") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)  # documented: times without an offset are UTC
    return t.timestamp()


def select_sessions(db, *, session_ids: list[str] | tuple[str, ...] | None = None,
                    since: str | None = None, until: str | None = None) -> Selection:
    conn = db.conn
    if session_ids:
        if since or until:
            raise ExportError("give --session or --since/--until, not both")
        known = {r[0] for r in conn.execute(
            f"SELECT id FROM sessions WHERE id IN ({','.join('?' * len(session_ids))})",
            list(session_ids))}
        unknown = [s for s in session_ids if s not in known]
        if unknown:
            raise ExportError(f"unknown session {', '.join(unknown)}: 'ketmonitor sessions --db "
                              "PATH' lists the sessions")
        return Selection(tuple(dict.fromkeys(session_ids)), "session " + ", ".join(session_ids))
    if not since:
        if until:
            raise ExportError("--until needs --since")
        raise ExportError("choose sessions with --session ID or --since DATE [--until DATE]")
    lo = parse_date(since, option="--since")
    hi = parse_date(until, end_of_day=True, option="--until") if until else None
    if hi is not None and hi <= lo:
        raise ExportError(f"--until {until} is not after --since {since}")
    lo_iso = utc_iso(lo)
    sql, params = "SELECT id FROM sessions WHERE started_utc >= ?", [lo_iso]
    if hi is not None:
        sql, params = sql + " AND started_utc < ?", params + [utc_iso(hi)]
    ids = tuple(r[0] for r in conn.execute(sql + " ORDER BY started_utc, id", params))
    span = f"started from {lo_iso}" + (f" until before {utc_iso(hi)}" if hi is not None else "")
    if not ids:
        raise ExportError(f"no sessions {span}")
    return Selection(ids, f"sessions {span}")
