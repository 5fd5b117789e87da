"""A signed record deleted behind the triggers' back: the attacker drops them, deletes the record and
its signatures, sets the session back to 'ended' and, its rows no longer sealed, changes a dose.
Every check that shows or exports the session calls it a signature problem (not 'not signed'), and
no path signs the altered rows as a new record. Real sessions from the pipeline, real SQLite, real
Ed25519 and Argon2id."""

from __future__ import annotations

import io
import json
import sys

import pytest

from ketmonitor import review
from ketmonitor.cli import main
from ketmonitor.errors import WorkflowError
from ketmonitor.signing import seal_session
from ketmonitor.signing.matching import SIGNATURE_FAILED, check_session
from ketmonitor.signing.rules import sign_check, sign_record
from ketmonitor.store import open_db
from tests.core.test_signing_support import delete_signed_record
from tests.review_factories import PASSWORDS, review_db_path, world  # noqa: F401 - fixtures

NURSE = "demo-nurse"  # who signed the record that is deleted
REFUSAL = "cannot be signed: it was signed before (audit row "


@pytest.fixture
def attacked(review_db_path, world):
    """(db, the deleted record's id): world.desat's record deleted, then a dose changed."""
    db = open_db(review_db_path)
    (record_id,) = delete_signed_record(db, world.desat)
    db.conn.execute("DROP TRIGGER IF EXISTS doses_no_update")
    db.conn.execute("UPDATE doses SET amount = 84 WHERE session_id = ? AND action = 'dose'",
                    (world.desat,))
    yield db, record_id
    db.conn.close()


def _records(db, session_id) -> int:
    return db.conn.execute("SELECT count(*) FROM session_records WHERE session_id = ?",
                           (session_id,)).fetchone()[0]


def test_the_check_and_the_review_screen_see_a_signature_problem(attacked, world):
    db, record_id = attacked
    check = check_session(db, world.desat)
    assert check.status == SIGNATURE_FAILED and check.flagged and not check.matches
    assert check.record_id == record_id  # the id the audit trail gives the deleted record
    assert any("(record.sealed) records the sealing of original record " + record_id in p
               and "missing from the database (deleted)" in p for p in check.problems)
    assert any("(record.signed) records signature 0 (authorship" in p for p in check.problems)

    tl = review.load_timeline(db, world.desat, viewer_id="doc1")
    assert tl.record_check.status == SIGNATURE_FAILED and tl.original_record is None
    detail = json.loads(db.conn.execute("SELECT detail FROM audit_log WHERE action ="
                                        " 'session.viewed' ORDER BY seq DESC").fetchone()[0])
    assert detail["record_check"] == SIGNATURE_FAILED  # the view audit says what was shown
    for role, author in (("nurse", True), ("physician", False), ("physician", True)):
        perm = review.permissions(role, False, tl.record_check, ended=True, author=author)
        assert not (perm.sign or perm.cosign or perm.addendum) and "refused" in perm.reason


def test_exports_flag_it_and_exit_3_and_json_says_it_was_deleted(attacked, world, review_db_path,
                                                                  tmp_path, capsys):
    db, record_id = attacked
    argv = ["export", "--db", str(review_db_path), "--session", world.desat, "--user", "auditor-1"]
    assert main(argv + ["--format", "csv", "--out", str(tmp_path / "csv")]) == 3
    err = capsys.readouterr().err
    assert f"WARNING: session {world.desat}: {SIGNATURE_FAILED}: audit row" in err
    manifest = json.loads((tmp_path / "csv" / "export-manifest.json").read_text())
    assert manifest["not_matching_signed_record"] == [world.desat]
    assert manifest["record_checks"][world.desat]["record_id"] == record_id
    sessions_csv = (tmp_path / "csv" / "sessions.csv").read_text()
    assert SIGNATURE_FAILED in sessions_csv and "not signed" not in sessions_csv

    assert main(argv + ["--format", "json", "--out", str(tmp_path / "json")]) == 2
    err = capsys.readouterr().err
    assert "missing from the database (deleted)" in err and "sign it before" not in err


def test_no_path_signs_the_altered_rows_as_a_new_record(attacked, world, review_db_path, capsys):
    db, record_id = attacked
    sealed_before = db.conn.execute("SELECT count(*) FROM audit_log WHERE action ="
                                    " 'record.sealed'").fetchone()[0]
    with pytest.raises(WorkflowError, match=REFUSAL.replace("(", r"\(")) as err:
        sign_check(db, world.desat, NURSE)  # the review screen and the bedside ask it first
    assert record_id in str(err.value) and "report it to the clinic's administrator" in str(err.value)
    with pytest.raises(WorkflowError, match="it was signed before"):
        sign_record(db, world.desat, NURSE, PASSWORDS[NURSE])
    with pytest.raises(WorkflowError, match="it was signed before"):
        seal_session(db, world.desat, NURSE, PASSWORDS[NURSE])  # the mechanism refuses too
    sys.stdin = io.StringIO(PASSWORDS[NURSE] + "\n")
    try:
        rc = main(["sign", "--db", str(review_db_path), "--session", world.desat, "--user", NURSE,
                   "--password-stdin"])
    finally:
        sys.stdin = sys.__stdin__
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and REFUSAL in err, err
    assert _records(db, world.desat) == 0
    assert db.conn.execute("SELECT count(*) FROM audit_log WHERE action = 'record.sealed'"
                           ).fetchone()[0] == sealed_before
