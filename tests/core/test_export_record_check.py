"""Exports of a signed session whose rows were changed behind the triggers' back (what someone with
the file and the sqlite3 shell can do): every format but json compares the rows with the signed
record first, still writes the files, marks them, warns on stderr and exits 3. Real sessions from the
walk-through, real signatures, real files read back with pypdf, csv, json and fhir.resources."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import pypdf
import pytest

from ketmonitor.cli import main
from ketmonitor.export import export_sessions, select_sessions
from ketmonitor.export.fhir_export import validate_bundle
from ketmonitor.patients import get_patient, save_patient
from ketmonitor.signing import original_record_id, record_bytes
from ketmonitor.signing._db import write_transaction
from ketmonitor.signing.matching import DIFFERS, MATCHES, check_session
from ketmonitor.store import open_db
from tests.factories import sign_session, walked_session

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DIFFERENCE = "amount 84.0 (signed record: 28"


@pytest.fixture
def clinic(tmp_path):
    """Two signed esketamine sessions; in 'bad' a dose was changed to 84 mg, lot FAKE-LOT."""
    path = tmp_path / "clinic.db"
    db = open_db(path)
    walked_session(db, "good", wall_anchor=T0, seed=1)
    walked_session(db, "bad", wall_anchor=T0 + 86400, seed=2)
    sign_session(db, "good", cosign_it=False, addendum=None)
    sign_session(db, "bad", cosign_it=False, addendum=None)
    tamper_dose(db, "bad")
    db.conn.close()
    return path


def tamper_dose(db, session_id: str) -> int:
    for trigger in ("doses_no_update", "doses_sealed_no_update"):
        db.conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    dose_id = db.conn.execute("SELECT min(id) FROM doses WHERE session_id = ? AND action = 'dose'",
                              (session_id,)).fetchone()[0]
    db.conn.execute("UPDATE doses SET amount = 84, lot_number = 'FAKE-LOT' WHERE id = ?", (dose_id,))
    return dose_id


def export(capsys, path, fmt, out, *sessions) -> tuple[int, str]:
    argv = ["export", "--db", str(path), "--format", fmt, "--out", str(out), "--user", "auditor-1"]
    for s in sessions:
        argv += ["--session", s]
    rc = main(argv)
    return rc, capsys.readouterr().err


def pdf_text(path) -> str:
    return "\n".join(p.extract_text() for p in pypdf.PdfReader(path).pages)


def test_check_names_the_changed_dose_and_passes_the_untouched_session(clinic):
    db = open_db(clinic)
    bad, good = check_session(db, "bad"), check_session(db, "good")
    assert good.status == MATCHES and good.matches and not good.problems and good.rows > 0
    assert bad.status == DIFFERS and bad.flagged and not bad.signature_problems
    assert len(bad.problems) == 1
    assert "doses row" in bad.problems[0] and DIFFERENCE in bad.problems[0]
    assert "lot_number 'FAKE-LOT' (signed record: 'DEMO-LOT-0001')" in bad.problems[0]
    assert bad.headline().startswith("DOES NOT MATCH ITS SIGNED RECORD: doses row")
    db.conn.close()


@pytest.mark.parametrize("fmt", ["pdf", "fhir", "csv", "rems"])
def test_each_format_still_exports_marks_warns_and_exits_3(clinic, tmp_path, capsys, fmt):
    out = tmp_path / fmt
    rc, err = export(capsys, clinic, fmt, out, "good", "bad")
    assert rc == 3
    warnings = [ln for ln in err.splitlines() if "WARNING" in ln]
    assert len(warnings) == 1  # one line per session that does not match
    assert warnings[0].startswith("ketmonitor export: WARNING: session bad: DOES NOT MATCH ITS "
                                  "SIGNED RECORD: doses row") and DIFFERENCE in warnings[0]
    assert "Traceback" not in err
    manifest = json.loads((out / "export-manifest.json").read_text())
    assert manifest["sessions"] == ["good", "bad"]
    assert manifest["not_matching_signed_record"] == ["bad"]
    assert manifest["record_checks"]["good"]["status"] == "matches"
    assert DIFFERENCE in manifest["record_checks"]["bad"]["problems"][0]
    db = open_db(clinic)
    audited = {sid: json.loads(d)["record_check"] for sid, d in db.conn.execute(
        "SELECT session_id, detail FROM audit_log WHERE action = 'session.exported'")}
    done = json.loads(db.conn.execute("SELECT detail FROM audit_log WHERE action ="
                                      " 'export.completed'").fetchone()[0])
    db.conn.close()
    assert audited["good"]["status"] == "matches" and audited["bad"]["status"] == DIFFERS
    assert done["not_matching_signed_record"] == ["bad"] and done["origin"] == "cli"

    if fmt == "pdf":
        bad, good = pdf_text(out / "bad.pdf"), pdf_text(out / "good.pdf")
        assert bad.index("DOES NOT MATCH ITS SIGNED RECORD") < bad.index("Patient and session")
        assert "FAKE-LOT" in bad and "amount 84.0" in bad
        assert "verified" not in bad.replace("'ketmonitor verify", "")  # never called verified
        assert "DOES NOT MATCH this signed record" in bad
        assert "DOES NOT MATCH" not in good
        assert "signatures verified at export, and the session data in this report matches" \
            in " ".join(good.split())  # text extraction breaks lines anywhere
        # every page says it, so a page taken out of the report still does
        pages = pypdf.PdfReader(out / "bad.pdf").pages
        assert len(pages) > 1 and all("DOES NOT MATCH ITS SIGNED RECORD" in p.extract_text()
                                      for p in pages)
    elif fmt == "fhir":
        for sid in ("good", "bad"):
            validate_bundle((out / f"{sid}.fhir.json").read_bytes())
        bad = json.loads((out / "bad.fhir.json").read_text())
        good = json.loads((out / "good.fhir.json").read_text())
        assert bad["meta"]["tag"][0]["code"] == "differs"
        assert bad["meta"]["security"][0]["code"] == "UNRELIABLE"
        outcome = bad["entry"][0]["resource"]
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["severity"] == "error"
        assert DIFFERENCE in outcome["issue"][0]["diagnostics"]
        assert good["meta"] == {"tag": [{"system": "urn:ketmonitor:record-check",
                                         "code": "matches", "display": "matches"}]}
        assert not any(e["resource"]["resourceType"] == "OperationOutcome" for e in good["entry"])
    elif fmt == "csv":
        with open(out / "sessions.csv", newline="", encoding="utf-8") as fh:
            rows = {r["session_id"]: r for r in csv.DictReader(fh)}
        assert rows["good"]["record_check"] == "matches"
        assert rows["bad"]["record_check"].startswith("DOES NOT MATCH ITS SIGNED RECORD: doses row")
        assert DIFFERENCE in rows["bad"]["record_check"]
    else:
        bad = json.loads((out / "bad.rems.json").read_text())
        good = json.loads((out / "good.rems.json").read_text())
        assert bad["matches_signed_record"] is False and good["matches_signed_record"] is True
        assert bad["record_check"]["status"] == DIFFERS
        text = pdf_text(out / "bad.rems.pdf")
        assert "DOES NOT MATCH ITS SIGNED RECORD" in text and "do not submit this form" in text
        assert "DOES NOT MATCH" not in pdf_text(out / "good.rems.pdf")


def test_json_is_the_signed_record_and_exits_0(clinic, tmp_path, capsys):
    rc, err = export(capsys, clinic, "json", tmp_path / "json", "bad")
    assert rc == 0 and "WARNING" not in err
    db = open_db(clinic)
    assert (tmp_path / "json" / "bad.record.json").read_bytes() == \
        record_bytes(db, original_record_id(db, "bad"))
    db.conn.close()


def test_untouched_sessions_export_with_exit_0(clinic, tmp_path, capsys):
    rc, err = export(capsys, clinic, "pdf", tmp_path / "pdf", "good")
    assert rc == 0 and "WARNING" not in err


def test_a_patient_changed_without_an_audit_entry_is_a_difference(clinic, tmp_path, capsys):
    db = open_db(clinic)
    pid = db.conn.execute("SELECT patient_id FROM sessions WHERE id = 'good'").fetchone()[0]
    db.conn.execute("UPDATE patients SET name = 'Someone Else' WHERE id = ?", (pid,))
    db.conn.execute("UPDATE clinic SET address = '2 Other Road'")
    check = check_session(db, "good")
    db.conn.close()
    assert check.flagged
    assert any("patient" in p and "'Someone Else' in the database" in p for p in check.problems)
    assert any("clinic 1 column address" in p for p in check.problems)
    rc, err = export(capsys, clinic, "pdf", tmp_path / "pdf", "good")
    assert rc == 3 and "column name is 'Someone Else'" in err
    text = pdf_text(tmp_path / "pdf" / "good.pdf")
    # the report shows the patient and site as signed, and says what the database holds now
    assert "Demo Patient (simulated)" in text.split("Doses")[0]
    assert "Someone Else" in text.split("Patient and session")[0]  # in the banner


def test_an_audited_patient_update_after_signing_is_a_note_and_shown_as_signed(clinic, tmp_path,
                                                                               capsys):
    """The next check-in updates the weight and a concomitant-medication answer (audited): the
    older session still matches, and its report and REMS form give the values of its own day."""
    db = open_db(clinic)
    pid = db.conn.execute("SELECT patient_id FROM sessions WHERE id = 'good'").fetchone()[0]
    before = get_patient(db, pid)
    with write_transaction(db):
        save_patient(db, replace(before, weight_kg=before.weight_kg + 9, benzodiazepines=True),
                     user_id="demo-nurse", t_wall=T0 + 30 * 86400)
    check = check_session(db, "good")
    db.conn.close()
    assert check.matches and not check.problems
    assert len(check.notes) == 1 and "weight_kg" in check.notes[0] \
        and "benzodiazepines" in check.notes[0]
    rc, err = export(capsys, clinic, "pdf", tmp_path / "pdf", "good")
    assert rc == 0, err
    text = pdf_text(tmp_path / "pdf" / "good.pdf")
    assert f"{before.weight_kg:g} kg" in text and f"{before.weight_kg + 9:g} kg" not in text
    assert "changed after signing by audited update" in text
    rc, err = export(capsys, clinic, "rems", tmp_path / "rems", "good")
    assert rc == 0, err
    form = json.loads((tmp_path / "rems" / "good.rems.json").read_text())
    benzo = next(f for f in form["fields"] if f["key"] == "concomitant.benzodiazepines")
    assert benzo["value"] == "No"  # the answer on the day of the session


def test_the_library_reports_flagged_sessions(clinic, tmp_path):
    db = open_db(clinic)
    result = export_sessions(db, select_sessions(db, since="2026-01-01"), "fhir", tmp_path / "f",
                             user_id="auditor-1", progress=False)
    db.conn.close()
    assert result.flagged == ["bad"] and result.checks["good"].matches
    assert any(w.startswith("session bad: DOES NOT MATCH ITS SIGNED RECORD") for w in result.warnings)
