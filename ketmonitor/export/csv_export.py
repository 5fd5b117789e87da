"""csv: tidy files, one observation per row, one header row, every session of the export in the same
files (first column ``session_id``). Times are ISO 8601 UTC as stored (``t_utc``) plus ``t_rel_s``,
seconds since the session start on the session's monotonic clock. Corrected entries show the
effective (amended) value beside the original. ``sessions.csv`` says in ``record_check`` whether the
rows of a signed session still match its signed record. Columns: docs/export.md.
"""

from __future__ import annotations

import csv
import json
import os

from ..errors import ExportError
from ..metrics import METRICS
from .data import SessionData, json_text

COLUMNS = {
    "sessions.csv": ["session_id", "started_utc", "ended_utc", "status", "protocol", "patient_id",
                     "patient_mrn", "scenario", "workstation", "signatures", "record_check"],
    "numerics.csv": ["session_id", "t_utc", "t_rel_s", "source", "metric", "value", "unit", "flags",
                     "loinc", "ieee_code", "device_time"],
    "nibp.csv": ["session_id", "t_utc", "t_rel_s", "source", "systolic", "diastolic", "mean",
                 "pulse_rate", "unit", "error_code", "flags"],
    "events.csv": ["session_id", "event_id", "t_utc", "t_rel_s", "kind", "user_id", "data",
                   "effective_data", "amendment_ids"],
    "doses.csv": ["session_id", "dose_id", "t_utc", "t_rel_s", "action", "drug", "amount", "unit",
                  "route", "lot_number", "device_index", "rate", "rate_unit", "user_id",
                  "amendment_ids", "original_values"],
    "scale_entries.csv": ["session_id", "entry_id", "t_utc", "t_rel_s", "scale", "scale_version",
                          "variant", "total", "subscales", "complete", "check_id", "user_id",
                          "amendment_ids", "original_total"],
    "scale_items.csv": ["session_id", "entry_id", "t_utc", "scale", "scale_version", "variant",
                        "item", "score", "original_score"],
    "alarms.csv": ["session_id", "alarm_id", "start_utc", "start_rel_s", "end_utc", "end_rel_s",
                   "condition", "label", "kind", "priority", "source", "metric", "direction",
                   "limit_value", "trigger_value", "extreme_value", "end_value", "delay_s",
                   "limits", "latched", "acknowledged_utc", "acknowledged_by", "message"],
    "alarm_actions.csv": ["session_id", "alarm_id", "t_utc", "t_rel_s", "action", "user_id", "role",
                          "detail"],
    "amendments.csv": ["session_id", "amendment_id", "t_utc", "target_table", "target_id", "reason",
                       "changes", "user_id"],
}


def _num(v):
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _record_check(data: SessionData) -> str:
    """'matches', 'not signed', or 'DOES NOT MATCH ITS SIGNED RECORD: <what>' (every difference)."""
    c = data.check
    if c is None:
        return ""
    return f"{c.status}: {'; '.join(c.problems)}" if c.flagged else c.status


def _ids(row) -> str:
    return ";".join(str(i) for i in row.get("amendments", []))


class Exporter:
    needs_data = True

    def __init__(self, db, out):
        self.db, self.out = db, out
        self._fh, self._w = {}, {}
        for name in COLUMNS:
            out.path(name)  # refuse to replace an existing file before writing anything
        for name, cols in COLUMNS.items():
            try:
                fh = open(out.folder / (name + ".tmp"), "w", newline="", encoding="utf-8")
            except OSError as exc:
                self.abort()
                raise ExportError(f"cannot write {out.folder / name}: {exc.strerror or exc}") \
                    from None
            self._fh[name] = fh
            self._w[name] = csv.writer(fh, lineterminator="\r\n")
            self._w[name].writerow(cols)

    def _rel(self, data: SessionData, t_mono) -> str:
        return "" if t_mono is None else f"{t_mono - data.session['mono_anchor']:.3f}"

    def add(self, session_id: str, data: SessionData) -> dict:
        w, s, rec, sid = self._w, data.session, data.record, session_id
        counts = dict.fromkeys(COLUMNS, 0)

        def row(name, values):
            w[name].writerow(values)
            counts[name] += 1

        sigs = "; ".join(f"{x.printed_name} {x.meaning} {x.signed_at}" for x in data.signatures)
        row("sessions.csv", [sid, s["started_utc"], s["ended_utc"] or "", s["status"],
                             s["protocol"] or "", s["patient_id"] or "",
                             (data.patient or {}).get("mrn", ""), s["scenario"] or "",
                             s["workstation"] or "", sigs, _record_check(data)])
        for r in data.numerics:
            m = METRICS.get(r["metric"])
            row("numerics.csv", [sid, r["t_utc"], self._rel(data, r["t_mono"]), r["source"],
                                 r["metric"], _num(r["value"]), r["unit"], r["flags"] or "",
                                 (m.loinc if m else None) or "", (m.ieee if m else None) or "",
                                 r["device_time"] or ""])
        for g in data.nibp:
            v = g.values
            row("nibp.csv", [sid, g.t_utc, self._rel(data, g.t_mono), g.source,
                             _num(v.get("nibp_systolic")), _num(v.get("nibp_diastolic")),
                             _num(v.get("nibp_mean")), _num(v.get("nibp_pulse_rate")), "mm[Hg]",
                             _num(g.error_code), ",".join(g.flags)])
        for e in rec["events"]:
            eff = e["effective"]["data"]
            row("events.csv", [sid, e["id"], e["t_utc"], self._rel(data, e["t_mono"]), e["kind"],
                               e["user_id"] or "", json_text(e["data"]),
                               json_text(eff) if e["amendments"] else "", _ids(e)])
        for d in rec["doses"]:
            eff = d["effective"]
            changed = {k: d[k] for k in eff if k not in ("amendments", "effective")
                       and eff[k] != d.get(k)}
            row("doses.csv", [sid, d["id"], eff["t_utc"], self._rel(data, eff["t_mono"]),
                              eff["action"], eff["drug"], _num(eff["amount"]), eff["unit"] or "",
                              eff["route"], eff["lot_number"] or "", _num(eff["device_index"]),
                              _num(eff["rate"]), eff["rate_unit"] or "", eff["user_id"] or "",
                              _ids(d), json_text(changed) if changed else ""])
        for e in rec["scale_entries"]:
            eff = e["effective"]
            row("scale_entries.csv", [sid, e["id"], e["t_utc"], self._rel(data, e["t_mono"]),
                                      e["scale"], e["scale_version"], e["variant"] or "",
                                      _num(eff["total"]), json_text(eff["subscales"]),
                                      int(bool(eff["complete"])), e["check_id"] or "",
                                      e["user_id"] or "", _ids(e),
                                      _num(e["total"]) if eff["total"] != e["total"] else ""])
            items = eff["items"] if isinstance(eff["items"], dict) else json.loads(eff["items"])
            original = e["items"]
            for item in sorted(items, key=lambda k: int(k)):
                before = original.get(item)
                row("scale_items.csv", [sid, e["id"], e["t_utc"], e["scale"], e["scale_version"],
                                        e["variant"] or "", item, _num(items[item]),
                                        _num(before) if before != items[item] else ""])
        for a in data.alarms:
            acks = [x for x in a["actions"] if x["action"] in ("acknowledged", "cleared")]
            row("alarms.csv", [sid, a["alarm_id"], a["start_utc"], self._rel(data, a["start_mono"]),
                               a["end_utc"] or "", self._rel(data, a["end_mono"]), a["condition"],
                               a["label"], a["kind"], a["priority"], a["source"] or "",
                               a["metric"] or "", a["direction"] or "", _num(a["limit_value"]),
                               _num(a["trigger_value"]), _num(a["extreme_value"]),
                               _num(a["end_value"]), _num(a["delay_s"]), json_text(a["limits"]),
                               int(a["latched"]), acks[0]["t_utc"] if acks else "",
                               (acks[0]["user_id"] or "") if acks else "", a["message"]])
        actions = sorted((x for a in data.alarms for x in a["actions"]),
                         key=lambda x: (x["t_wall"], x["id"]))
        seen = {x["id"] for x in actions}
        actions += [x for x in self._unlinked_actions(sid) if x["id"] not in seen]
        for x in actions:
            row("alarm_actions.csv", [sid, x["alarm_id"] or "", x["t_utc"],
                                      self._rel(data, x["t_mono"]), x["action"], x["user_id"] or "",
                                      x["role"] or "", json_text(x["detail"])])
        for a in rec["amendments"]:
            row("amendments.csv", [sid, a["id"], a["t_utc"], a["target_table"], a["target_id"],
                                   a["reason"], json_text(a["changes"]), a["user_id"] or ""])
        return {"files": list(COLUMNS), "rows": {k: v for k, v in counts.items() if v}}

    def _unlinked_actions(self, sid) -> list[dict]:
        """Pauses and resumes that covered no alarm (alarm_id NULL)."""
        cur = self.db.conn.execute("SELECT * FROM alarm_actions WHERE session_id = ? AND alarm_id"
                                   " IS NULL ORDER BY t_wall, id", (sid,))
        cols = [c[0] for c in cur.description]
        out = []
        for r in cur.fetchall():
            d = dict(zip(cols, r))
            d["detail"] = json.loads(d["detail"])
            out.append(d)
        return out

    def abort(self) -> None:
        """An export that failed leaves no half-written CSV behind."""
        for name, fh in self._fh.items():
            if not fh.closed:
                fh.close()
            (self.out.folder / (name + ".tmp")).unlink(missing_ok=True)

    def finish(self) -> None:
        for name, fh in self._fh.items():
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
            os.replace(self.out.folder / (name + ".tmp"), self.out.folder / name)
            self.out.register(name)
