"""Reading a session's workflow record for review, signing and export (read-only; any connection).

``workflow_record`` returns plain JSON-able dicts: the stored rows as written, each with
``amendments`` (the corrections that point at it, oldest first) and ``effective`` (the row with
those corrections applied), so a reader shows the corrected value and never hides the original.
``rems_summary`` gathers the fields of the esketamine REMS patient monitoring form that the record
can fill, and lists the ones it cannot.
"""

from __future__ import annotations

import json

from .patients import REMS_FLAGS, get_patient
from .users import get_clinic

_JSON_COLUMNS = {"items", "subscales", "criteria", "changes", "data"}


def _rows(db, sql, params=()) -> list[dict]:
    cur = db.conn.execute(sql, params)
    cols = [c[0] for c in cur.description]
    out = []
    for r in cur.fetchall():
        row = dict(zip(cols, r))
        for k in _JSON_COLUMNS & set(row):
            if isinstance(row[k], str):
                row[k] = json.loads(row[k])
        out.append(row)
    return out


def _with_amendments(rows: list[dict], table: str, amendments: list[dict]) -> list[dict]:
    by_target: dict[str, list[dict]] = {}
    for a in amendments:
        if a["target_table"] == table:
            by_target.setdefault(str(a["target_id"]), []).append(a)
    for row in rows:
        fixes = by_target.get(str(row["id"]), [])
        effective = dict(row)
        for a in fixes:
            if table == "events":
                effective["data"] = {**effective["data"], **a["changes"]}
            else:
                effective.update(a["changes"])
        row["amendments"] = [a["id"] for a in fixes]
        row["effective"] = effective
    return rows


def workflow_record(db, session_id: str) -> dict:
    session = _rows(db, "SELECT * FROM sessions WHERE id = ?", (session_id,))
    if not session:
        from .errors import WorkflowError
        raise WorkflowError(f"no session {session_id}")
    session = session[0]
    amendments = _rows(db, "SELECT * FROM amendments WHERE session_id = ? ORDER BY id",
                       (session_id,))
    q = "SELECT * FROM {} WHERE session_id = ? ORDER BY t_wall, id"
    patient = get_patient(db, session["patient_id"]) if session["patient_id"] else None
    record = {
        "session": session,
        "patient": None if patient is None else patient.__dict__,
        "doses": _with_amendments(_rows(db, q.format("doses"), (session_id,)), "doses",
                                  amendments),
        "scale_entries": _with_amendments(_rows(db, q.format("scale_entries"), (session_id,)),
                                          "scale_entries", amendments),
        "check_results": _with_amendments(_rows(db, q.format("check_results"), (session_id,)),
                                          "check_results", amendments),
        "discharges": _with_amendments(_rows(db, q.format("discharges"), (session_id,)),
                                       "discharges", amendments),
        "events": _with_amendments(_rows(db, q.format("events"), (session_id,)), "events",
                                   amendments),
        "amendments": _with_amendments(amendments, "amendments", amendments),
    }
    return record


def _bp_at(db, session_id, check_id) -> dict | None:
    """The BP that fulfilled a check: from the check result, completed from the numerics."""
    rows = _rows(db, "SELECT * FROM check_results WHERE session_id = ? AND check_id = ? AND"
                     " status = 'done'", (session_id, check_id))
    if not rows:
        return None
    r = rows[0]
    bp = {"t_utc": r["t_utc"], "systolic": r["data"].get("systolic"),
          "diastolic": r["data"].get("diastolic"), "source": r["data"].get("source")}
    if bp["diastolic"] is None:
        row = db.conn.execute("SELECT value FROM numerics WHERE session_id = ? AND metric ="
                              " 'nibp_diastolic' AND abs(t_mono - ?) < 1 LIMIT 1",
                              (session_id, r["t_mono"])).fetchone()
        bp["diastolic"] = row[0] if row else None
    return bp


def rems_summary(db, session_id: str) -> dict:
    """The REMS patient monitoring form fields this record holds; ``missing`` names the others."""
    rec = workflow_record(db, session_id)
    clinic = get_clinic(db)
    patient = rec["patient"] or {}
    doses = [d["effective"] for d in rec["doses"] if d["action"] == "dose"]
    discharge = rec["discharges"][-1]["effective"] if rec["discharges"] else None
    first = min((d["t_mono"] for d in doses), default=None)
    end_mono = None
    if rec["session"]["ended_utc"] is not None:
        row = db.conn.execute("SELECT max(t_mono) FROM events WHERE session_id = ? AND kind ="
                              " 'workflow.state' AND json_extract(data, '$.to') = 'ended'",
                              (session_id,)).fetchone()
        end_mono = row[0]
    out = {
        "patient_name": patient.get("name"), "birth_date": patient.get("birth_date"),
        "sex": patient.get("sex"),
        "concomitant": {k: patient.get(k) for k in REMS_FLAGS},
        "site_name": clinic.name if clinic else None,
        "site_address": clinic.address if clinic else None,
        "treatment_date": rec["session"]["started_utc"][:10],
        "dose_mg": sum(d["amount"] for d in doses if d["unit"] == "mg") or None,
        "lot_numbers": sorted({d["lot_number"] for d in doses if d.get("lot_number")}),
        "devices": len(doses),
        "minutes_first_dose_to_end": None if first is None or end_mono is None
        else round((end_mono - first) / 60, 1),
        "minutes_until_ready": discharge["minutes_to_ready"] if discharge else None,
        "bp_before_dose": _bp_at(db, session_id, "bp@pre"),
        "bp_at_40": _bp_at(db, session_id, "bp@40"),
        "bp_before_end": _bp_at(db, session_id, "bp@discharge"),
        "clinician_name": None, "clinician_phone": None, "clinician_email": None,
    }
    if discharge and discharge.get("user_id"):
        row = db.conn.execute("SELECT full_name, phone, email FROM users WHERE id = ?",
                              (discharge["user_id"],)).fetchone()
        if row:
            out["clinician_name"], out["clinician_phone"], out["clinician_email"] = \
                row[0], row[1] or None, row[2] or None
    out["missing"] = sorted([k for k, v in out.items() if v is None or v == []] +
                            [f"concomitant.{k}" for k, v in out["concomitant"].items() if v is None]
                            + ["sedation/dissociation/respiratory depression answers (REMS"
                               " wording not public)"])
    return out
