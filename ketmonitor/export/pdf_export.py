"""pdf: a human-readable session report for the chart and for inspectors, ``<session>.pdf``.

Made with reportlab alone (no Qt): patient, protocol, doses, vector trend charts (one-minute
medians of SpO2 and pulse, every NIBP reading, dose markers), the NIBP table, scales, events,
alarms with their acknowledgements, amendments beside the originals, and the signature
manifestations of 21 CFR 11.50 — printed name, date and time, meaning — with the outcome of checking
each signature when the report was made. A signed session's rows are compared with its record first
(``signing.matching``): when they differ, a red banner at the top lists how ('DOES NOT MATCH ITS
SIGNED RECORD: ...'), every page's footer says so, and the record is never called verified. Times
are UTC (the record's time base), with minutes since the session start.
"""

from __future__ import annotations

import io
import time
from xml.sax.saxutils import escape

from reportlab.graphics.charts.lineplots import LinePlot
from reportlab.graphics.shapes import Drawing, Line, String
from reportlab.graphics.widgets.markers import makeMarker
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import (KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table,
                                TableStyle)

from .. import __version__
from ..clock import utc_iso
from ..errors import KetmonitorError
from ..patients import REMS_FLAGS
from .data import SessionData, human_utc, json_text, minute_medians, minutes_since

_STYLES = getSampleStyleSheet()
H1, H2, BODY = _STYLES["Title"], _STYLES["Heading2"], _STYLES["BodyText"]
SMALL = _STYLES["BodyText"].clone("small", fontSize=7.5, leading=9)
WIDTH = A4[0] - 30 * mm


def P(text, style=SMALL) -> Paragraph:
    return Paragraph(escape("" if text is None else str(text)), style)


def table(header: list[str], rows: list[list], widths: list[float] | None = None) -> Table:
    data = [[P(h, SMALL) for h in header]] + [[c if isinstance(c, Paragraph) else P(c) for c in r]
                                              for r in rows]
    t = Table(data, colWidths=widths, repeatRows=1)
    t.setStyle(TableStyle([
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e4e8ee")),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#9aa3ad")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
    ]))
    return t


def _fmt(v, unit: str = "") -> str:
    if v is None:
        return "-"
    text = f"{v:g}" if isinstance(v, (int, float)) else str(v)
    return f"{text} {unit}".strip()


def plain(value) -> str:
    """JSON-ish data for people: ``key: value; key: value`` without quotes or braces."""
    if isinstance(value, dict):
        return "; ".join(f"{k}: {plain(v)}" for k, v in value.items() if v not in (None, "", {}))
    if isinstance(value, list):
        return ", ".join(plain(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _when(data: SessionData, iso: str | None, t_wall: float | None = None) -> str:
    if not iso:
        return "-"
    from ..clock import parse_utc

    t = parse_utc(iso) if t_wall is None else t_wall
    return f"{human_utc(iso)} (+{minutes_since(data, t):.0f} min)"


def trend_chart(data: SessionData, title: str, series: list[tuple[str, list, object]],
                y_range: tuple[float, float], height: float = 55 * mm) -> Drawing:
    """A vector line chart: x = minutes since the session start; dose times as dashed lines."""
    d = Drawing(WIDTH, height)
    d.add(String(0, height - 9, title, fontName="Helvetica-Bold", fontSize=8))
    plot = LinePlot()
    plot.x, plot.y, plot.width, plot.height = 28, 24, WIDTH - 40, height - 40
    lines = [pts for _, pts, _ in series if pts]
    end_min = max([minutes_since(data, data.start_wall) + 1]
                  + [p[0] for pts in lines for p in pts])
    plot.data = lines or [[(0, y_range[0])]]
    plot.xValueAxis.valueMin, plot.xValueAxis.valueMax = 0, max(10.0, end_min)
    plot.xValueAxis.valueStep = 15 if end_min > 60 else 5
    plot.yValueAxis.valueMin, plot.yValueAxis.valueMax = y_range
    plot.xValueAxis.labels.fontSize = plot.yValueAxis.labels.fontSize = 6.5
    i = 0
    for label, pts, style in series:
        if not pts:
            continue
        color, marker = style
        plot.lines[i].strokeColor = color
        plot.lines[i].strokeWidth = 0.8
        if marker:
            plot.lines[i].symbol = makeMarker(marker, size=3, fillColor=color, strokeColor=color)
            plot.lines[i].strokeWidth = 0.01 if marker == "FilledCircle" else 0.8
        i += 1
    d.add(plot)
    scale = plot.width / (plot.xValueAxis.valueMax - plot.xValueAxis.valueMin)
    for dose in data.record["doses"]:
        if dose["action"] in ("dose", "infusion_start", "infusion_stop"):
            x = plot.x + minutes_since(data, dose["t_wall"]) * scale
            d.add(Line(x, plot.y, x, plot.y + plot.height, strokeColor=colors.HexColor("#8a4fbf"),
                       strokeDashArray=[2, 2], strokeWidth=0.6))
    legend_w = sum(14 + len(label) * 3.6 + 10 for label, _p, _s in series) + 45
    legend_x = WIDTH - legend_w
    for label, pts, (color, _m) in series:
        d.add(Line(legend_x, height - 6, legend_x + 10, height - 6, strokeColor=color,
                   strokeWidth=1.5))
        d.add(String(legend_x + 13, height - 8, label, fontSize=6.5))
        legend_x += 14 + len(label) * 3.6 + 10
    d.add(String(legend_x, height - 8, "dashed: dose", fontSize=6.5,
                 fillColor=colors.HexColor("#8a4fbf")))
    d.add(String(plot.x + plot.width / 2 - 40, 1, "minutes since session start", fontSize=6.5))
    return d


def _minute_points(data: SessionData, metric: str) -> list[tuple[float, float]]:
    return [(b["minute"] + 0.5, b["median"]) for b in minute_medians(data.numerics, metric,
                                                                     data.start_wall)
            if b["median"] is not None]


def signature_rows(data: SessionData) -> list[list]:
    rows = []
    for rec in data.records:
        for s in rec.signatures:
            rows.append([s.printed_name, f"{human_utc(s.signed_at)}\n{s.signed_at}", s.meaning,
                         f"{s.role}, user {s.signer_id}", f"{rec.kind} record {rec.record_id}"])
    return rows


def record_check(db, data: SessionData):
    """The comparison of the session's rows with its signed record (made now when the runner did
    not attach one): a report never calls a record verified without it."""
    if data.check is None:
        from ..signing.matching import check_session

        data.use_check(check_session(db, data.id))
    return data.check


def verify_records(db, data: SessionData) -> dict:
    """Record id -> what the report says about it. 'verified' only when the signatures verify
    and, for the original record, the session data in the report matches it."""
    check = record_check(db, data)
    out = {}
    for rec in data.records:
        why = check.records.get(rec.record_id)
        if why:
            out[rec.record_id] = f"VERIFICATION FAILED: {why}"
        elif rec.kind == "original" and check.data_problems:
            out[rec.record_id] = ("signatures are valid, but the session data in this report DOES "
                                  "NOT MATCH this signed record (see the top of the report)")
        elif rec.kind == "original":
            out[rec.record_id] = ("signatures verified at export, and the session data in this "
                                  "report matches the signed record")
        else:
            out[rec.record_id] = "signatures verified at export"
    return out


BANNER_RED = colors.HexColor("#b00020")
BANNER_PROBLEMS = 12  # listed in the banner; the rest are counted


def mismatch_banner(check, *, what: str = "report") -> Table | None:
    """A red box at the top: 'DOES NOT MATCH ITS SIGNED RECORD: <what>' (or the signature
    failure), every difference listed (up to BANNER_PROBLEMS)."""
    if check is None or not check.flagged:
        return None
    head = Paragraph(f"<b>{escape(check.status)}</b>", BODY.clone("banner-head",
                                                                  textColor=BANNER_RED))
    lines = [P("• " + p, SMALL) for p in check.problems[:BANNER_PROBLEMS]]
    more = len(check.problems) - BANNER_PROBLEMS
    if more > 0:
        lines.append(P(f"... and {more} more differences", SMALL))
    lines.append(P(f"The session data in this {what} is the database as it is now, not the signed "
                   "record (the patient and site are shown as signed). The signed record itself is "
                   "the json export of this session.", SMALL))
    t = Table([[head]] + [[x] for x in lines], colWidths=[WIDTH])
    t.setStyle(TableStyle([("BOX", (0, 0), (-1, -1), 1.5, BANNER_RED),
                           ("BACKGROUND", (0, 0), (-1, -1), colors.HexColor("#fde8ea")),
                           ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                           ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5)]))
    return t


def build_pdf(db, data: SessionData, verification: dict | None = None) -> bytes:
    """The report; ``verification`` (record id -> outcome) is computed when not given."""
    check = record_check(db, data) if data.records else data.check
    s, p, rec = data.session, data.patient or {}, data.record
    story: list = []
    made = utc_iso(time.time())
    story.append(Paragraph("Ketamine / esketamine dosing session report", H1))
    signed = "signed" if data.records else "NOT SIGNED"
    story.append(P(f"Session {data.id} — status {s['status']} ({signed}) — report made "
                   f"{human_utc(made)} by ketmonitor {__version__}", BODY))
    banner = mismatch_banner(check)
    if banner is not None:
        story += [Spacer(1, 3), banner]
    story.append(Spacer(1, 4))

    story.append(Paragraph("Patient and session", H2))
    conc = ", ".join(f"{label}: {'yes' if p.get(k) else 'no' if p.get(k) is not None else 'not asked'}"
                     for k, label in REMS_FLAGS.items())
    clinic = data.clinic or {}
    story.append(table(["Field", "Value"], [
        ["Patient", f"{p.get('name', '-')} (MRN {p.get('mrn', '-')})"],
        ["Birth date, sex, weight", f"{p.get('birth_date') or '-'}, {p.get('sex') or '-'}, "
                                    f"{_fmt(p.get('weight_kg'), 'kg')}"],
        ["Concomitant medication", conc if p else "-"],
        ["Protocol", _protocol_text(data)],
        ["Started", human_utc(s["started_utc"])], ["Ended", human_utc(s.get("ended_utc"))],
        ["Site", f"{clinic.get('name', '-')} {clinic.get('address', '')}".strip()],
        ["Workstation", s.get("workstation") or "-"],
    ], [45 * mm, WIDTH - 45 * mm]))
    if check is not None and check.signed:
        story.append(P("Patient and site as signed in the record"
                       + ("; " + "; ".join(check.notes) if check.notes else "") + ".", SMALL))

    story.append(Paragraph("Doses", H2))
    story.append(table(["Time (UTC)", "Action", "Drug", "Amount", "Route", "Lot", "By", "Amended"],
                       [[_when(data, d["effective"]["t_utc"]), d["effective"]["action"],
                         d["effective"]["drug"],
                         _fmt(d["effective"]["amount"], d["effective"]["unit"] or "")
                         + (f", rate {_fmt(d['effective']['rate'], d['effective']['rate_unit'])}"
                            if d["effective"].get("rate") is not None else ""),
                         d["effective"]["route"], d["effective"]["lot_number"] or "-",
                         data.user_name(d["user_id"]),
                         "amendment " + ", ".join(map(str, d["amendments"]))
                         if d["amendments"] else ""] for d in rec["doses"]] or [["-"] * 8]))

    story.append(Paragraph("Trends", H2))
    story.append(trend_chart(data, "SpO2 (%) and pulse rate (/min), one-minute medians", [
        ("SpO2 %", _minute_points(data, "spo2"), (colors.HexColor("#1f77b4"), None)),
        ("Pulse /min", _minute_points(data, "pulse_rate"), (colors.HexColor("#2ca02c"), None)),
    ], (40, 160)))
    nibp = {name: [(minutes_since(data, g.t_wall), g.values[name]) for g in data.nibp
                   if g.values.get(name) is not None]
            for name in ("nibp_systolic", "nibp_diastolic", "nibp_mean")}
    story.append(trend_chart(data, "Blood pressure (mm[Hg]), every reading", [
        ("systolic", nibp["nibp_systolic"], (colors.HexColor("#d62728"), "FilledCircle")),
        ("diastolic", nibp["nibp_diastolic"], (colors.HexColor("#ff7f0e"), "FilledCircle")),
        ("mean", nibp["nibp_mean"], (colors.HexColor("#7f7f7f"), "FilledCircle")),
    ], (30, 220)))

    story.append(Paragraph("Blood pressure readings", H2))
    story.append(table(["Time (UTC)", "Systolic", "Diastolic", "Mean", "Pulse", "Source", "Note"],
                       [[_when(data, g.t_utc, g.t_wall), _fmt(g.values.get("nibp_systolic")),
                         _fmt(g.values.get("nibp_diastolic")), _fmt(g.values.get("nibp_mean")),
                         _fmt(g.values.get("nibp_pulse_rate")), g.source,
                         (f"error {g.error_code:g}" if g.error_code is not None else "")
                         + (" " + ",".join(g.flags) if g.flags else "")] for g in data.nibp]
                       or [["-"] * 7]))

    story.append(Paragraph("Scales", H2))
    rows = []
    for e in rec["scale_entries"]:
        eff = e["effective"]
        items = " ".join(f"{k}:{v}" for k, v in sorted(eff["items"].items(), key=lambda kv: int(kv[0])))
        rows.append([_when(data, e["t_utc"]), f"{e['scale']} v{e['scale_version']}"
                     + (f" ({e['variant']})" if e["variant"] else ""),
                     _fmt(eff["total"]) + ("" if eff["complete"] else " (incomplete)"),
                     plain(eff.get("subscales") or {}), items, e["check_id"] or "",
                     data.user_name(e["user_id"])
                     + (f"; amended ({', '.join(map(str, e['amendments']))})" if e["amendments"]
                        else "")])
    story.append(table(["Time (UTC)", "Scale", "Total", "Subscales", "Item scores", "Check", "By"],
                       rows or [["-"] * 7],
                       [30 * mm, 20 * mm, 14 * mm, 22 * mm, 55 * mm, 18 * mm, 21 * mm]))

    story.append(Paragraph("Events", H2))
    rows = []
    for e in rec["events"]:
        if e["kind"].startswith("alarm."):
            continue
        shown = plain(e["data"])
        if e["amendments"]:
            shown += f" — corrected to: {plain(e['effective']['data'])}"
        rows.append([_when(data, e["t_utc"]), e["kind"], shown, data.user_name(e["user_id"])])
    story.append(table(["Time (UTC)", "Kind", "Details", "By"], rows or [["-"] * 4],
                       [32 * mm, 25 * mm, WIDTH - 92 * mm, 35 * mm]))

    story.append(Paragraph("Alarms", H2))
    rows = []
    for a in data.alarms:
        acks = [f"{x['action']} {human_utc(x['t_utc'])} by {x['user_id'] or '-'}"
                for x in a["actions"]]
        value = ""
        if a["trigger_value"] is not None:
            value = (f"{_fmt(a['trigger_value'])} (limit {_fmt(a['limit_value'])}, worst "
                     f"{_fmt(a['extreme_value'])})")
        rows.append([_when(data, a["start_utc"], a["start_wall"]),
                     human_utc(a["end_utc"]) if a["end_utc"] else "still active at the end",
                     a["priority"], a["label"] or a["condition"], value or a["message"],
                     "; ".join(acks) or "-"])
    story.append(table(["Start (UTC)", "End", "Priority", "Condition", "Value", "Actions"],
                       rows or [["none", "", "", "", "", ""]],
                       [30 * mm, 27 * mm, 14 * mm, 30 * mm, 40 * mm, WIDTH - 141 * mm]))

    story.append(Paragraph("Amendments", H2))
    story.append(table(["Time (UTC)", "Corrects", "Reason", "New values", "By"],
                       [[_when(data, a["t_utc"]), f"{a['target_table']} {a['target_id']}", a["reason"],
                         plain(a["changes"]), data.user_name(a["user_id"])]
                        for a in rec["amendments"]] or [["none", "", "", "", ""]]))
    addenda = [r for r in data.records if r.kind == "addendum"]
    if addenda:
        story.append(Paragraph("Signed addenda", H2))
        rows = []
        for r in addenda:
            text = _addendum_text(db, r.record_id)
            rows.append([human_utc(r.created_utc), text, r.record_id])
        story.append(table(["Time (UTC)", "Addendum", "Record"], rows,
                           [30 * mm, WIDTH - 95 * mm, 65 * mm]))

    story.append(Paragraph("Electronic signatures (21 CFR 11.50)", H2))
    if data.records:
        verification = verification if verification is not None else verify_records(db, data)
        story.append(KeepTogether(table(
            ["Printed name", "Date and time", "Meaning", "Signer", "Record"],
            signature_rows(data),
            [38 * mm, 40 * mm, 22 * mm, 32 * mm, WIDTH - 132 * mm])))
        for rec in data.records:
            story.append(P(f"{rec.kind.capitalize()} record {rec.record_id}: "
                           f"{verification[rec.record_id]}", BODY))
        story.append(P("Each signature is an Ed25519 JWS over the exact bytes of the signed record "
                       "(SHA-256 " + ", ".join(f"{r.kind} {r.payload_sha256}" for r in data.records)
                       + "); verify the json export with 'ketmonitor verify' or any JOSE library.",
                       SMALL))
    else:
        story.append(P("This session has not been signed: this report is not a signed record.",
                       BODY))

    buf = io.BytesIO()

    def footer(canvas, doc):
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.drawString(15 * mm, 8 * mm, f"ketmonitor session {data.id} — "
                                           f"{p.get('name', 'no patient')} — page {doc.page}")
        if check is not None and check.flagged:  # every page, so a loose page still says it
            canvas.setFillColor(BANNER_RED)
            canvas.setFont("Helvetica-Bold", 8)
            canvas.drawRightString(A4[0] - 15 * mm, 8 * mm, check.status)
        canvas.restoreState()

    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm,
                            topMargin=14 * mm, bottomMargin=15 * mm,
                            title=f"ketmonitor session {data.id}", author="ketmonitor",
                            subject="Session report", invariant=1)
    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buf.getvalue()


def _protocol_text(data: SessionData) -> str:
    """The protocol's name and the version in force at check-in; its title from this computer's
    protocol files when they still hold it."""
    name = data.protocol
    if not name:
        return "-"
    checkin = next((e["data"] for e in data.record["events"] if e["kind"] == "checkin"), {})
    version = checkin.get("protocol_version")
    text = name + (f", version {version} at check-in" if version else "")
    try:
        from ..protocols import load_protocol

        p = load_protocol(name)
        same = version is None or str(p.version) == str(version)
        return f"{text} — {p.title}" + ("" if same else f" (now version {p.version})")
    except KetmonitorError:
        return text


def _addendum_text(db, record_id: str) -> str:
    import json

    from ..signing import record_document

    payload = json.loads(record_document(db, record_id).payload_bytes())
    add = payload.get("addendum") or {}
    return add.get("text") if set(add) == {"text"} else json_text(add)


class Exporter:
    needs_data = True

    def __init__(self, db, out):
        self.db, self.out = db, out

    def add(self, session_id: str, data: SessionData) -> dict:
        name = f"{session_id}.pdf"
        self.out.write(name, build_pdf(self.db, data))
        return {"files": [name], "signatures": len(data.signatures)}

    def finish(self) -> None:
        pass
