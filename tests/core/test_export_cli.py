"""``ketmonitor export`` on the command line: choosing sessions by id and date, one-line errors for
bad dates, unknown sessions and unwritable folders, refusing to replace files, the audit entries.
Sessions are made by the demo walk-through on a jumping clock (instant, no devices)."""

from __future__ import annotations

import json

import pytest

from ketmonitor.cli import main
from ketmonitor.errors import ExportError
from ketmonitor.export import parse_date, select_sessions
from ketmonitor.store import open_db
from tests.factories import sign_session, walked_session

DAY = 86400.0
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


@pytest.fixture
def clinic(tmp_path):
    path = tmp_path / "clinic.db"
    db = open_db(path)
    walked_session(db, "jan01", wall_anchor=T0, seed=1)
    walked_session(db, "jan02", wall_anchor=T0 + DAY, seed=2, protocol="im-injection")
    walked_session(db, "jan05", wall_anchor=T0 + 4 * DAY + 3600, seed=3)
    sign_session(db, "jan01", cosign_it=False, addendum=None)
    db.conn.close()
    return path


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def audit_count(path, action="session.exported") -> int:
    db = open_db(path)
    try:
        return db.conn.execute("SELECT count(*) FROM audit_log WHERE action = ?",
                               (action,)).fetchone()[0]
    finally:
        db.conn.close()


def test_since_until_choose_sessions_by_utc_start_day(clinic, tmp_path, capsys):
    rc, out, err = run(capsys, "export", "--db", str(clinic), "--format", "csv", "--since",
                       "2026-01-01", "--until", "2026-01-02", "--out", str(tmp_path / "out"))
    assert rc == 0, err
    sessions = (tmp_path / "out" / "sessions.csv").read_text().splitlines()[1:]
    assert [line.split(",")[0] for line in sessions] == ["jan01", "jan02"]  # --until day included
    assert "exported 2 session(s) as csv" in out
    assert "export csv: 2/2 sessions (100%" in err  # the progress bar, on stderr
    db = open_db(clinic)
    assert select_sessions(db, since="2026-01-03").session_ids == ("jan05",)
    assert select_sessions(db, since="2026-01-05T00:30:00Z",
                           until="2026-01-05T02:00:00+00:00").session_ids == ("jan05",)
    db.conn.close()
    assert audit_count(clinic) == 2 and audit_count(clinic, "export.completed") == 1


@pytest.mark.parametrize("args, message", [
    (["--since", "2026-02-30"], "--since '2026-02-30' is not a date"),
    (["--since", "yesterday"], "--since 'yesterday' is not a date"),
    (["--since", "2026-01-05", "--until", "2026-01-01"], "--until 2026-01-01 is not after --since"),
    (["--until", "2026-01-05"], "--until needs --since"),
    ([], "choose sessions with --session ID or --since DATE"),
    (["--since", "2030-01-01"], "no sessions started from 2030-01-01T00:00:00.000Z"),
    (["--session", "nope"], "unknown session nope"),
    (["--session", "jan01", "--since", "2026-01-01"], "give --session or --since/--until"),
])
def test_bad_choices_are_one_line_errors(clinic, tmp_path, capsys, args, message):
    rc, out, err = run(capsys, "export", "--db", str(clinic), "--format", "pdf", *args,
                       "--out", str(tmp_path / "out"))
    assert rc != 0
    assert err.startswith("ketmonitor: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert audit_count(clinic) == 0


def test_unwritable_folders_are_refused(clinic, tmp_path, capsys):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    for out, message in ((a_file, "it is a file, not a folder"),
                         (a_file / "sub", "cannot create the export folder"),
                         ("/proc/ketmonitor-export", "cannot create the export folder")):
        rc, _, err = run(capsys, "export", "--db", str(clinic), "--format", "json", "--session",
                         "jan01", "--out", str(out))
        assert rc != 0 and message in err and err.count("\n") == 1, err
    assert a_file.read_text() == "not a folder"
    assert audit_count(clinic) == 0


def test_missing_database_is_an_error(tmp_path, capsys):
    rc, _, err = run(capsys, "export", "--db", str(tmp_path / "none.db"), "--format", "json",
                     "--session", "x", "--out", str(tmp_path / "out"))
    assert rc != 0 and "no database at" in err
    assert not (tmp_path / "none.db").exists()


def test_existing_files_are_kept_unless_overwrite(clinic, tmp_path, capsys):
    out = tmp_path / "out"
    assert run(capsys, "export", "--db", str(clinic), "--format", "rems", "--session", "jan01",
               "--out", str(out))[0] == 0
    form = out / "jan01.rems.json"
    form.write_text("edited by hand")
    rc, _, err = run(capsys, "export", "--db", str(clinic), "--format", "rems", "--session",
                     "jan01", "--out", str(out))
    assert rc != 0 and "already exists" in err and "--overwrite" in err
    assert form.read_text() == "edited by hand"
    rc, _, err = run(capsys, "export", "--db", str(clinic), "--format", "rems", "--session",
                     "jan01", "--out", str(out), "--overwrite", "--user", "auditor-7")
    assert rc == 0, err
    assert json.loads(form.read_text())["session_id"] == "jan01"
    db = open_db(clinic)
    users = [r[0] for r in db.conn.execute("SELECT user_id FROM audit_log WHERE action ="
                                           " 'session.exported' ORDER BY seq")]
    db.conn.close()
    assert users[-1] == "auditor-7" and users[0].startswith("os:")


def test_a_failed_csv_export_leaves_no_partial_files(clinic, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "events.csv").write_text("keep me")
    rc, _, err = run(capsys, "export", "--db", str(clinic), "--format", "csv", "--since",
                     "2026-01-01", "--out", str(out))
    assert rc != 0 and "events.csv already exists" in err
    assert sorted(p.name for p in out.iterdir()) == ["events.csv"]


def test_single_unsigned_session_json_is_an_error(clinic, tmp_path, capsys):
    rc, _, err = run(capsys, "export", "--db", str(clinic), "--format", "json", "--session",
                     "jan05", "--out", str(tmp_path / "out"))
    assert rc != 0 and "session jan05 has no signed record" in err


def test_parse_date_forms():
    assert parse_date("2026-01-01") == T0
    assert parse_date("2026-01-01", end_of_day=True) == T0 + DAY
    assert parse_date("2026-01-01T01:00:00Z") == T0 + 3600
    assert parse_date("2026-01-01T02:00:00+01:00") == T0 + 3600
    assert parse_date("2026-01-01T01:00:00") == T0 + 3600  # no offset: UTC
    with pytest.raises(ExportError, match="--until '01/02/2026' is not a date"):
        parse_date("01/02/2026", option="--until")


def test_pdf_flags_a_signature_that_no_longer_verifies(clinic, tmp_path, capsys):
    """What an attacker with raw file access does: drop the trigger, swap a signature."""
    db = open_db(clinic)
    db.conn.execute("DROP TRIGGER record_signatures_no_update")
    sig = db.conn.execute("SELECT signature FROM record_signatures").fetchone()[0]
    forged = ("A" if sig[0] != "A" else "B") + sig[1:]
    db.conn.execute("UPDATE record_signatures SET signature = ?", (forged,))
    db.conn.close()
    rc, _, err = run(capsys, "export", "--db", str(clinic), "--format", "pdf", "--session",
                     "jan01", "--out", str(tmp_path / "out"))
    assert rc == 3  # written, but not what was signed: see docs/export.md
    assert "WARNING: session jan01: SIGNED RECORD DOES NOT VERIFY: record" in err
    assert "does not verify" in err
    import pypdf

    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(tmp_path / "out" / "jan01.pdf").pages)
    assert "VERIFICATION FAILED" in text and "verified at export" not in text
    # the banner comes before anything else of the session
    assert text.index("SIGNED RECORD DOES NOT VERIFY") < text.index("Patient and session")
    from ketmonitor.protocols import load_protocol

    version = load_protocol("esketamine-intranasal").version  # the one the session checked in on
    assert f"esketamine-intranasal, version {version} at check-in" in text
    manifest = json.loads((tmp_path / "out" / "export-manifest.json").read_text())
    assert manifest["warnings"] and "does not verify" in manifest["warnings"][0]


def test_cancel_stops_before_the_next_session_and_is_audited(clinic, tmp_path):
    import threading

    from ketmonitor.errors import ExportError as _ExportError
    from ketmonitor.export import ExportCancelled, export_database

    cancel = threading.Event()
    seen = []

    def progress(done, total, sid):
        seen.append((done, total, sid))
        cancel.set()  # as the browser's Cancel button does, while the first session is written

    result = export_database(clinic, "csv", tmp_path / "out",
                             lambda db: select_sessions(db, since="2026-01-01"), user_id="aud",
                             progress=False, on_progress=progress, cancel=cancel, origin="test")
    assert seen == [(1, 3, "jan01")]
    assert result.cancelled and result.sessions == ["jan01"]
    rows = (tmp_path / "out" / "sessions.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["jan01"]  # the files hold what was exported
    manifest = json.loads((tmp_path / "out" / "export-manifest.json").read_text())
    assert manifest["cancelled"].startswith("cancelled after 1 of 3 sessions")
    assert audit_count(clinic, "export.cancelled") == 1
    assert audit_count(clinic, "export.completed") == 0
    with pytest.raises(ExportCancelled, match="before any session"):
        export_database(clinic, "pdf", tmp_path / "none", lambda db: select_sessions(
            db, since="2026-01-01"), progress=False, cancel=cancel)
    assert not list((tmp_path / "none").glob("*.pdf"))
    assert issubclass(ExportCancelled, _ExportError)


def test_the_review_browsers_selection_is_every_session_the_filters_find(clinic):
    from ketmonitor import review

    db = open_db(clinic)
    try:
        everything = review.export_selection(db)
        assert everything.session_ids == ("jan01", "jan02", "jan05")  # oldest first, as the CLI
        one = review.export_selection(db, review.SessionFilter(protocol="im-injection"))
        assert one.session_ids == ("jan02",)
        assert one.description == ("sessions matching the review browser's filters (protocol "
                                   "im-injection)")
        with pytest.raises(ExportError, match="no sessions match the filters"):
            review.export_selection(db, review.SessionFilter(status="co-signed"))
    finally:
        db.conn.close()
