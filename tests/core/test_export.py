"""Exports over real sessions: the runtime with simulated devices and the demo walk-through, sealed,
co-signed and amended by the signing service (tests/factories.py). Each format is exported once per
module into its own folder; tests read the files back with independent tools (json, csv, pypdf,
fhir.resources) and compare with the database."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pypdf
import pytest

from ketmonitor.audit import verify_chain
from ketmonitor.errors import ExportError
from ketmonitor.export import Progress, export_sessions, open_export_db, select_sessions
from ketmonitor.export.csv_export import COLUMNS
from ketmonitor.export.data import human_utc
from ketmonitor.metrics import NIBP_METRICS
from ketmonitor.signing import Keyring, list_records, record_bytes, verify_record
from tests.factories import NURSE, PHYSICIAN, export_world

ROOT = Path(__file__).resolve().parents[2]
VITAL_SIGNS = "http://terminology.hl7.org/CodeSystem/observation-category"
NIBP_ROWS = (*NIBP_METRICS, "nibp_error")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("export")
    db_path = base / "clinic.db"
    ids = export_world(db_path)
    db = open_export_db(db_path)
    exports = {}
    for fmt in ("json", "csv", "fhir", "pdf", "rems"):
        sel = select_sessions(db, since="2000-01-01")
        exports[fmt] = export_sessions(db, sel, fmt, base / fmt, user_id="auditor-1",
                                       progress=io.StringIO(), db_path=str(db_path))
    yield {"db": db, "path": db_path, "base": base, "ids": ids, "exports": exports}
    db.conn.close()


def rows(db, sql, params=()):
    return db.conn.execute(sql, params).fetchall()


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# -- json ----------------------------------------------------------------------------------------

def test_json_export_is_the_stored_record_byte_for_byte(world):
    db, ids, folder = world["db"], world["ids"], world["base"] / "json"
    sid = ids["monitored"]
    original = (folder / f"{sid}.record.json").read_bytes()
    addendum = (folder / f"{sid}.addendum-1.json").read_bytes()
    assert original == record_bytes(db, ids["record_id"])
    assert addendum == record_bytes(db, ids["addendum_id"])
    # the payload inside is the stored signed bytes, untouched
    stored = bytes(rows(db, "SELECT payload FROM session_records WHERE record_id = ?",
                        (ids["record_id"],))[0][0])
    payload = json.loads(original)["payload"]
    assert base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)) == stored
    # and it verifies on its own, with both signatures (nurse authorship, physician review)
    result = verify_record(original, Keyring.from_db(db))
    assert [(s.signer_id, s.meaning) for s in result.signatures] == \
        [(NURSE[0], "authorship"), (PHYSICIAN[0], "review")]


def test_json_export_skips_unsigned_sessions(world, tmp_path):
    export = world["exports"]["json"]
    assert world["ids"]["unsigned"] in export.skipped
    assert "no signed record" in export.skipped[world["ids"]["unsigned"]]
    with pytest.raises(ExportError, match="has no signed record"):
        export_sessions(world["db"], select_sessions(world["db"],
                                                     session_ids=[world["ids"]["unsigned"]]),
                        "json", tmp_path / "one", user_id="auditor-1", progress=False)
    assert not list((tmp_path / "one").glob("*.json"))


# -- csv -----------------------------------------------------------------------------------------

def test_csv_row_counts_match_the_database(world):
    db, folder = world["db"], world["base"] / "csv"
    sessions = [r[0] for r in rows(db, "SELECT id FROM sessions")]
    for name, cols in COLUMNS.items():
        text = (folder / name).read_text(encoding="utf-8")
        assert text.splitlines()[0] == ",".join(cols)  # exactly one header row
        assert text.count(",".join(cols)) == 1
    per = {name: read_csv(folder / name) for name in COLUMNS}
    marks = ",".join("?" * len(NIBP_ROWS))
    for sid in sessions:
        def n(name, sid=sid):
            return sum(1 for r in per[name] if r["session_id"] == sid)

        assert n("numerics.csv") == rows(db, "SELECT count(*) FROM numerics WHERE session_id = ?"
                                         f" AND metric NOT IN ({marks})", (sid, *NIBP_ROWS))[0][0]
        # every stored NIBP value appears in exactly one reading
        nibp_values = sum(1 for r in per["nibp.csv"] if r["session_id"] == sid
                          for k in ("systolic", "diastolic", "mean", "pulse_rate", "error_code")
                          if r[k] != "")
        assert nibp_values == rows(db, "SELECT count(*) FROM numerics WHERE session_id = ? AND"
                                   f" metric IN ({marks}) AND value IS NOT NULL", (sid, *NIBP_ROWS))[0][0]
        for name, table in (("events.csv", "events"), ("doses.csv", "doses"),
                            ("scale_entries.csv", "scale_entries"), ("alarms.csv", "alarm_log"),
                            ("alarm_actions.csv", "alarm_actions"),
                            ("amendments.csv", "amendments")):
            assert n(name) == rows(db, f"SELECT count(*) FROM {table} WHERE session_id = ?",
                                   (sid,))[0][0], (name, sid)
        items = sum(len(json.loads(r[0])) for r in rows(
            db, "SELECT items FROM scale_entries WHERE session_id = ?", (sid,)))
        assert n("scale_items.csv") == items
        assert n("sessions.csv") == 1
    monitored = world["ids"]["monitored"]
    assert sum(1 for r in per["alarms.csv"] if r["session_id"] == monitored) >= 1
    # times are ISO 8601 UTC
    for r in per["numerics.csv"][:50] + per["alarms.csv"]:
        t = r.get("t_utc") or r["start_utc"]
        assert t.endswith("Z") and "T" in t


def test_every_csv_file_and_column_is_documented():
    doc = (ROOT / "docs" / "export.md").read_text()
    for name, cols in COLUMNS.items():
        line = next((ln for ln in doc.splitlines() if ln.startswith(f"| `{name}`")), None)
        assert line is not None, f"docs/export.md does not describe {name}"
        for col in cols:
            assert col in line, f"docs/export.md: {name} lacks column {col}"


def test_csv_shows_amended_values_beside_the_originals(world):
    events = read_csv(world["base"] / "csv" / "events.csv")
    nausea = [e for e in events if e["kind"] == "event" and '"nausea"' in e["data"]]
    assert nausea and all(json.loads(e["data"])["text"] == "mild" for e in nausea)
    assert all(json.loads(e["effective_data"])["text"] == "mild, settled without treatment"
               for e in nausea)
    assert all(e["amendment_ids"] for e in nausea)


# -- fhir ----------------------------------------------------------------------------------------

def bundles(world) -> dict:
    from fhir.resources.R4B.bundle import Bundle

    out = {}
    for path in sorted((world["base"] / "fhir").glob("*.fhir.json")):
        raw = path.read_bytes()
        Bundle.model_validate_json(raw)  # raises pydantic.ValidationError if invalid
        out[path.name.removesuffix(".fhir.json")] = json.loads(raw)
    return out


def resources(bundle, kind=None) -> list[dict]:
    return [e["resource"] for e in bundle["entry"]
            if kind is None or e["resource"]["resourceType"] == kind]


def test_fhir_bundles_validate_one_per_session(world):
    got = bundles(world)
    db = world["db"]
    assert set(got) == {r[0] for r in rows(db, "SELECT id FROM sessions")}
    for sid, b in got.items():
        assert b["type"] == "collection" and b["identifier"]["value"] == sid
        assert len(resources(b, "Patient")) == 1 and len(resources(b, "Encounter")) == 1
        enc = resources(b, "Encounter")[0]
        assert enc["status"] == "finished" and enc["period"]["start"]
        doses = rows(db, "SELECT count(*) FROM doses WHERE session_id = ? AND action = 'dose'",
                     (sid,))[0][0]
        infusions = rows(db, "SELECT count(*) FROM doses WHERE session_id = ? AND action ="
                             " 'infusion_start'", (sid,))[0][0]
        mas = resources(b, "MedicationAdministration")
        assert len(mas) == doses + infusions
        for ma in mas:
            assert ma["contained"][0]["batch"]["lotNumber"] == "DEMO-LOT-0001"
        entries = rows(db, "SELECT count(*), count(DISTINCT scale) FROM scale_entries"
                           " WHERE session_id = ?", (sid,))[0]
        assert len(resources(b, "QuestionnaireResponse")) == entries[0]
        assert len(resources(b, "Questionnaire")) == entries[1]
        # every QuestionnaireResponse answers its own Questionnaire's items
        qs = {f"{q['url']}|{q['version']}": {i["linkId"] for i in q["item"]}
              for q in resources(b, "Questionnaire")}
        for qr in resources(b, "QuestionnaireResponse"):
            assert {i["linkId"] for i in qr["item"]} <= qs[qr["questionnaire"]]


def test_fhir_observations_vital_signs_codes_and_resolution(world):
    db, sid = world["db"], world["ids"]["monitored"]
    b = bundles(world)[sid]
    obs = resources(b, "Observation")
    for o in obs:
        assert o["category"][0]["coding"][0] == {"system": VITAL_SIGNS, "code": "vital-signs",
                                                 "display": "Vital Signs"} or \
            o["category"][0]["coding"][0]["code"] == "vital-signs"
        assert "valueQuantity" in o or "valueSampledData" in o or "dataAbsentReason" in o \
            or "component" in o

    def codes(o):
        return {(c["system"], c["code"]) for c in o["code"]["coding"]}

    spo2 = [o for o in obs if ("http://loinc.org", "59408-5") in codes(o)]
    assert all(("http://loinc.org", "2708-6") in codes(o) for o in spo2)
    assert all(("urn:iso:std:iso:11073:10101", "150456") in codes(o) for o in spo2)
    minute = [o for o in spo2 if "effectivePeriod" in o and "valueQuantity" in o]
    assert all(o["valueQuantity"]["system"] == "http://unitsofmeasure.org"
               and o["valueQuantity"]["code"] == "%" for o in minute)
    # one-minute resolution: about one per minute, never one per stored value
    n_spo2 = rows(db, "SELECT count(*) FROM numerics WHERE session_id = ? AND metric = 'spo2'",
                  (sid,))[0][0]
    assert n_spo2 > 7000
    minutes = (n_spo2 / 60)
    assert minutes - 2 <= len(minute) <= minutes + 2
    # the full series as SampledData keeps every measured value
    series = [o for o in spo2 if "valueSampledData" in o]
    assert len(series) == 1
    values = [v for v in series[0]["valueSampledData"]["data"].split() if v != "E"]
    stored = rows(db, "SELECT count(*) FROM numerics WHERE session_id = ? AND metric = 'spo2'"
                      " AND value IS NOT NULL", (sid,))[0][0]
    assert len(values) >= 0.99 * stored
    # BP: one 85354-9 panel per reading, systolic and diastolic as components, IEEE codes kept
    panels = [o for o in obs if ("http://loinc.org", "85354-9") in codes(o)]
    readings = rows(db, "SELECT count(DISTINCT source || t_mono) FROM numerics WHERE"
                        " session_id = ? AND metric IN ('nibp_systolic', 'nibp_error')", (sid,))[0][0]
    assert len(panels) == readings
    for p in panels:
        comp = {c["code"]["coding"][0]["code"]: c for c in p["component"]}
        assert {"8480-6", "8462-4"} <= set(comp)
        assert ("urn:iso:std:iso:11073:10101", "150020") in codes(p)
    # the failed measurement (device error code) has its values absent, with a reason
    failed = [p for p in panels if "error code" in json.dumps(p.get("note", []))]
    assert failed
    assert all(c["dataAbsentReason"]["coding"][0]["code"] == "error" for c in failed[0]["component"])


def test_fhir_keeps_alarm_extremes(world):
    db, sid = world["db"], world["ids"]["desaturation"]
    obs = resources(bundles(world)[sid], "Observation")
    flagged = [o for o in obs if "interpretation" in o]
    worst = rows(db, "SELECT min(value) FROM numerics WHERE session_id = ? AND metric = 'spo2'",
                 (sid,))[0][0]
    assert any(o["valueQuantity"]["value"] == worst
               and o["interpretation"][0]["coding"][0]["code"] == "L" for o in flagged)
    triggers = {r[0] for r in rows(db, "SELECT trigger_value FROM alarm_log WHERE session_id = ?"
                                       " AND metric = 'spo2'", (sid,))}
    assert triggers and triggers <= {o["valueQuantity"]["value"] for o in flagged}


def test_fhir_minutes_report_missing_values_and_absent_data(world):
    """Each SpO2 minute Observation says how many values were missing; a minute whose values were
    all missing (whether one exists depends on where the probe-off falls against the minute grid)
    has dataAbsentReason 'error' instead of a value."""
    from collections import defaultdict

    db, sid = world["db"], world["ids"]["probe_off"]
    anchor = rows(db, "SELECT wall_anchor FROM sessions WHERE id = ?", (sid,))[0][0]
    minutes = defaultdict(lambda: [0, 0])  # minute -> [values, missing]
    for t_wall, value in rows(db, "SELECT t_wall, value FROM numerics WHERE session_id = ? AND"
                                  " metric = 'spo2' AND source = 'oximeter'", (sid,)):
        minutes[int((t_wall - anchor) // 60)][value is None] += 1
    assert sum(m[1] for m in minutes.values()) >= 60  # the probe was off for over a minute
    obs = resources(bundles(world)[sid], "Observation")
    by_minute = {}
    for o in obs:
        if o["code"]["coding"][0]["code"] == "59408-5" and "effectivePeriod" in o \
                and "valueSampledData" not in o:
            start = datetime.fromisoformat(o["effectivePeriod"]["start"].replace("Z", "+00:00"))
            by_minute[round((start.timestamp() - anchor) / 60)] = o
    assert set(by_minute) == set(minutes)
    for minute, (values, missing) in minutes.items():
        o = by_minute[minute]
        assert f"median of {values} one-second values in the minute ({missing} missing)" \
            in o["method"]["text"]
        if values == 0:
            assert o["dataAbsentReason"]["coding"][0]["code"] == "error"
            assert "valueQuantity" not in o and "sensor_off" in o["method"]["text"]
        else:
            assert "dataAbsentReason" not in o and "valueQuantity" in o
    series = next(o for o in obs if "valueSampledData" in o
                  and o["code"]["coding"][0]["code"] == "59408-5")
    assert series["valueSampledData"]["data"].split().count("E") >= \
        sum(m[1] for m in minutes.values())


def test_fhir_provenance_carries_each_jws_signature(world):
    db, ids = world["db"], world["ids"]
    b = bundles(world)[ids["monitored"]]
    provs = resources(b, "Provenance")
    assert len(provs) == 2  # the original record and the addendum
    stored = {(p, s): (meaning, signer) for p, s, meaning, signer in rows(
        db, "SELECT s.protected, s.signature, s.meaning, s.signer_id FROM record_signatures s JOIN"
            " session_records r USING (record_id) WHERE r.session_id = ?", (ids["monitored"],))}
    seen = {}
    practitioners = {e["fullUrl"]: e["resource"] for e in b["entry"]
                     if e["resource"]["resourceType"] == "Practitioner"}
    for prov in provs:
        for sig in prov["signature"]:
            assert sig["sigFormat"] == "application/jose"
            protected, empty, signature = base64.b64decode(sig["data"]).decode().split(".")
            assert empty == ""  # detached payload: the signed record is the json export
            meaning, signer = stored[(protected, signature)]
            seen[(protected, signature)] = True
            types = {c["code"] for c in sig["type"]}
            assert meaning in types
            assert {"1.2.840.10065.1.12.1.1", "1.2.840.10065.1.12.1.13",
                    "1.2.840.10065.1.12.1.15"} & types
            who = practitioners[sig["who"]["reference"]]
            assert who["identifier"][0]["value"] == signer
            header = json.loads(base64.urlsafe_b64decode(protected + "=" * (-len(protected) % 4)))
            assert sig["when"] == header["signed_at"]
    assert len(seen) == len(stored) == 3
    review = [s for p in provs for s in p["signature"]
              if "1.2.840.10065.1.12.1.13" in {c["code"] for c in s["type"]}]
    assert len(review) == 1
    addendum = [s for p in provs for s in p["signature"]
                if "1.2.840.10065.1.12.1.15" in {c["code"] for c in s["type"]}]
    assert len(addendum) == 1


def test_fhir_signatures_verify_with_jwcrypto_and_the_json_export(world):
    """The recipe of docs/export.md, with an independent JOSE library: the detached JWS in
    Provenance.signature.data plus the payload of the json export verifies with the keyring."""
    from jwcrypto import jwk, jws
    from jwcrypto.common import base64url_decode

    db, sid = world["db"], world["ids"]["monitored"]
    keyset = jwk.JWKSet.from_json(Keyring.from_db(db).to_json())
    payloads = {}
    for path in (world["base"] / "json").glob(f"{sid}.*.json"):
        record = json.loads(path.read_bytes())
        digest = hashlib.sha256(base64url_decode(record["payload"])).hexdigest()
        payloads[digest] = record["payload"]
    checked = 0
    for prov in resources(bundles(world)[sid], "Provenance"):
        payload = payloads[prov["entity"][0]["what"]["identifier"]["value"]]
        for sig in prov["signature"]:
            protected, _, signature = base64.b64decode(sig["data"]).decode().split(".")
            one = jws.JWS()
            one.deserialize(json.dumps({"payload": payload, "protected": protected,
                                        "signature": signature}))
            kid = json.loads(base64url_decode(protected))["kid"]
            one.verify(keyset.get_key(kid), alg="EdDSA")
            tampered = jws.JWS()
            tampered.deserialize(json.dumps({"payload": payloads[next(
                d for d in payloads if payloads[d] != payload)], "protected": protected,
                "signature": signature}))
            with pytest.raises(jws.InvalidJWSSignature):
                tampered.verify(keyset.get_key(kid), alg="EdDSA")
            checked += 1
    assert checked == 3


# -- pdf -----------------------------------------------------------------------------------------

def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(path).pages)


def test_pdf_shows_each_signature_manifestation(world):
    db, ids = world["db"], world["ids"]
    for sid in (ids["monitored"], ids["desaturation"], ids["no_bp40"]):
        text = pdf_text(world["base"] / "pdf" / f"{sid}.pdf")
        sigs = [s for r in list_records(db, sid) for s in r.signatures]
        assert sigs
        for s in sigs:
            assert s.printed_name in text
            assert human_utc(s.signed_at) in text  # e.g. 2026-11-23 19:00:47 UTC
            assert s.signed_at[:10] in text
            assert s.meaning in text
        assert "signatures verified at export" in text
    text = pdf_text(world["base"] / "pdf" / f"{ids['monitored']}.pdf")
    for section in ("Patient and session", "Doses", "Trends", "Blood pressure readings", "Scales",
                    "Events", "Alarms", "Amendments", "Signed addenda",
                    "Electronic signatures (21 CFR 11.50)"):
        assert section in text
    assert "DEMO-LOT-0001" in text and "Demo Patient (simulated)" in text
    assert "NIBP diastolic high" in text or "NIBP systolic high" in text
    assert "Reviewed: blood pressure rise expected" in text
    assert "detail added after reassessment" in text  # the amendment's reason
    unsigned = pdf_text(world["base"] / "pdf" / f"{ids['unsigned']}.pdf")
    assert "NOT SIGNED" in unsigned and "has not been signed" in unsigned


# -- rems ----------------------------------------------------------------------------------------

def test_rems_flags_a_missing_40_minute_bp(world):
    ids, folder = world["ids"], world["base"] / "rems"
    form = json.loads((folder / f"{ids['no_bp40']}.rems.json").read_text())
    assert "bp_at_40" in form["missing_keys"] and not form["complete"]
    field = next(f for f in form["fields"] if f["key"] == "bp_at_40")
    assert field["missing"] and "skipped" in field["note"]
    assert "Blood pressure about 40 minutes after dosing" in form["missing"]
    text = pdf_text(folder / f"{ids['no_bp40']}.rems.pdf")
    assert "Blood pressure about 40 minutes after dosing" in text and "MISSING" in text
    # the monitored session had its 40-minute BP from the device
    full = json.loads((folder / f"{ids['monitored']}.rems.json").read_text())
    assert "bp_at_40" not in full["missing_keys"]
    bp40 = next(f for f in full["fields"] if f["key"] == "bp_at_40")
    assert "mmHg" in bp40["value"]
    assert next(f for f in full["fields"] if f["key"] == "dose")["value"] == "56 mg"


def test_rems_is_only_for_esketamine_sessions(world):
    export = world["exports"]["rems"]
    assert "not an esketamine session" in export.skipped[world["ids"]["unsigned"]]


# -- audit, progress, no Qt ----------------------------------------------------------------------

def test_every_export_is_audited(world):
    db = world["db"]
    verify_chain(db)
    for fmt, result in world["exports"].items():
        entries = [json.loads(d) | {"_sid": sid, "_user": user} for sid, user, d in rows(
            db, "SELECT session_id, user_id, detail FROM audit_log WHERE action ="
                " 'session.exported' AND json_extract(detail, '$.format') = ?", (fmt,))]
        assert sorted(e["_sid"] for e in entries) == sorted(result.sessions)
        assert all(e["_user"] == "auditor-1" for e in entries)
        for e in entries:
            for name, digest in e["files"].items():
                if digest is not None:  # per-session files carry their SHA-256
                    assert result.files[name] == digest
        done = [json.loads(d) for (d,) in rows(
            db, "SELECT detail FROM audit_log WHERE action = 'export.completed' AND"
                " json_extract(detail, '$.format') = ?", (fmt,))]
        assert len(done) == 1 and done[0]["manifest_sha256"] == result.files["export-manifest.json"]
        manifest = json.loads((result.folder / "export-manifest.json").read_text())
        assert manifest["sessions"] == result.sessions


def test_progress_bar_on_a_terminal_and_in_a_log():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty, log = Tty(), io.StringIO()
    for stream in (tty, log):
        bar = Progress(40, "export fhir", stream)
        for i in range(1, 41):
            bar.update(i, f"session-{i}")
    assert tty.getvalue().count("\r") == 40 and "[" + "#" * 30 + "] 40/40" in tty.getvalue()
    lines = log.getvalue().splitlines()
    assert 10 <= len(lines) <= 11 and lines[-1].startswith("export fhir: 40/40 sessions (100%")
    single = io.StringIO()
    Progress(1, "x", single).update(1)
    assert single.getvalue() == ""


def test_exports_run_with_qt_absent(world, tmp_path):
    db_copy = tmp_path / "copy.db"
    src = sqlite3.connect(world["path"])
    dst = sqlite3.connect(db_copy)
    src.backup(dst)
    src.close()
    dst.close()
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph', 'serial'):\n"
        "            raise ImportError(name + ' blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from ketmonitor.cli import main\n"
        f"for fmt in ('pdf', 'fhir', 'rems', 'csv', 'json'):\n"
        f"    rc = main(['export', '--db', {str(db_copy)!r}, '--format', fmt, '--session',"
        f" {world['ids']['no_bp40']!r}, '--out', {str(tmp_path / 'out')!r} + '/' + fmt])\n"
        "    assert rc == 0, fmt\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph')]\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "pdf" / f"{world['ids']['no_bp40']}.pdf").stat().st_size > 1000


def test_a_minute_without_values_is_an_error_only_if_a_problem_was_flagged():
    from ketmonitor.export.fhir_export import absent_reason

    assert absent_reason(["sensor_off"]) == "error"
    assert absent_reason(["held", "smartpoint"]) == "error"
    assert absent_reason([]) == "unknown"
    # SmartPoint (a good reading) and PI invalid (a device without PI) say nothing went wrong
    assert absent_reason(["smartpoint"]) == "unknown"
    assert absent_reason(["pi_invalid", "smartpoint"]) == "unknown"
