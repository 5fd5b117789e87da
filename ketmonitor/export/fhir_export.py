"""fhir: one FHIR R4 Bundle (type ``collection``) per session, ``<session>.fhir.json``.

Validated with ``fhir.resources.R4B`` (FHIR 4.3.0): fhir.resources 8 ships R5 as its default, R4B
and STU3, but no 4.0.1 package; every element written here exists unchanged in R4 4.0.1 (R4B changed
none of Patient, Encounter, Observation, MedicationAdministration, Medication, Questionnaire,
QuestionnaireResponse, Provenance, Practitioner, Organization, Device, DocumentReference, Bundle).

Numerics resolution (a 2-hour session holds ~7,200 values per metric):
- one Observation per metric per minute (vital-signs profile, LOINC + IEEE 11073 codings, UCUM):
  the minute's median, with the count in ``method.text``; a minute whose values were all missing
  carries ``dataAbsentReason`` (``error`` when the device flagged a condition such as sensor off);
- one Observation per alarm-relevant extreme: the value that raised each limit alarm and the worst
  value while it lasted, at their own times, with ``interpretation`` H or L;
- the full 1-second series of each metric as one Observation with ``valueSampledData`` (period
  1000 ms, ``E`` where the device sent no value), so nothing is lost;
- every NIBP measurement as its own 85354-9 panel with systolic, diastolic and mean as components
  (a component the device did not give has ``dataAbsentReason``), its pulse rate as 8867-4.
The pleth waveform stays in the signed record (digests) and the database.

The comparison of the rows with the signed record (``signing.matching``) is in ``Bundle.meta.tag``
(``urn:ketmonitor:record-check``: matches, not-signed, differs, signature-failed); a bundle whose
session does not match also carries the security label ``UNRELIABLE`` (v3-ObservationValue) and
starts with an OperationOutcome listing every difference.
"""

from __future__ import annotations

import base64
import json
import time
import uuid

from ..clock import utc_iso
from ..metrics import IEEE_NIBP, LOINC_BP_PANEL, LOINC_SPO2_ALT, METRICS
from ..samples import INFORMATIONAL
from .data import SessionData, minute_medians

R4_MODULE = "fhir.resources.R4B"
LOINC, UCUM = "http://loinc.org", "http://unitsofmeasure.org"
IEEE = "urn:iso:std:iso:11073:10101"
SNOMED = "http://snomed.info/sct"
OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
INTERP = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
ASTM_SIG = "urn:iso-astm:E1762-95:2013"
LOCAL = "urn:ketmonitor"
RECORD_CHECK = f"{LOCAL}:record-check"
V3_OBS_VALUE = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
RECORD_CHECK_CODES = {"matches": "matches", "not signed": "not-signed",
                      "DOES NOT MATCH ITS SIGNED RECORD": "differs",
                      "SIGNED RECORD DOES NOT VERIFY": "signature-failed"}
MAX_ISSUES = 100
PROFILE = "http://hl7.org/fhir/StructureDefinition/"
NS = uuid.UUID("6f1c2b0e-8a39-4c55-9a53-0b7d2f5f3a11")  # ids are stable across re-exports

LOINC_DISPLAY = {
    "59408-5": "Oxygen saturation in Arterial blood by Pulse oximetry",
    "2708-6": "Oxygen saturation in Arterial blood",
    "8867-4": "Heart rate", "8480-6": "Systolic blood pressure",
    "8462-4": "Diastolic blood pressure", "8478-0": "Mean blood pressure",
    "85354-9": "Blood pressure panel with all children optional",
}
IEEE_DISPLAY = {
    150456: "MDC_PULS_OXIM_SAT_O2", 149530: "MDC_PULS_OXIM_PULS_RATE",
    150452: "MDC_PULS_OXIM_PLETH", 150020: "MDC_PRESS_BLD_NONINV",
    150021: "MDC_PRESS_BLD_NONINV_SYS", 150022: "MDC_PRESS_BLD_NONINV_DIA",
    150023: "MDC_PRESS_BLD_NONINV_MEAN", 149546: "MDC_PULS_RATE_NON_INV",
}
PROFILES = {"spo2": "oxygensat", "pulse_rate": "heartrate", "nibp_pulse_rate": "heartrate"}
SERIES_METRICS = ("spo2", "pulse_rate", "perfusion_index")
# ketmonitor signature meaning -> ASTM E1762 signature type (docs/export.md explains the choice)
ASTM = {
    "authorship": ("1.2.840.10065.1.12.1.1", "Author's Signature"),
    "review": ("1.2.840.10065.1.12.1.13", "Review Signature"),
    "approval": ("1.2.840.10065.1.12.1.5", "Verification Signature"),
    "responsibility": ("1.2.840.10065.1.12.1.5", "Verification Signature"),
}
ASTM_ADDENDUM = ("1.2.840.10065.1.12.1.15", "Addendum Signature")
ROUTES = {"intranasal": ("46713006", "Nasal route"), "iv": ("47625008", "Intravenous route"),
          "im": ("78421000", "Intramuscular route"), "sublingual": ("37839007", "Sublingual route"),
          "oral": ("26643006", "Oral route")}
UCUM_UNITS = {"mg": "mg", "mcg": "ug", "ml": "mL", "mg/kg": "mg/kg", "mcg/kg": "ug/kg",
              "mg/h": "mg/h", "mg/kg/h": "mg/kg/h", "mg/min": "mg/min", "ml/h": "mL/h"}
GENDER = {"female": "female", "male": "male", "other": "other", "unknown": "unknown"}


def _uuid(*parts) -> str:
    return str(uuid.uuid5(NS, "/".join(str(p) for p in parts)))


def _quantity(value, unit: str) -> dict:
    q = {"value": value, "unit": unit}
    if unit not in ("1", ""):
        q |= {"system": UCUM, "code": unit}
    return q


def metric_code(name: str, *, with_alt: bool = True) -> dict:
    m = METRICS[name]
    codings = []
    if m.loinc:
        codings.append({"system": LOINC, "code": m.loinc, "display": LOINC_DISPLAY.get(m.loinc)})
    if name == "spo2" and with_alt:
        codings.append({"system": LOINC, "code": LOINC_SPO2_ALT,
                        "display": LOINC_DISPLAY[LOINC_SPO2_ALT]})
    if m.ieee:
        codings.append({"system": IEEE, "code": str(m.ieee), "display": IEEE_DISPLAY.get(m.ieee)})
    codings.append({"system": f"{LOCAL}:metric", "code": name, "display": m.label})
    return {"coding": [{k: v for k, v in c.items() if v is not None} for c in codings],
            "text": m.label}


_INFORMATIONAL = {c.value for c in INFORMATIONAL}  # flags that say nothing went wrong


def absent_reason(flags) -> str:
    """Why a minute has no value: "error" when the device flagged a problem with its values,
    "unknown" when it said nothing, or only something that is no problem (SmartPoint)."""
    return "error" if set(flags) - _INFORMATIONAL else "unknown"


def _absent(code: str) -> dict:
    return {"coding": [{"system": ABSENT, "code": code}]}


class Bundler:
    def __init__(self, data: SessionData):
        self.d = data
        self.sid = data.id
        self.entries: list[dict] = []
        self.refs: dict[str, str] = {}

    def ref(self, kind: str, key) -> str:
        return "urn:uuid:" + _uuid(self.sid, kind, key)

    def add(self, resource: dict, key) -> str:
        rid = _uuid(self.sid, resource["resourceType"], key)
        resource = {"resourceType": resource["resourceType"], "id": rid,
                    **{k: v for k, v in resource.items() if k != "resourceType"}}
        self.entries.append({"fullUrl": f"urn:uuid:{rid}", "resource": resource})
        return f"urn:uuid:{rid}"

    # -- parties -------------------------------------------------------------------------------
    def parties(self) -> None:
        d, p = self.d, self.d.patient
        if p:
            res = {"resourceType": "Patient", "active": True,
                   "identifier": [{"system": f"{LOCAL}:mrn", "value": p["mrn"]}],
                   "name": [{"text": p["name"]}]}
            if p.get("sex") in GENDER:
                res["gender"] = GENDER[p["sex"]]
            if p.get("birth_date"):
                res["birthDate"] = p["birth_date"]
            self.patient = self.add(res, p["id"] or p["mrn"])
        else:
            self.patient = self.add({"resourceType": "Patient", "active": True,
                                     "name": [{"text": "unidentified (no patient checked in)"}]},
                                    "none")
        self.org = None
        if d.clinic:
            c = d.clinic
            res = {"resourceType": "Organization", "name": c["name"]}
            if c.get("address"):
                res["address"] = [{"text": c["address"]}]
            telecom = [{"system": s, "value": c[k]} for s, k in (("phone", "phone"),
                                                                  ("email", "email")) if c.get(k)]
            if telecom:
                res["telecom"] = telecom
            self.org = self.add(res, "clinic")
        self.practitioners: dict[str, str] = {}
        users = {u for u in (e.get("user_id") for t in ("events", "doses", "scale_entries",
                                                        "discharges", "amendments")
                             for e in d.record[t]) if u}
        users |= {s.signer_id for s in d.signatures}
        for uid in sorted(users):
            info = d.users.get(uid, {})
            res = {"resourceType": "Practitioner", "active": True,
                   "identifier": [{"system": f"{LOCAL}:user", "value": uid}],
                   "name": [{"text": info.get("full_name") or uid}]}
            self.practitioners[uid] = self.add(res, uid)
        self.devices = {}
        for src in d.sources:
            res = {"resourceType": "Device", "status": "active",
                   "identifier": [{"system": f"{LOCAL}:source", "value": src}],
                   "deviceName": [{"name": src, "type": "user-friendly-name"}]}
            self.devices[src] = self.add(res, src)

    def who(self, user_id) -> dict | None:
        return {"reference": self.practitioners[user_id]} if user_id in self.practitioners else None

    def encounter(self) -> None:
        s = self.d.session
        res = {"resourceType": "Encounter",
               "identifier": [{"system": f"{LOCAL}:session", "value": self.sid}],
               "status": "finished" if s["ended_utc"] else "in-progress",
               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                         "code": "AMB", "display": "ambulatory"},
               "type": [{"coding": [{"system": f"{LOCAL}:protocol",
                                     "code": s["protocol"] or "none"}],
                         "text": f"Ketamine/esketamine dosing session, protocol "
                                 f"{s['protocol'] or 'none'}"}],
               "subject": {"reference": self.patient},
               "period": {"start": s["started_utc"], **({"end": s["ended_utc"]}
                                                        if s["ended_utc"] else {})}}
        parts = [{"individual": {"reference": r}} for r in self.practitioners.values()]
        if parts:
            res["participant"] = parts
        if self.org:
            res["serviceProvider"] = {"reference": self.org}
        self.enc = self.add(res, "encounter")

    # -- observations --------------------------------------------------------------------------
    def _obs(self, metric: str | None, code: dict, *, profile: str | None = None) -> dict:
        res = {"resourceType": "Observation", "status": "final",
               "category": [{"coding": [{"system": OBS_CAT, "code": "vital-signs",
                                         "display": "Vital Signs"}], "text": "Vital Signs"}],
               "code": code, "subject": {"reference": self.patient},
               "encounter": {"reference": self.enc}}
        profiles = [PROFILE + "vitalsigns"] + ([PROFILE + profile] if profile else [])
        res["meta"] = {"profile": profiles}
        return res

    def numerics(self) -> None:
        d = self.d
        rows = d.numerics
        for name in SERIES_METRICS:
            m = METRICS[name]
            profile = PROFILES.get(name) if m.loinc else None
            sources = sorted({r["source"] for r in rows if r["metric"] == name})
            for src in sources:
                mine = [r for r in rows if r["metric"] == name and r["source"] == src]
                if src == "manual":
                    self._spot_values(name, mine)
                    continue
                for b in minute_medians(mine, name, d.start_wall):
                    if not m.loinc:
                        continue  # no LOINC (perfusion index): only in the 1-second series
                    res = self._obs(name, metric_code(name), profile=profile)
                    res["effectivePeriod"] = {"start": utc_iso(b["start_wall"]),
                                              "end": utc_iso(b["start_wall"] + 60)}
                    res["device"] = {"reference": self.devices[src]}
                    if b["median"] is None:
                        res["dataAbsentReason"] = _absent(absent_reason(b["flags"]))
                    else:
                        res["valueQuantity"] = _quantity(round(b["median"], 2), m.unit)
                    res["method"] = {"text": f"median of {b['n'] - b['missing']} one-second "
                                             f"values in the minute ({b['missing']} missing)"
                                             + (f"; device flags: {', '.join(b['flags'])}"
                                                if b["flags"] else "")}
                    self.add(res, (name, src, "minute", b["minute"]))
                self._series(name, src, mine)
        self._extremes()
        for g in d.nibp:
            self._nibp(g)

    def _spot_values(self, name, rows) -> None:
        """Values entered by hand (e.g. the baseline): each its own Observation."""
        m = METRICS[name]
        for r in rows:
            if not m.loinc or r["value"] is None:
                continue
            res = self._obs(name, metric_code(name), profile=PROFILES.get(name))
            res["effectiveDateTime"] = r["t_utc"]
            res["valueQuantity"] = _quantity(r["value"], m.unit)
            res["note"] = [{"text": "entered by hand"}]
            self.add(res, (name, "manual", r["row_id"]))

    def _series(self, name, src, rows) -> None:
        if not rows:
            return
        m = METRICS[name]
        t0, t1 = rows[0]["t_wall"], rows[-1]["t_wall"]
        slots = ["E"] * (int(round(t1 - t0)) + 1)
        for r in rows:
            if r["value"] is not None:
                v = r["value"]
                slots[int(round(r["t_wall"] - t0))] = f"{v:g}" if isinstance(v, float) else str(v)
        res = self._obs(name, metric_code(name))
        res["meta"] = {"profile": [PROFILE + "vitalsigns"]} if m.loinc else {}
        if not res["meta"]:
            del res["meta"]
            res["category"] = [{"coding": [{"system": OBS_CAT, "code": "vital-signs"}]}]
        res["effectivePeriod"] = {"start": utc_iso(t0), "end": utc_iso(t1)}
        res["device"] = {"reference": self.devices[src]}
        res["valueSampledData"] = {"origin": _quantity(0, m.unit), "period": 1000,
                                   "dimensions": 1, "data": " ".join(slots)}
        res["method"] = {"text": "every value as measured, on a 1-second grid from the first "
                                 "value (E: no value)"}
        self.add(res, (name, src, "series"))

    def _extremes(self) -> None:
        d, seen = self.d, set()
        for a in d.alarms:
            name = a.get("metric")
            if a["kind"] != "limit" or name not in SERIES_METRICS or not METRICS[name].loinc:
                continue
            end = a["end_wall"] if a["end_wall"] is not None else float("inf")
            during = [r for r in d.numerics if r["metric"] == name and r["value"] is not None
                      and a["start_wall"] - 60 <= r["t_wall"] <= end
                      and (a["source"] is None or r["source"] == a["source"])]
            picks = []
            if a["trigger_value"] is not None:
                at = [r for r in during if r["t_wall"] <= a["start_wall"]
                      and r["value"] == a["trigger_value"]]
                picks.append(("value that raised the alarm", a["trigger_value"],
                              at[-1] if at else None, a["start_utc"]))
            if a["extreme_value"] is not None:
                at = [r for r in during if r["t_wall"] >= a["start_wall"]
                      and r["value"] == a["extreme_value"]]
                picks.append(("worst value during the alarm", a["extreme_value"],
                              at[0] if at else None, a["start_utc"]))
            for why, value, row, fallback in picks:
                when = row["t_utc"] if row else fallback
                if (name, when, value) in seen:
                    continue
                seen.add((name, when, value))
                res = self._obs(name, metric_code(name), profile=PROFILES.get(name))
                res["effectiveDateTime"] = when
                res["valueQuantity"] = _quantity(value, METRICS[name].unit)
                res["interpretation"] = [{"coding": [{"system": INTERP,
                                                      "code": "L" if a["direction"] == "low"
                                                      else "H"}]}]
                res["note"] = [{"text": f"{why}: {a['label'] or a['condition']} alarm "
                                        f"({a['priority']} priority, limit {a['limit_value']:g})"}]
                if row and row["source"] in self.devices:
                    res["device"] = {"reference": self.devices[row["source"]]}
                self.add(res, (name, "extreme", a["alarm_id"], why))

    def _nibp(self, g) -> None:
        v = g.values
        res = self._obs("nibp", {"coding": [
            {"system": LOINC, "code": LOINC_BP_PANEL, "display": LOINC_DISPLAY[LOINC_BP_PANEL]},
            {"system": IEEE, "code": str(IEEE_NIBP), "display": IEEE_DISPLAY[IEEE_NIBP]}],
            "text": "Blood pressure (non-invasive)"}, profile="bp")
        res["effectiveDateTime"] = g.t_utc
        if g.source in self.devices:
            res["device"] = {"reference": self.devices[g.source]}
        failed = g.error_code is not None
        comps = []
        for name in ("nibp_systolic", "nibp_diastolic", "nibp_mean"):
            if name == "nibp_mean" and name not in v:
                continue  # the panel needs systolic and diastolic; a mean only when measured
            c = {"code": metric_code(name)}
            if v.get(name) is not None:
                c["valueQuantity"] = _quantity(v[name], "mm[Hg]")
            else:
                c["dataAbsentReason"] = _absent("error" if failed or g.flags else "unknown")
            comps.append(c)
        res["component"] = comps
        notes = []
        if failed:
            notes.append(f"measurement failed, device error code {v['nibp_error']:g}")
        if g.flags:
            notes.append("device flags: " + ", ".join(g.flags))
        if g.source == "manual":
            notes.append("taken by hand and entered by the nurse")
        if notes:
            res["note"] = [{"text": "; ".join(notes)}]
        self.add(res, ("nibp", g.source, g.t_mono))
        if v.get("nibp_pulse_rate") is not None:
            pr = self._obs("nibp_pulse_rate", metric_code("nibp_pulse_rate"), profile="heartrate")
            pr["effectiveDateTime"] = g.t_utc
            pr["valueQuantity"] = _quantity(v["nibp_pulse_rate"], "/min")
            if g.source in self.devices:
                pr["device"] = {"reference": self.devices[g.source]}
            self.add(pr, ("nibp_pulse", g.source, g.t_mono))

    # -- doses ---------------------------------------------------------------------------------
    def doses(self) -> None:
        doses = [x["effective"] | {"_amended": bool(x["amendments"])} for x in self.d.record["doses"]]
        open_infusion = None
        for dose in doses:
            if dose["action"] == "infusion_start":
                open_infusion = {"start": dose, "rates": [], "stop": None}
            elif dose["action"] == "infusion_rate" and open_infusion:
                open_infusion["rates"].append(dose)
            elif dose["action"] == "infusion_stop" and open_infusion:
                open_infusion["stop"] = dose
                self._med_admin(open_infusion["start"], infusion=open_infusion)
                open_infusion = None
            elif dose["action"] == "dose":
                self._med_admin(dose)
        if open_infusion:
            self._med_admin(open_infusion["start"], infusion=open_infusion)

    def _med_admin(self, dose: dict, infusion: dict | None = None) -> None:
        med = {"resourceType": "Medication", "id": "med",
               "code": {"coding": [{"system": f"{LOCAL}:drug", "code": dose["drug"]}],
                        "text": dose["drug"]}}
        if dose.get("lot_number"):
            med["batch"] = {"lotNumber": dose["lot_number"]}
        res = {"resourceType": "MedicationAdministration", "contained": [med],
               "status": "completed", "medicationReference": {"reference": "#med"},
               "subject": {"reference": self.patient}, "context": {"reference": self.enc}}
        dosage: dict = {}
        route = ROUTES.get(dose["route"])
        dosage["route"] = ({"coding": [{"system": SNOMED, "code": route[0], "display": route[1]}],
                            "text": dose["route"]} if route else {"text": dose["route"]})
        notes = []
        if infusion:
            stop = infusion["stop"]
            res["effectivePeriod"] = {"start": dose["t_utc"],
                                      **({"end": stop["t_utc"]} if stop else {})}
            if stop is None:
                res["status"] = "in-progress"
            amount = (stop or {}).get("amount") or dose.get("amount")
            if dose.get("rate") is not None and dose.get("rate_unit"):
                dosage["rateQuantity"] = _quantity(dose["rate"], UCUM_UNITS.get(dose["rate_unit"],
                                                                                dose["rate_unit"]))
            for r in infusion["rates"]:
                notes.append(f"rate changed to {r['rate']:g} {r['rate_unit']} at {r['t_utc']}")
            dosage["text"] = f"infusion, {amount:g} {dose['unit']}" if amount else "infusion"
        else:
            res["effectiveDateTime"] = dose["t_utc"]
            amount = dose.get("amount")
            dosage["text"] = (f"device {dose['device_index']}, " if dose.get("device_index") else "") \
                + (f"{amount:g} {dose['unit']}" if amount is not None else "dose")
        if amount is not None and dose.get("unit"):
            dosage["dose"] = _quantity(amount, UCUM_UNITS.get(dose["unit"], dose["unit"]))
        res["dosage"] = dosage
        if dose.get("user_id") in self.practitioners:
            res["performer"] = [{"actor": self.who(dose["user_id"])}]
        if dose["_amended"]:
            notes.append("corrected by an amendment; the original entry is in the signed record")
        if notes:
            res["note"] = [{"text": n} for n in notes]
        self.add(res, ("dose", dose["id"]))

    # -- scales --------------------------------------------------------------------------------
    def scales(self) -> None:
        from ..scales import load_scales

        entries = self.d.record["scale_entries"]
        if not entries:
            return
        known = load_scales()
        questionnaires = {}
        for e in entries:
            key = (e["scale"], e["scale_version"])
            if key not in questionnaires:
                questionnaires[key] = self._questionnaire(known.get(e["scale"]), *key, e)
            self._response(e, questionnaires[key])

    def _questionnaire(self, scale, scale_id, version, entry) -> str:
        url = f"{LOCAL}:questionnaire:{scale_id}"
        items = []
        numbers = ([(i.n, i.label) for i in scale.items] if scale
                   else [(int(k), f"item {k}") for k in sorted(entry["items"], key=int)])
        for n, label in numbers:
            items.append({"linkId": str(n), "text": label, "type": "integer"})
        items.append({"linkId": "total", "text": "Total score", "type": "decimal",
                      "readOnly": True})
        for name in (scale.subscales if scale else {}):
            items.append({"linkId": f"subscale.{name}", "text": f"Subscale {name}",
                          "type": "decimal", "readOnly": True})
        title = scale.title if scale else scale_id
        res = {"resourceType": "Questionnaire", "url": url, "version": str(version),
               "name": "".join(ch for ch in f"ketmonitor_{scale_id}" if ch.isalnum() or ch == "_"),
               "title": title, "status": "active", "subjectType": ["Patient"],
               "code": [{"system": f"{LOCAL}:scale", "code": scale_id,
                         "display": scale.short if scale else scale_id}],
               "description": "Scores only: item wording is the app's short labels (the published "
                              "wording is copyrighted). No LOINC code exists for this scale.",
               "item": items}
        self.add(res, ("questionnaire", scale_id, version))
        return f"{url}|{version}"

    def _response(self, e, canonical) -> None:
        eff = e["effective"]
        items = [{"linkId": str(k), "answer": [{"valueInteger": int(v)}]}
                 for k, v in sorted(eff["items"].items(), key=lambda kv: int(kv[0]))]
        if eff.get("total") is not None:
            items.append({"linkId": "total", "answer": [{"valueDecimal": eff["total"]}]})
        for name, value in sorted((eff.get("subscales") or {}).items()):
            if name != "present":
                items.append({"linkId": f"subscale.{name}", "answer": [{"valueDecimal": value}]})
        res = {"resourceType": "QuestionnaireResponse", "questionnaire": canonical,
               "status": "completed" if eff["complete"] else "in-progress",
               "subject": {"reference": self.patient}, "encounter": {"reference": self.enc},
               "authored": e["t_utc"], "item": items}
        if e.get("user_id") in self.practitioners:
            res["author"] = self.who(e["user_id"])
        if e.get("variant"):
            res["identifier"] = {"system": f"{LOCAL}:scale-entry",
                                 "value": f"{self.sid}/{e['id']} variant {e['variant']}"}
        self.add(res, ("scale", e["id"]))

    # -- signatures ----------------------------------------------------------------------------
    def provenance(self) -> None:
        from ..signing import record_document
        from ..signing.jws import b64url_decode

        targets = [{"reference": e["fullUrl"]} for e in self.entries
                   if e["resource"]["resourceType"] not in ("Practitioner", "Organization",
                                                             "Device")]
        for rec in self.d.records:
            # the stored base64url strings, verbatim (the payload itself is the json export)
            stored = self._db.conn.execute(
                "SELECT protected, signature FROM record_signatures WHERE record_id = ?"
                " ORDER BY idx", (rec.record_id,)).fetchall()
            if rec.kind == "addendum":  # small: its text goes into a DocumentReference
                try:
                    doc = record_document(self._db, rec.record_id)
                    self._payloads[rec.record_id] = json.loads(b64url_decode(doc.payload))
                except ValueError:
                    self._payloads[rec.record_id] = {}
            sigs = []
            for info, (protected, signature) in zip(rec.signatures, stored):
                code = ASTM_ADDENDUM if rec.kind == "addendum" and info.meaning == "authorship" \
                    else ASTM[info.meaning]
                detached = f"{protected}..{signature}".encode("ascii")
                sigs.append({
                    "type": [{"system": ASTM_SIG, "code": code[0], "display": code[1]},
                             {"system": f"{LOCAL}:signature-meaning", "code": info.meaning}],
                    "when": info.signed_at, "who": self.who(info.signer_id)
                    or {"display": info.printed_name},
                    "targetFormat": "application/json", "sigFormat": "application/jose",
                    "data": base64.b64encode(detached).decode("ascii")})
            target = targets
            if rec.kind == "addendum":
                target = [{"reference": self._addendum_doc(rec)}]
            res = {"resourceType": "Provenance", "target": target, "recorded": rec.created_utc,
                   "agent": [{"type": {"coding": [{
                       "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                       "code": "author" if i == 0 else "verifier"}]},
                       "who": self.who(s.signer_id) or {"display": s.printed_name}}
                       for i, s in enumerate(rec.signatures)],
                   "entity": [{"role": "source", "what": {
                       "identifier": {"system": f"{LOCAL}:record-sha256",
                                      "value": rec.payload_sha256},
                       "display": f"ketmonitor signed session record {rec.record_id} ({rec.kind}); "
                                  "the signatures are detached JWS over its payload: see the "
                                  "json export"}}],
                   "signature": sigs}
            if rec.amends_record_id:
                res["entity"].append({"role": "revision", "what": {
                    "identifier": {"system": f"{LOCAL}:record", "value": rec.amends_record_id}}})
            self.add(res, ("provenance", rec.record_id))

    def _addendum_doc(self, rec) -> str:
        payload = self._payloads.get(rec.record_id, {})
        text = json.dumps(payload.get("addendum", {}), ensure_ascii=False, sort_keys=True)
        if isinstance(payload.get("addendum"), dict) and set(payload["addendum"]) == {"text"}:
            text = payload["addendum"]["text"]
        res = {"resourceType": "DocumentReference", "status": "current",
               "identifier": [{"system": f"{LOCAL}:record", "value": rec.record_id}],
               "type": {"text": "Signed addendum to the session record"},
               "subject": {"reference": self.patient}, "date": rec.created_utc,
               "content": [{"attachment": {"contentType": "text/plain; charset=utf-8",
                                           "data": base64.b64encode(text.encode()).decode(),
                                           "title": "Addendum"}}],
               "context": {"encounter": [{"reference": self.enc}]}}
        first = rec.signatures[0] if rec.signatures else None
        if first and self.who(first.signer_id):
            res["author"] = [self.who(first.signer_id)]
        return self.add(res, ("addendum", rec.record_id))

    def build(self, db) -> dict:
        self._db = db
        self._payloads: dict[str, dict] = {}
        self.parties()
        self.encounter()
        self.numerics()
        self.doses()
        self.scales()
        self.provenance()
        bundle = {"resourceType": "Bundle", "id": _uuid(self.sid, "bundle"),
                  "identifier": {"system": f"{LOCAL}:session", "value": self.sid},
                  "type": "collection", "timestamp": utc_iso(time.time()),
                  "entry": self.entries}
        self.mark_record_check(bundle)
        return bundle

    # -- the comparison with the signed record -------------------------------------------------
    def mark_record_check(self, bundle: dict) -> None:
        """Bundle.meta.tag says how the rows compared with the signed record; a session that does
        not match also gets the security label UNRELIABLE (HL7 v3 integrity confidence) and, as
        its first entry, an OperationOutcome with one error issue per difference."""
        check = self.d.check
        if check is None:
            return
        code = RECORD_CHECK_CODES[check.status]
        meta: dict = {"tag": [{"system": RECORD_CHECK, "code": code, "display": check.status}]}
        if check.flagged:
            meta["security"] = [{"system": V3_OBS_VALUE, "code": "UNRELIABLE",
                                 "display": "unreliable"}]
            issues = [{"severity": "error", "code": "business-rule",
                       "details": {"coding": [{"system": RECORD_CHECK, "code": code,
                                               "display": check.status}],
                                   "text": check.status},
                       "diagnostics": problem} for problem in check.problems[:MAX_ISSUES]]
            more = len(check.problems) - MAX_ISSUES
            if more > 0:
                issues.append({"severity": "error", "code": "business-rule",
                               "diagnostics": f"and {more} more differences"})
            rid = _uuid(self.sid, "OperationOutcome", "record-check")
            self.entries.insert(0, {"fullUrl": f"urn:uuid:{rid}", "resource": {
                "resourceType": "OperationOutcome", "id": rid, "issue": issues}})
        bundle["meta"] = meta


def build_bundle(db, data: SessionData) -> dict:
    return Bundler(data).build(db)


def validate_bundle(bundle: dict | str | bytes):
    """Parse with fhir.resources (R4B models); pydantic ValidationError when invalid."""
    from fhir.resources.R4B.bundle import Bundle

    if isinstance(bundle, (str, bytes)):
        return Bundle.model_validate_json(bundle)
    return Bundle.model_validate(bundle)


class Exporter:
    needs_data = True

    def __init__(self, db, out, *, validate: bool = True):
        self.db, self.out, self.validate = db, out, validate

    def add(self, session_id: str, data: SessionData) -> dict:
        from ..errors import ExportError

        bundle = build_bundle(self.db, data)
        raw = json.dumps(bundle, ensure_ascii=False, separators=(",", ":")).encode()
        if self.validate:
            try:
                validate_bundle(raw)
            except Exception as exc:  # pydantic.ValidationError: a bug here, never silent
                raise ExportError(f"session {session_id}: the FHIR bundle does not validate: "
                                  f"{str(exc).splitlines()[0]}") from None
        name = f"{session_id}.fhir.json"
        self.out.write(name, raw)
        counts: dict[str, int] = {}
        for e in bundle["entry"]:
            t = e["resource"]["resourceType"]
            counts[t] = counts.get(t, 0) + 1
        return {"files": [name], "resources": counts}

    def finish(self) -> None:
        pass
