"""One session, read once for every export format: the workflow record (amendments applied beside
the originals), numerics, NIBP readings grouped into measurements, alarms, signed records with their
signature manifestations, and the REMS summary. Read-only; any connection.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from ..alarms import alarm_log
from ..clock import parse_utc
from ..metrics import NIBP_METRICS
from ..signing import list_records
from ..users import get_clinic
from ..workflow_read import workflow_record

NIBP_GROUP = (*NIBP_METRICS, "nibp_error")
NIBP_SAME_READING_S = 2.0  # the four values of one measurement arrive within a frame or two


@dataclass(frozen=True)
class NibpReading:
    source: str
    t_mono: float
    t_wall: float
    t_utc: str
    values: dict  # metric -> value (None: the device said missing); absent key: not sent
    flags: tuple[str, ...]

    @property
    def error_code(self):
        return self.values.get("nibp_error")


@dataclass
class SessionData:
    session: dict
    patient: dict | None
    clinic: dict | None
    protocol: str | None
    record: dict  # workflow_record()
    numerics: list[dict]  # every numerics row except NIBP ones, time order
    nibp: list[NibpReading]
    nibp_rows: int
    alarms: list[dict]
    records: list  # signing.SignedRecord, original first
    users: dict  # user id -> {"full_name", "role"}
    sources: list[str]
    extra: dict = field(default_factory=dict)
    check: object = None  # signing.matching.RecordCheck: the rows compared with the signed record

    def use_check(self, check) -> None:
        """Attach the comparison with the signed record; a sealed session then shows its patient
        and clinic as signed (a later check-in may have updated the patient's weight or answers)."""
        self.check = check
        if check is None or not check.signed:
            return
        signed = check.patient()
        if signed is not None:
            self.patient = signed.__dict__
            self.record["patient"] = self.patient
        if check.clinic() is not None:
            self.clinic = check.clinic()

    @property
    def flagged(self) -> bool:
        """Signed, but the rows (or a signature) do not verify against the signed record."""
        return self.check is not None and self.check.flagged

    @property
    def id(self) -> str:
        return self.session["id"]

    @property
    def start_wall(self) -> float:
        return float(self.session["wall_anchor"])

    def user_name(self, user_id: str | None) -> str:
        if not user_id:
            return "-"
        u = self.users.get(user_id)
        return f"{u['full_name']} ({user_id})" if u else user_id

    @property
    def signatures(self) -> list:
        return [s for r in self.records for s in r.signatures]


def _dict_rows(cur) -> list[dict]:
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def group_nibp(rows: list[dict]) -> list[NibpReading]:
    """NIBP rows (time order) -> one reading per measurement: same source, within a few seconds,
    and no metric repeated."""
    out: list[NibpReading] = []
    cur: list[dict] = []

    def flush():
        if cur:
            first = cur[0]
            flags = sorted({f for r in cur for f in (r["flags"] or "").split(",") if f})
            out.append(NibpReading(first["source"], first["t_mono"], first["t_wall"], first["t_utc"],
                                   {r["metric"]: r["value"] for r in cur}, tuple(flags)))
    for r in rows:
        if cur and (r["source"] != cur[0]["source"]
                    or r["t_mono"] - cur[0]["t_mono"] > NIBP_SAME_READING_S
                    or any(c["metric"] == r["metric"] for c in cur)):
            flush()
            cur = []
        cur.append(r)
    flush()
    return out


def load_session(db, session_id: str, *, numerics: bool = True) -> SessionData:
    """``numerics=False``: skip the continuous numerics (formats that do not show them)."""
    conn = db.conn
    rec = workflow_record(db, session_id)
    marks = ",".join("?" * len(NIBP_GROUP))
    numerics = [] if not numerics else _dict_rows(conn.execute(
        "SELECT rowid AS row_id, source, metric, t_mono, t_wall, t_utc, value, unit, flags,"
        f" device_time FROM numerics WHERE session_id = ? AND metric NOT IN ({marks})"
        " ORDER BY t_wall, rowid", (session_id, *NIBP_GROUP)))
    nibp_rows = _dict_rows(conn.execute(
        "SELECT source, metric, t_mono, t_wall, t_utc, value, flags FROM numerics"
        f" WHERE session_id = ? AND metric IN ({marks}) ORDER BY source, t_mono, rowid",
        (session_id, *NIBP_GROUP)))
    by_source: dict[str, list[dict]] = {}
    for r in nibp_rows:
        by_source.setdefault(r["source"], []).append(r)
    nibp = sorted((g for rows in by_source.values() for g in group_nibp(rows)),
                  key=lambda g: g.t_wall)
    users = {uid: {"full_name": name, "role": role} for uid, name, role in
             conn.execute("SELECT id, full_name, role FROM users")}
    for kid_user, name, role in conn.execute("SELECT user_id, printed_name, role FROM signing_keys"):
        users.setdefault(kid_user, {"full_name": name, "role": role})
    clinic = get_clinic(db)
    sources = sorted({r["source"] for r in numerics} | {g.source for g in nibp})
    return SessionData(
        session=rec["session"], patient=rec["patient"],
        clinic=None if clinic is None else asdict(clinic),
        protocol=rec["session"].get("protocol"), record=rec, numerics=numerics, nibp=nibp,
        nibp_rows=len(nibp_rows), alarms=alarm_log(db, session_id),
        records=list_records(db, session_id), users=users, sources=sources)


# -- helpers shared by the formats ----------------------------------------------------------------

def human_utc(iso: str | None) -> str:
    """'2026-01-01T00:00:01.000Z' -> '2026-01-01 00:00:01 UTC' (printed reports)."""
    if not iso:
        return "-"
    return datetime.fromtimestamp(parse_utc(iso), timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def minutes_since(data: SessionData, t_wall: float) -> float:
    return (t_wall - data.start_wall) / 60.0


def minute_medians(rows: list[dict], metric: str, start_wall: float) -> list[dict]:
    """Per whole minute since the session start: median, min, max, count and missing count."""
    buckets: dict[int, list] = {}
    for r in rows:
        if r["metric"] == metric:
            buckets.setdefault(int((r["t_wall"] - start_wall) // 60), []).append(r)
    out = []
    for minute in sorted(buckets):
        rs = buckets[minute]
        values = [r["value"] for r in rs if r["value"] is not None]
        flags = sorted({f for r in rs for f in (r["flags"] or "").split(",") if f})
        out.append({"minute": minute, "start_wall": start_wall + minute * 60,
                    "n": len(rs), "missing": len(rs) - len(values),
                    "median": statistics.median(values) if values else None,
                    "min": min(values) if values else None, "max": max(values) if values else None,
                    "flags": flags, "unit": rs[0]["unit"]})
    return out


def json_text(value) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
