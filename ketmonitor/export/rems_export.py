"""rems: the esketamine REMS Patient Monitoring Form fields of a session, as JSON
(``<session>.rems.json``) and a printable page (``<session>.rems.pdf``), listing every required field
still missing. Built on ``workflow_read.rems_summary``; this module adds the fields the summary does
not hold (vitals acceptable before dosing and before the end, the dose category, first treatment),
treats empty text as missing, and says why a scheduled BP is absent (a skipped check's reason).

Only esketamine sessions have a REMS form: other sessions are refused (skipped in a multi-session
export). The sedation, dissociation and respiratory-depression questions are listed as missing
until their wording is public (clinical.md).

A signed session whose rows no longer match its signed record is marked: ``record_check`` and
``matches_signed_record`` in the JSON, and a red banner on the page saying not to submit the form.
The patient and site of a signed session are taken as signed (the concomitant-medication answers of
that day, not of a later check-in).
"""

from __future__ import annotations

import io
import json
import time

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from ..clock import utc_iso
from ..errors import ExportError, KetmonitorError
from ..patients import REMS_FLAGS
from ..workflow_read import rems_summary
from .data import SessionData, human_utc
from ..signing.matching import MATCHES, NOT_SIGNED
from .pdf_export import BANNER_PROBLEMS, BANNER_RED, BODY, H1, SMALL, WIDTH, P

FORM = "Esketamine REMS Patient Monitoring Form"
BP_CHECKS = {"bp_before_dose": "bp@pre", "bp_at_40": "bp@40", "bp_before_end": "bp@discharge"}


def _bp(v) -> str | None:
    if not v:
        return None
    dia = v.get("diastolic")
    return (f"{v['systolic']:g}/{dia:g} mmHg" if dia is not None else f"{v['systolic']:g}/? mmHg") \
        + f" at {human_utc(v['t_utc'])} ({v.get('source') or '?'})"


def _yes_no(v) -> str | None:
    return None if v is None else ("Yes" if v else "No")


def is_esketamine(data: SessionData) -> bool:
    if any(d["effective"]["drug"] == "esketamine" for d in data.record["doses"]):
        return True
    if data.record["doses"]:
        return False
    try:
        from ..protocols import load_protocol

        return bool(data.protocol) and load_protocol(data.protocol).drug == "esketamine"
    except KetmonitorError:
        return False


def rems_form(db, data: SessionData) -> dict:
    """The form as fields in printed order; ``missing`` lists the labels of the required ones
    without a value."""
    if not is_esketamine(data):
        raise ExportError(f"session {data.id} is not an esketamine session: no REMS form")
    s = rems_summary(db, data.id)
    # a signed session's patient and site as signed (data.use_check): the answers on the day
    p, site = data.patient or {}, data.clinic or {}
    s |= {"patient_name": p.get("name"), "birth_date": p.get("birth_date"), "sex": p.get("sex"),
          "concomitant": {k: p.get(k) for k in REMS_FLAGS},
          "site_name": site.get("name"), "site_address": site.get("address")}
    rec = data.record
    baseline = next((e["effective"]["data"] for e in reversed(rec["events"])
                     if e["kind"] == "baseline"), None)
    proceed = next((e["effective"]["data"] for e in reversed(rec["events"])
                    if e["kind"] == "baseline.proceed"), None)
    before_dose = None
    if baseline is not None:
        before_dose = "No" if baseline.get("bp_high") else "Yes"
        if baseline.get("bp_high") and proceed:
            before_dose += f" (dosed after review: {proceed.get('reason')})"
    discharge = rec["discharges"][-1]["effective"] if rec["discharges"] else None
    before_end = None
    if discharge and "vitals_acceptable" in (discharge.get("criteria") or {}):
        before_end = _yes_no(discharge["criteria"]["vitals_acceptable"])
    skipped = {r["check_id"]: r["effective"].get("reason") for r in rec["check_results"]
               if r["effective"]["status"] == "skipped"}
    dose = s["dose_mg"]
    dose_text = None if dose is None else (f"{dose:g} mg" if dose in (56, 84)
                                           else f"other: {dose:g} mg")
    conc = s["concomitant"]

    fields = [
        ("patient_name", "Patient name", s["patient_name"]),
        ("birth_date", "Date of birth", s["birth_date"]),
        ("sex", "Sex", s["sex"]),
        ("first_treatment", "First treatment / newly enrolled", None),
        *[(f"concomitant.{k}", f"Concomitant: {label}", _yes_no(conc.get(k)))
          for k, label in REMS_FLAGS.items()],
        ("clinician_name", "Monitoring clinician name", s["clinician_name"]),
        ("clinician_phone", "Monitoring clinician phone", s["clinician_phone"]),
        ("clinician_email", "Monitoring clinician email", s["clinician_email"]),
        ("site_name", "Site name", s["site_name"]),
        ("site_address", "Site address", s["site_address"]),
        ("treatment_date", "Treatment date", s["treatment_date"]),
        ("dose", "Dose (56 mg / 84 mg / other)", dose_text),
        ("lot_numbers", "Lot number(s)", ", ".join(s["lot_numbers"]) or None),
        ("minutes_first_dose_to_end", "Total minutes from first device to end of monitoring",
         s["minutes_first_dose_to_end"]),
        ("minutes_until_ready", "Minutes until the patient would have been ready to leave",
         s["minutes_until_ready"]),
        ("vitals_acceptable_before_dose", "Vital signs acceptable before dosing", before_dose),
        ("vitals_acceptable_before_end", "Vital signs acceptable before end of monitoring",
         before_end),
        ("bp_before_dose", "Blood pressure before dosing", _bp(s["bp_before_dose"])),
        ("bp_at_40", "Blood pressure about 40 minutes after dosing", _bp(s["bp_at_40"])),
        ("bp_before_end", "Blood pressure before end of monitoring", _bp(s["bp_before_end"])),
        ("sedation_dissociation_respiratory", "Sedation, dissociation and respiratory "
         "depression questions (form wording not public)", None),
    ]
    out = []
    for key, label, value in fields:
        if isinstance(value, str) and not value.strip():
            value = None
        note = None
        check = BP_CHECKS.get(key)
        if value is None and check in skipped:
            note = f"scheduled check {check} was skipped: {skipped[check]}"
        out.append({"key": key, "label": label, "value": value, "missing": value is None,
                    **({"note": note} if note else {})})
    missing = [f["label"] for f in out if f["missing"]]
    form = {"form": FORM, "session_id": data.id, "generated_utc": utc_iso(time.time()),
            "signed": bool(data.records), "complete": not missing, "missing": missing,
            "missing_keys": [f["key"] for f in out if f["missing"]], "fields": out,
            "source_summary": s}
    if data.check is not None:
        form["record_check"] = data.check.as_dict()
        form["matches_signed_record"] = data.check.matches
    return form


def _banner(check: dict | None):
    if not check or check["status"] in (NOT_SIGNED, MATCHES):
        return None
    head = BODY.clone("rems-banner", textColor=BANNER_RED)
    lines = [Paragraph(f"<b>{check['status']}</b> — do not submit this form until the difference "
                       "is resolved", head)]
    lines += [P("• " + p) for p in check["problems"][:BANNER_PROBLEMS]]
    more = len(check["problems"]) - BANNER_PROBLEMS + check.get("more_problems", 0)
    if more > 0:
        lines.append(P(f"... and {more} more differences"))
    t = Table([[x] for x in lines], colWidths=[WIDTH])
    t.setStyle(TableStyle([("BOX", (0, 0), (-1, -1), 1.5, BANNER_RED),
                           ("BACKGROUND", (0, 0), (-1, -1), colors.HexColor("#fde8ea"))]))
    return t


def form_pdf(form: dict) -> bytes:
    story = [Paragraph(FORM, H1),
             P(f"Session {form['session_id']} — filled by ketmonitor from the session record on "
               f"{human_utc(form['generated_utc'])}"
               + ("" if form["signed"] else " — the session record is NOT signed"), BODY),
             Spacer(1, 4)]
    banner = _banner(form.get("record_check"))
    if banner is not None:
        story += [banner, Spacer(1, 4)]
    if form["missing"]:
        story.append(P(f"{len(form['missing'])} required field(s) missing — complete them before "
                       "submitting: " + "; ".join(form["missing"]), BODY))
    else:
        story.append(P("Every field the form needs is filled.", BODY))
    story.append(Spacer(1, 4))
    rows = [[P("Field", SMALL), P("Value", SMALL)]]
    style = [("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
             ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e4e8ee")),
             ("VALIGN", (0, 0), (-1, -1), "TOP")]
    for i, f in enumerate(form["fields"], 1):
        value = "MISSING" if f["missing"] else str(f["value"])
        if f.get("note"):
            value += f" — {f['note']}"
        rows.append([P(f["label"]), P(value)])
        if f["missing"]:
            style.append(("TEXTCOLOR", (1, i), (1, i), colors.HexColor("#b00020")))
            style.append(("BACKGROUND", (1, i), (1, i), colors.HexColor("#fde8ea")))
    t = Table(rows, colWidths=[70 * mm, WIDTH - 70 * mm])
    t.setStyle(TableStyle(style))
    story.append(t)
    story.append(Spacer(1, 8))
    story.append(P("Signature of the monitoring clinician: ______________________    "
                   "Date: ______________", BODY))
    buf = io.BytesIO()
    SimpleDocTemplate(buf, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=14 * mm,
                      bottomMargin=14 * mm, title=f"REMS form {form['session_id']}",
                      author="ketmonitor", invariant=1).build(story)
    return buf.getvalue()


class Exporter:
    needs_data = True
    needs_numerics = False  # the form reads BPs from the check results

    def __init__(self, db, out):
        self.db, self.out = db, out

    def add(self, session_id: str, data: SessionData) -> dict:
        form = rems_form(self.db, data)
        names = [f"{session_id}.rems.json", f"{session_id}.rems.pdf"]
        self.out.write(names[0], json.dumps(form, indent=1, ensure_ascii=False,
                                            default=str).encode())
        self.out.write(names[1], form_pdf(form))
        return {"files": names, "missing": form["missing_keys"]}

    def finish(self) -> None:
        pass
