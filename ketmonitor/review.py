"""Physician and auditor review: finding sessions, loading one session's timeline, co-signing and
addenda (no Qt here; the review screens in ``ui/review/`` are a thin layer over this module).

- ``list_sessions`` / ``count_sessions``: the browser's query, every filter done in SQL through an
  index (migration 0007_review), newest first, one page at a time.
- ``load_timeline``: everything recorded in one session, times as seconds since its start; the pleth
  is not loaded with it but by time range through ``waveform_window``. Every load is a
  ``session.viewed`` entry in the audit trail (Part 11 / HIPAA audit controls).
- ``permissions``: what the review screen offers whom. The first signature of an ended session's
  record is ``signing.rules.sign_record``, the one signing function of the application (bedside,
  review screen, ``ketmonitor sign``), with its rules (``sign_check``).
- Every load of a signed session compares its rows with the signed record
  (``signing.matching.check_session``): ``Timeline.record_check`` says whether what the screen shows
  is what was signed, and a signed session shows its patient as signed.
- ``cosign_session`` / ``addendum_session``: the signing service behind a role check (only a
  physician co-signs; auditors never sign), on the session's original record, and refused when the
  rows no longer match that record (a physician must not sign off altered data).
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from .alarms.log import alarm_log
from .audit import append_audit
from .clock import parse_utc, utc_iso
from .errors import StoreError, WorkflowError
from .signing import SignatureInfo, SignedRecord, cosign, list_records, original_record_id
from .signing._db import read_snapshot, stored_bytes, write_transaction
from .signing.keys import UnlockedKey
from .signing.matching import RecordCheck, check_session
from .signing.rules import account_role, check_key_role, session_authors, sign_meanings
from .users import PermissionDenied
from .workflow_read import workflow_record

# What the browser's status filter offers, and what each means in SQL.
STATUSES = ("open", "ended", "signed", "co-signed", "addendum", "abandoned")
_STATUS_SQL = {
    "open": "s.status = 'open'",
    "ended": "s.status = 'ended'",
    "signed": "s.status = 'signed'",
    "co-signed": "s.status = 'cosigned'",
    "abandoned": "s.status = 'abandoned'",
    "addendum": "s.id IN (SELECT session_id FROM session_records WHERE kind = 'addendum')",
}
COSIGN_MEANINGS = ("review", "approval", "responsibility")
TREND_METRICS = ("spo2", "pulse_rate", "perfusion_index")
NIBP_METRICS = ("nibp_systolic", "nibp_diastolic", "nibp_mean", "nibp_pulse_rate")
# Events shown through their own tables (doses, scale entries, amendments, the alarm log, NIBP).
_DUPLICATED_EVENTS = ("dose", "infusion.start", "infusion.rate", "infusion.stop", "scale",
                      "amendment", "bp.manual")
MAX_WAVEFORM_SPAN_S = 600.0  # wider views show the trends only; the pleth is loaded when zoomed in


# -- the session browser ---------------------------------------------------------------------------

@dataclass(frozen=True)
class SessionFilter:
    """Browser filters; None (or False) means "any". ``since``/``until`` are epoch seconds
    (``until`` exclusive), compared with the session's start. ``patient`` matches the MRN exactly or
    any part of the name; ``clinician`` is a user id who made an entry in the session or signed it."""

    since: float | None = None
    until: float | None = None
    patient: str | None = None
    clinician: str | None = None
    protocol: str | None = None
    status: str | None = None
    high_alarms: bool = False

    def __post_init__(self):
        if self.status is not None and self.status not in STATUSES:
            raise WorkflowError(f"unknown status {self.status!r}; one of {', '.join(STATUSES)}")
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise WorkflowError("the end of the date range must be after its start")


@dataclass(frozen=True)
class SessionRow:
    id: str
    started_utc: str
    ended_utc: str | None
    status: str
    protocol: str | None
    patient_id: str | None
    patient_name: str | None
    mrn: str | None
    high_alarms: int
    signatures: int
    has_addendum: bool

    @property
    def status_text(self) -> str:
        text = "co-signed" if self.status == "cosigned" else self.status
        return text + (" + addendum" if self.has_addendum else "")

    @property
    def duration_s(self) -> float | None:
        if self.ended_utc is None:
            return None
        return parse_utc(self.ended_utc) - parse_utc(self.started_utc)


def _where(f: SessionFilter) -> tuple[str, list]:
    clauses, params = [], []
    if f.since is not None:
        clauses.append("s.started_utc >= ?")
        params.append(utc_iso(f.since))
    if f.until is not None:
        clauses.append("s.started_utc < ?")
        params.append(utc_iso(f.until))
    if f.patient:
        text = f.patient.strip()
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        clauses.append("s.patient_id IN (SELECT id FROM patients WHERE mrn = ? COLLATE NOCASE"
                       " OR name LIKE ? ESCAPE '\\')")
        params += [text, like]
    if f.clinician:
        clauses.append("s.id IN (SELECT session_id FROM events WHERE user_id = ?"
                       " UNION SELECT r.session_id FROM record_signatures g JOIN session_records r"
                       " ON r.record_id = g.record_id WHERE g.signer_id = ?)")
        params += [f.clinician, f.clinician]
    if f.protocol:
        clauses.append("s.protocol = ?")
        params.append(f.protocol)
    if f.status:
        clauses.append(_STATUS_SQL[f.status])
    if f.high_alarms:
        clauses.append("s.id IN (SELECT session_id FROM alarm_log WHERE priority = 'high')")
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


_LIST_SQL = (
    "SELECT s.id, s.started_utc, s.ended_utc, s.status, s.protocol, s.patient_id, p.name, p.mrn,"
    " (SELECT count(*) FROM alarm_log a WHERE a.session_id = s.id AND a.priority = 'high'),"
    " (SELECT count(*) FROM session_records r JOIN record_signatures g ON g.record_id = r.record_id"
    "  WHERE r.session_id = s.id),"
    " EXISTS (SELECT 1 FROM session_records r WHERE r.session_id = s.id AND r.kind = 'addendum')"
    " FROM sessions s LEFT JOIN patients p ON p.id = s.patient_id")


def list_sessions(db, filters: SessionFilter | None = None, *, limit: int = 200,
                  offset: int = 0) -> list[SessionRow]:
    """One page of sessions matching ``filters``, newest first."""
    where, params = _where(filters or SessionFilter())
    rows = db.conn.execute(_LIST_SQL + where + " ORDER BY s.started_utc DESC, s.id LIMIT ? OFFSET ?",
                           params + [int(limit), int(offset)]).fetchall()
    return [SessionRow(*r[:8], int(r[8]), int(r[9]), bool(r[10])) for r in rows]


def count_sessions(db, filters: SessionFilter | None = None) -> int:
    where, params = _where(filters or SessionFilter())
    return db.conn.execute("SELECT count(*) FROM sessions s" + where, params).fetchone()[0]


def query_plan(db, filters: SessionFilter | None = None) -> list[str]:
    """SQLite's plan for the browser's page query (the tests check that it uses indexes)."""
    where, params = _where(filters or SessionFilter())
    sql = _LIST_SQL + where + " ORDER BY s.started_utc DESC, s.id LIMIT ? OFFSET ?"
    return [r[3] for r in db.conn.execute("EXPLAIN QUERY PLAN " + sql, params + [200, 0])]


def filter_choices(db) -> dict[str, list]:
    """Values the browser offers: protocols in use, and clinicians [(user id, name)]."""
    protocols = [r[0] for r in db.conn.execute(
        "SELECT DISTINCT protocol FROM sessions WHERE protocol IS NOT NULL ORDER BY protocol")]
    names = {r[0]: r[1] for r in db.conn.execute("SELECT id, full_name FROM users")}
    for uid, name in db.conn.execute("SELECT user_id, printed_name FROM signing_keys"):
        names.setdefault(uid, name)
    users = [r[0] for r in db.conn.execute("SELECT id FROM users WHERE role IN ('nurse', 'physician')"
                                           " UNION SELECT DISTINCT signer_id FROM record_signatures")]
    return {"protocols": protocols,
            "clinicians": sorted(((u, names.get(u, u)) for u in users), key=lambda x: x[1].lower())}


def export_selection(db, filters: SessionFilter | None = None):
    """Every session matching the browser's filters, for ``export_sessions``: oldest first, as
    ``ketmonitor export --since`` orders them; the description (manifest, audit) names the filters."""
    from .export import Selection
    from .errors import ExportError

    f = filters or SessionFilter()
    where, params = _where(f)
    ids = tuple(r[0] for r in db.conn.execute(
        "SELECT s.id FROM sessions s" + where + " ORDER BY s.started_utc, s.id", params))
    detail = {k: (utc_iso(v) if k in ("since", "until") else v)
              for k, v in f.__dict__.items() if v not in (None, False)}
    if not ids:
        raise ExportError("no sessions match the filters")
    text = ", ".join(f"{k} {v}" for k, v in detail.items()) or "none"
    return Selection(ids, f"sessions matching the review browser's filters ({text})")


def audit_search(db, user_id: str | None, filters: SessionFilter, found: int) -> None:
    """A search of the session list is itself a view of patient data: audit it."""
    detail = {k: v for k, v in filters.__dict__.items() if v not in (None, False)}
    with write_transaction(db):
        append_audit(db, "sessions.searched", user_id=user_id, entity="session",
                     detail={"filters": detail, "found": found})


# -- one session's timeline ------------------------------------------------------------------------

@dataclass(frozen=True)
class NibpReading:
    t: float                 # seconds since the session start
    t_utc: str
    systolic: float | None
    diastolic: float | None
    mean: float | None
    pulse: float | None
    source: str
    failed: str | None = None  # an NIBP error: what failed


@dataclass(frozen=True)
class Entry:
    """One line of the chronological timeline (doses, scales, events, alarms, actions, amendments,
    signatures)."""

    t: float
    t_utc: str
    kind: str        # dose, scale, event, alarm, alarm action, amendment, signature, nibp
    text: str
    user: str | None = None
    priority: str | None = None  # alarms
    amended: bool = False


@dataclass(frozen=True)
class RecordView:
    """A signed record as shown: Part 11 §11.50, every signature with printed name, date and time,
    and meaning; ``verified`` tells whether its signatures verify and, for the original record,
    whether the database still holds what it signed (``problem`` says why not)."""

    record: SignedRecord
    verified: bool
    problem: str | None
    addendum: dict | None = None  # an addendum's content
    data_differs: bool = False  # signatures valid, but the session's rows differ from the record

    @property
    def label(self) -> str:
        """What the screen says about the record: verified, DATA DIFFERS or FAILED."""
        if self.verified:
            return "verified"
        return "DATA DIFFERS" if self.data_differs else "FAILED"


@dataclass
class Timeline:
    session: dict
    patient: dict | None
    t0_wall: float
    duration_s: float
    series: dict[str, tuple[np.ndarray, np.ndarray]]  # metric -> (t seconds, value; NaN missing)
    nibp: list[NibpReading]
    doses: list[dict]
    scales: list[dict]
    events: list[dict]
    alarms: list[dict]
    amendments: list[dict]
    records: list[RecordView]
    waveforms: dict[str, float] = field(default_factory=dict)  # metric -> sample rate
    record_check: RecordCheck | None = None  # the rows compared with the signed record

    @property
    def session_id(self) -> str:
        return self.session["id"]

    @property
    def original_record(self) -> RecordView | None:
        return next((r for r in self.records if r.record.kind == "original"), None)

    def rel(self, t_wall: float) -> float:
        return t_wall - self.t0_wall

    def entries(self) -> list[Entry]:
        return timeline_entries(self)


def local_time(utc_text: str | None, *, seconds: bool = True) -> str:
    """An on-disk UTC time as local date and time with the zone, for people."""
    if not utc_text:
        return "-"
    dt = datetime.fromtimestamp(parse_utc(utc_text)).astimezone()
    return dt.strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z").strip()


def _audit_view(db, session_id: str, user_id: str | None, purpose: str,
                check: RecordCheck | None = None) -> None:
    detail = {"purpose": purpose}
    if check is not None:  # what the viewer was shown: the signed data, or rows that differ
        detail["record_check"] = check.status
        if check.flagged:
            detail["problems"] = list(check.problems[:20])
    try:
        with write_transaction(db):
            append_audit(db, "session.viewed", user_id=user_id, session_id=session_id,
                         entity="session", entity_id=session_id, detail=detail)
    except sqlite3.OperationalError as exc:
        # Part 11: a view that cannot be audited is not shown (e.g. a read-only copy).
        raise StoreError(f"cannot record this view of session {session_id} in the audit trail "
                         f"({exc}); open a writable database") from None


def _series(db, session_id: str, t0: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for metric in TREND_METRICS:
        rows = db.conn.execute("SELECT t_wall, value FROM numerics WHERE session_id = ? AND metric = ?"
                               " ORDER BY t_wall", (session_id, metric)).fetchall()
        if rows:
            a = np.array([(t, math.nan if v is None else v) for t, v in rows], dtype=np.float64)
            out[metric] = (a[:, 0] - t0, a[:, 1])
        else:
            out[metric] = (np.empty(0), np.empty(0))
    return out


def _nibp(db, session_id: str, t0: float) -> list[NibpReading]:
    """Measurements grouped by time and source: one reading per cuff measurement or manual entry."""
    groups: dict[tuple[str, float], dict] = {}
    for source, metric, t_mono, t_wall, t_utc, value, detail in db.conn.execute(
            "SELECT source, metric, t_mono, t_wall, t_utc, value, detail FROM numerics"
            " WHERE session_id = ? AND metric IN ('nibp_systolic', 'nibp_diastolic', 'nibp_mean',"
            " 'nibp_pulse_rate', 'nibp_error') ORDER BY t_wall", (session_id,)):
        g = groups.setdefault((source, round(t_mono, 1)), {"t_wall": t_wall, "t_utc": t_utc})
        g[metric] = detail or "measurement failed" if metric == "nibp_error" else value
    out = [NibpReading(g["t_wall"] - t0, g["t_utc"], g.get("nibp_systolic"), g.get("nibp_diastolic"),
                       g.get("nibp_mean"), g.get("nibp_pulse_rate"), source, g.get("nibp_error"))
           for (source, _t), g in groups.items()]
    return sorted(out, key=lambda r: r.t)


def signed_records(db, session_id: str, check: RecordCheck | None = None) -> list[RecordView]:
    """The session's signed records (original, addenda), each checked: do its signatures verify,
    and does the database still hold what the original signed? ``check``: a comparison just made
    (``check_session``), else one is made now."""
    check = check if check is not None else check_session(db, session_id)
    out = []
    for rec in list_records(db, session_id):
        problem = check.records.get(rec.record_id)
        differs = rec.kind == "original" and problem is None and bool(check.data_problems)
        if differs:
            problem = check.headline()
        content = None
        if rec.kind == "addendum":
            payload = db.conn.execute("SELECT payload FROM session_records WHERE record_id = ?",
                                      (rec.record_id,)).fetchone()[0]
            try:
                content = json.loads(stored_bytes(payload)).get("addendum")
            except ValueError:
                content = None
        out.append(RecordView(rec, problem is None, problem, content, differs))
    return out


@dataclass(frozen=True)
class SigningState:
    """A session's signatures as the review screen shows them, read together (off the Qt thread)."""

    check: RecordCheck          # the rows and signatures compared with the signed record
    records: list[RecordView]
    status: str                 # sessions.status
    authors: frozenset[str]     # who made entries (may sign for authorship)


def signing_state(db, session_id: str, check: RecordCheck | None = None) -> SigningState:
    """``check``: a comparison just made (or ``matching.recheck_signatures`` of one), else one is
    made now; one snapshot either way."""
    with read_snapshot(db.conn):
        check = check if check is not None else check_session(db, session_id)
        row = db.conn.execute("SELECT status FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            raise WorkflowError(f"no session {session_id}")
        return SigningState(check, signed_records(db, session_id, check), row[0],
                            frozenset(session_authors(db, session_id)))


def load_timeline(db, session_id: str, *, viewer_id: str | None, purpose: str = "review") -> Timeline:
    """Everything recorded in one session (waveforms: see ``waveform_window``); audited as a view."""
    row = db.conn.execute("SELECT wall_anchor FROM sessions WHERE id = ?", (session_id,)).fetchone()
    if row is None:
        raise WorkflowError(f"no session {session_id}")
    check = check_session(db, session_id)
    _audit_view(db, session_id, viewer_id, purpose, check)
    wf = workflow_record(db, session_id)
    t0 = float(row[0])
    session = wf["session"]
    patient = wf["patient"]
    if check.signed and check.patient() is not None:  # as signed, not as a later check-in left it
        patient = check.patient().__dict__
    series = _series(db, session_id, t0)
    nibp = _nibp(db, session_id, t0)
    alarms = alarm_log(db, session_id)
    events = [e for e in wf["events"] if e["kind"] not in _DUPLICATED_EVENTS
              and not e["kind"].startswith("alarm.")]
    waveforms = {m: r for m, r in db.conn.execute(
        "SELECT metric, max(rate_hz) FROM waveform_chunks WHERE session_id = ? GROUP BY metric",
        (session_id,))}
    ends = [parse_utc(session["ended_utc"]) - t0] if session["ended_utc"] else []
    ends += [float(s[0][-1]) for s in series.values() if len(s[0])]
    ends += [r.t for r in nibp] + [e["t_wall"] - t0 for e in wf["events"]]
    last_chunk = db.conn.execute("SELECT max(t_wall) FROM waveform_chunks WHERE session_id = ?",
                                 (session_id,)).fetchone()[0]
    if last_chunk is not None:
        ends.append(last_chunk - t0)
    return Timeline(session=session, patient=patient, t0_wall=t0,
                    duration_s=max(ends, default=0.0), series=series, nibp=nibp,
                    doses=wf["doses"], scales=wf["scale_entries"], events=events, alarms=alarms,
                    amendments=wf["amendments"], records=signed_records(db, session_id, check),
                    waveforms=waveforms, record_check=check)


def waveform_window(db, session_id: str, t0_wall: float, t_from: float, t_to: float, *,
                    metric: str = "pleth") -> tuple[np.ndarray, np.ndarray]:
    """The samples of ``metric`` between ``t_from`` and ``t_to`` (seconds since the start), read
    from the chunks that overlap that range only. Gaps between chunks come back as NaN so a plot
    does not join across them."""
    span = db.conn.execute("SELECT max(n / rate_hz) FROM waveform_chunks WHERE session_id = ? AND"
                           " metric = ?", (session_id, metric)).fetchone()[0]
    if span is None or t_to <= t_from:
        return np.empty(0), np.empty(0)
    rows = db.conn.execute(
        "SELECT t_wall, rate_hz, n, samples FROM waveform_chunks WHERE session_id = ? AND metric = ?"
        " AND t_wall >= ? AND t_wall < ? ORDER BY t_wall",
        (session_id, metric, t0_wall + t_from - span, t0_wall + t_to)).fetchall()
    ts, ys, end = [], [], None
    for t_wall, rate, n, blob in rows:
        start = t_wall - t0_wall
        if end is not None and start - end > 1.5 / rate:
            ts.append(np.array([end]))
            ys.append(np.array([np.nan]))
        ts.append(start + np.arange(n) / rate)
        ys.append(np.frombuffer(blob, dtype="<i4").astype(np.float64))
        end = start + n / rate
    if not ts:
        return np.empty(0), np.empty(0)
    t, y = np.concatenate(ts), np.concatenate(ys)
    keep = (t >= t_from) & (t <= t_to)
    return t[keep], y[keep]


# -- the chronological list ------------------------------------------------------------------------

def _fmt(v) -> str:
    return "-" if v is None else f"{v:g}"


def _dose_text(d: dict) -> str:
    e = d["effective"]
    what = {"dose": "dose", "infusion_start": "infusion started", "infusion_rate": "infusion rate",
            "infusion_stop": "infusion stopped"}.get(e["action"], e["action"])
    text = f"{e['drug']} {what}"
    if e.get("amount") is not None:
        text += f" {e['amount']:g} {e.get('unit') or ''}".rstrip()
    if e.get("rate") is not None:
        text += f" at {e['rate']:g} {e.get('rate_unit') or ''}".rstrip()
    text += f", {e['route']}"
    if e.get("device_index"):
        text += f", device {e['device_index']}"
    if e.get("lot_number"):
        text += f", lot {e['lot_number']}"
    return text


def _event_text(e: dict) -> str:
    data = e["effective"]["data"]
    kind = e["kind"]
    if kind == "event":
        text = data.get("label") or data.get("type") or "event"
        return f"{text}: {data['text']}" if data.get("text") else text
    if kind == "note":
        return f"note: {data.get('text', '')}"
    if kind == "workflow.state":
        return f"step: {data.get('from')} -> {data.get('to')}"
    if kind == "checkin":
        return f"checked in {data.get('mrn', '')} on {data.get('protocol', '')}"
    if kind == "baseline":
        return (f"baseline {_fmt(data.get('nibp_systolic'))}/{_fmt(data.get('nibp_diastolic'))} mmHg,"
                f" SpO2 {_fmt(data.get('spo2'))} %, pulse {_fmt(data.get('pulse_rate'))}")
    if kind == "discharge":
        return "discharge: " + ("all criteria met" if data.get("all_met") else
                                f"criteria not all met ({data.get('reason') or 'no reason'})")
    if kind == "checklist":
        return "pre-dose checklist confirmed"
    if kind == "nibp.requested":
        text = "NIBP measurement requested" + (f" for {data['check_id']}" if data.get("check_id")
                                               else "")
        return text + ("" if data.get("ok", True) else f" - failed: {data.get('message', '')}")
    extra = ", ".join(f"{k} {v}" for k, v in data.items() if isinstance(v, (str, int, float))
                      and k not in ("check_id",))
    return kind.replace(".", " ") + (f": {extra}" if extra else "")


def timeline_entries(tl: Timeline) -> list[Entry]:
    """Every dose, scale score, event, alarm (with its acknowledgements), NIBP reading, amendment and
    signature of the session, in time order."""
    out: list[Entry] = []
    for d in tl.doses:
        out.append(Entry(tl.rel(d["t_wall"]), d["t_utc"], "dose", _dose_text(d), d["user_id"],
                         amended=bool(d["amendments"])))
    for s in tl.scales:
        e = s["effective"]
        label = e["scale"].upper().replace("_", " ")
        text = f"{label} {_fmt(e['total'])}" + ("" if e["complete"] else " (incomplete)")
        if e.get("check_id"):
            text += f" [{e['check_id']}]"
        out.append(Entry(tl.rel(s["t_wall"]), s["t_utc"], "scale", text, s["user_id"],
                         amended=bool(s["amendments"])))
    for e in tl.events:
        out.append(Entry(tl.rel(e["t_wall"]), e["t_utc"], "event", _event_text(e), e["user_id"],
                         amended=bool(e["amendments"])))
    for r in tl.nibp:
        text = (f"NIBP failed: {r.failed}" if r.failed else
                f"NIBP {_fmt(r.systolic)}/{_fmt(r.diastolic)}"
                + (f" ({r.mean:g})" if r.mean is not None else "") + " mmHg")
        if r.source == "manual":
            text += " entered by hand"
        out.append(Entry(r.t, r.t_utc, "nibp", text))
    for a in tl.alarms:
        what = a["label"] or a["condition"]
        if a["trigger_value"] is not None:
            what += f" {a['trigger_value']:g}"
        elif a["message"]:
            what += f": {a['message']}"
        if a["end_wall"] is not None:
            what += f" (lasted {a['end_wall'] - a['start_wall']:.0f} s)"
        out.append(Entry(tl.rel(a["start_wall"]), a["start_utc"], "alarm",
                         f"{a['priority'].upper()} alarm: {what}", priority=a["priority"]))
        for act in a["actions"]:
            out.append(Entry(tl.rel(act["t_wall"]), act["t_utc"], "alarm action",
                             f"{act['action'].replace('_', ' ')}: {a['label'] or a['condition']}",
                             act["user_id"], priority=a["priority"]))
    for am in tl.amendments:
        changes = ", ".join(f"{k} = {v}" for k, v in am["changes"].items())
        out.append(Entry(tl.rel(am["t_wall"]), am["t_utc"], "amendment",
                         f"correction of {am['target_table']} {am['target_id']}: {changes}"
                         f" (reason: {am['reason']})", am["user_id"]))
    for rv in tl.records:
        for s in rv.record.signatures:
            what = "record" if rv.record.kind == "original" else "addendum"
            out.append(Entry(tl.rel(parse_utc(s.signed_at)), s.signed_at, "signature",
                             f"{what} signed by {s.printed_name} ({s.role}) — {s.meaning}",
                             s.signer_id))
    return sorted(out, key=lambda e: (e.t, e.kind))


# -- signing from the review screen ----------------------------------------------------------------

@dataclass(frozen=True)
class Permissions:
    cosign: bool
    addendum: bool
    reason: str = ""  # why something is not allowed, for the screen
    sign: bool = False  # sign the record of an ended, unsigned session
    sign_meanings: tuple[str, ...] = ()  # what that signature may mean, the default first


def refusal(check: RecordCheck) -> str:
    """Why nobody may sign, co-sign or add an addendum to a session whose rows do not match its
    record (or whose signed record is gone)."""
    return (f"This session {check.headline()}. A signature, a co-signature or an addendum would "
            "sign off data that is not what was signed, so all are refused. Report it to the "
            "clinic's administrator.")


def permissions(role: str | None, sealed: bool, check: RecordCheck | None = None, *,
                ended: bool = False, author: bool = False) -> Permissions:
    """Who may do what on the review screen: physicians co-sign and add addenda, nurses add addenda
    (the author's later correction), auditors and admins only read. Before the record is signed,
    only signing it: once the session has ended, by its author (``author``: the user made entries
    in it) or by a physician taking responsibility (``signing.rules``). Nobody signs, co-signs or
    adds an addendum to a session whose rows no longer match its signed record, or whose signed
    record was deleted (``check``)."""
    if role not in ("physician", "nurse"):
        return Permissions(False, False, f"{role or 'unknown role'}: read-only access")
    if check is not None and check.flagged:  # also a signed record deleted: never sign it anew
        return Permissions(False, False, refusal(check))
    if not sealed:
        if not ended:
            return Permissions(False, False, "not signed yet: the session is still open; its "
                                             "record is signed once it has ended")
        meanings = sign_meanings(role, author)
        if not meanings:
            return Permissions(False, False, "not signed yet: its author (a clinician who made its "
                                             "entries) or a physician signs it")
        return Permissions(False, False, "not signed yet: sign the record; co-signatures and "
                                         "addenda follow it", True, meanings)
    if role == "nurse":
        return Permissions(False, True, "only a physician can co-sign")
    return Permissions(True, True)


def _target(db, session_id: str) -> str:
    rid = original_record_id(db, session_id)
    if rid is None:
        raise WorkflowError(f"session {session_id} has no signed record yet")
    return rid


def cosign_session(db, session_id: str, user_id: str, password: str | UnlockedKey, meaning: str, *,
                   t_wall: float | None = None) -> SignatureInfo:
    """A physician's co-signature on the session's record. ``password`` asks for the signing
    password again (or is a key the caller unlocked with it); a wrong one signs nothing."""
    if meaning not in COSIGN_MEANINGS:
        raise WorkflowError(f"a co-signature means one of {', '.join(COSIGN_MEANINGS)}")
    role = account_role(db, user_id)
    allowed = permissions(role, True)
    if not allowed.cosign:
        raise PermissionDenied(f"{user_id} is {role}: only a physician can co-sign")
    target = _target(db, session_id)
    _refuse_unless_matching(db, session_id, user_id, "co-sign")
    check_key_role(db, user_id, password, role)
    return cosign(db, target, user_id, password, meaning, t_wall=t_wall)


def addendum_session(db, session_id: str, user_id: str, password: str | UnlockedKey, text: str, *,
                     t_wall: float | None = None) -> SignedRecord:
    """A signed addendum to the session's record (a new record linked to it by hash)."""
    from .signing import add_addendum

    if not text or not text.strip():
        raise WorkflowError("an addendum needs text")
    role = account_role(db, user_id)
    if not permissions(role, True).addendum:
        raise PermissionDenied(f"{user_id} is {role}: read-only access, cannot add an addendum")
    target = _target(db, session_id)
    _refuse_unless_matching(db, session_id, user_id, "addendum")
    check_key_role(db, user_id, password, role)
    return add_addendum(db, target, user_id, password, text.strip(), t_wall=t_wall)


def _refuse_unless_matching(db, session_id: str, user_id: str, what: str) -> None:
    """Compare the rows with the signed record now (not when the screen was opened); refuse, and
    audit the refusal, when they differ."""
    check = check_session(db, session_id)
    if not check.flagged:
        return
    try:
        with write_transaction(db):
            append_audit(db, "signing.refused", user_id=user_id, session_id=session_id,
                         entity="record", entity_id=check.record_id,
                         detail={"what": what, "record_check": check.status,
                                 "problems": list(check.problems[:20])})
    except sqlite3.OperationalError:
        pass  # refused all the same
    raise WorkflowError(refusal(check))
