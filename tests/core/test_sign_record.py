"""Signing the record of an ended session after the fact (``signing.rules.sign_record``, ``ketmonitor
sign``): authorship by its author, responsibility by a physician; every refusal is one line and
signs nothing. Real sessions from the pipeline, real SQLite, real Argon2id and Ed25519, and a real
pseudo-terminal for the password prompt."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import sys
import time
from pathlib import Path

import pytest

from ketmonitor import review
from ketmonitor.cli import main
from ketmonitor.errors import AuthError, WorkflowError
from ketmonitor.signing import current_key, revoke_key, verify_db
from ketmonitor.protocols import load_protocol
from ketmonitor.signing.rules import protocol_in_force, sign_check, sign_record
from ketmonitor.store import open_db
from ketmonitor.users import PermissionDenied, User
from tests.review_factories import (  # noqa: F401 - fixtures
    authenticator, PASSWORDS, review_db_path, world)

ROOT = Path(__file__).resolve().parents[2]
NURSE = "demo-nurse"


@pytest.fixture
def db(review_db_path):
    d = open_db(review_db_path)
    yield d
    d.conn.close()


def sealed(db, session_id) -> int:
    return db.conn.execute("SELECT count(*) FROM session_records WHERE session_id = ?",
                           (session_id,)).fetchone()[0]


def test_the_sessions_author_signs_it_for_authorship(db, world):
    assert sign_check(db, world.ended, NURSE) == ("nurse", ("authorship",))
    rec = sign_record(db, world.ended, NURSE, PASSWORDS[NURSE])
    assert [(s.signer_id, s.meaning) for s in rec.signatures] == [(NURSE, "authorship")]
    assert db.conn.execute("SELECT status FROM sessions WHERE id = ?", (world.ended,)
                           ).fetchone() == ("signed",)
    report = verify_db(db, world.ended)
    assert report.records[0].signatures[0].printed_name == "Nora Nurse, RN"
    # now the record exists, a physician co-signs it
    review.cosign_session(db, world.ended, "doc1", PASSWORDS["doc1"], "review")
    verify_db(db, world.ended)


def test_a_physician_who_made_no_entries_takes_responsibility(db, world):
    assert sign_check(db, world.ended, "doc1") == ("physician", ("responsibility",))
    with pytest.raises(PermissionDenied, match="for responsibility, not authorship"):
        sign_record(db, world.ended, "doc1", PASSWORDS["doc1"], "authorship")
    rec = sign_record(db, world.ended, "doc1", PASSWORDS["doc1"])
    assert rec.signatures[0].meaning == "responsibility"
    verify_db(db, world.ended)


def test_permissions_before_the_record_is_signed():
    p = review.permissions
    assert not p("nurse", False).sign and "still open" in p("nurse", False).reason
    assert p("nurse", False, ended=True, author=True).sign_meanings == ("authorship",)
    assert not p("nurse", False, ended=True, author=False).sign
    assert p("physician", False, ended=True).sign_meanings == ("responsibility",)
    assert p("physician", False, ended=True, author=True).sign_meanings == ("authorship",
                                                                            "responsibility")
    assert not p("auditor", False, ended=True, author=True).sign
    assert not p("physician", True, ended=True).sign  # signed already: co-sign instead


def test_who_cannot_sign_and_when_nothing_can_be_signed(db, world):
    admin = User("admin1", "Ada Admin", "admin")
    authenticator(db).create_user(admin, "nurse2", "Nell Second, RN", "nurse", "Nurse-pass-22",
                                  must_change=False)
    with pytest.raises(PermissionDenied, match="nurse2 \\(nurse\\) made no entries"):
        sign_record(db, world.ended, "nurse2", "Nurse-pass-22")
    with pytest.raises(PermissionDenied, match="read-only|not an active user"):
        sign_record(db, world.ended, "aud1", PASSWORDS["aud1"])
    with pytest.raises(PermissionDenied, match="signs this record for authorship, not resp"):
        sign_record(db, world.ended, NURSE, PASSWORDS[NURSE], "responsibility")
    with pytest.raises(WorkflowError, match="has not ended"):
        sign_record(db, world.open, "doc1", PASSWORDS["doc1"])
    with pytest.raises(WorkflowError, match="already signed"):
        sign_record(db, world.desat, NURSE, PASSWORDS[NURSE])
    with pytest.raises(AuthError, match="wrong password"):
        sign_record(db, world.ended, NURSE, "Not-her-password-1")
    assert sealed(db, world.ended) == 0 and sealed(db, world.open) == 0


def _sign(path, session, user, password, *extra):
    sys.stdin = io.StringIO(password + "\n")
    try:
        return main(["sign", "--db", str(path), "--session", session, "--user", user,
                     "--password-stdin", *extra])
    finally:
        sys.stdin = sys.__stdin__


def _one_line(capsys, text):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and text in err and "Traceback" not in err, err
    return err


def test_the_command_signs_and_the_record_verifies(review_db_path, world, capsys):
    assert _sign(review_db_path, world.ended, NURSE, PASSWORDS[NURSE]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"signed session {world.ended}: record ")
    assert "Nora Nurse, RN (nurse, demo-nurse) — authorship —" in out
    assert main(["verify", "--db", str(review_db_path), "--session", world.ended]) == 0


def test_the_command_refuses_in_one_line_and_signs_nothing(review_db_path, db, world, capsys):
    assert _sign(review_db_path, world.ended, NURSE, "Not-her-password-1") == 2
    _one_line(capsys, "wrong password for demo-nurse: nothing was signed")
    assert db.conn.execute("SELECT user_id FROM audit_log WHERE action = 'signing.auth_failed'"
                           " ORDER BY seq DESC").fetchone() == (NURSE,)
    assert _sign(review_db_path, world.open, "doc1", PASSWORDS["doc1"]) == 2
    _one_line(capsys, "has not ended")
    assert _sign(review_db_path, world.desat, NURSE, PASSWORDS[NURSE]) == 2
    _one_line(capsys, "already signed")
    assert _sign(review_db_path, world.ended, NURSE, PASSWORDS[NURSE], "--meaning",
                 "responsibility") == 2
    _one_line(capsys, "for authorship, not responsibility")
    revoke_key(db, current_key(db, "doc2").kid, reason="left the clinic", by_user_id="admin1")
    assert _sign(review_db_path, world.ended, "doc2", PASSWORDS["doc2"]) == 2
    _one_line(capsys, "doc2 has no active signing key")
    assert _sign(review_db_path, "no-such-session", NURSE, PASSWORDS[NURSE]) == 2
    _one_line(capsys, "no session no-such-session")
    assert sealed(db, world.ended) == 0


def test_the_password_is_asked_on_the_terminal_without_echo(review_db_path, world):
    """The real thing: the command on a pseudo-terminal, the password typed at its prompt."""
    secret = PASSWORDS[NURSE]
    argv = [sys.executable, "-m", "ketmonitor", "sign", "--db", str(review_db_path), "--session",
            world.ended, "--user", NURSE]
    pid, fd = pty.fork()
    if pid == 0:  # the child: the pseudo-terminal is its controlling terminal
        os.chdir(ROOT)
        os.execv(sys.executable, argv)
    seen, typed = b"", False
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
        if not typed and b"to sign session" in seen and seen.rstrip().endswith(b":"):
            os.write(fd, secret.encode() + b"\n")
            typed = True
    _, status = os.waitpid(pid, 0)
    text = seen.decode(errors="replace")
    assert typed, text
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert f"Password of Nora Nurse, RN ({NURSE}) to sign session {world.ended} (authorship):" \
        in text
    assert secret not in text  # not echoed
    assert f"signed session {world.ended}" in text
    d = open_db(review_db_path)
    try:
        assert verify_db(d, world.ended).records[0].signatures[0].signer_id == NURSE
    finally:
        d.conn.close()


def _definition(db, record) -> dict | None:
    payload = db.conn.execute("SELECT payload FROM session_records WHERE record_id = ?",
                              (record.record_id,)).fetchone()[0]
    return json.loads(bytes(payload))["protocol"]["definition"]


def test_the_record_carries_the_protocol_check_in_kept_whoever_signs(db, world):
    """Check-in keeps the definition in force; a record signed after the fact (no definition
    given, or another version of the file) carries that copy, not today's file."""
    ran = load_protocol("im-injection").raw
    other = dict(ran, version=str(ran["version"]) + "-edited")
    rec = sign_record(db, world.ended, NURSE, PASSWORDS[NURSE], protocol=other)
    assert _definition(db, rec) == ran
    assert protocol_in_force(db, world.ended, None) == ran
    assert protocol_in_force(db, world.open, ran) is None  # never checked in


def test_a_session_checked_in_without_a_kept_copy_carries_only_the_matching_version(db, world):
    """Sessions checked in before copies were kept: the caller's definition is carried only when
    it is the name and version check-in recorded."""
    row = db.conn.execute("SELECT id, data FROM events WHERE session_id = ? AND kind = 'checkin'",
                          (world.ended,)).fetchone()
    data = json.loads(row[1])
    del data["protocol_definition"]
    db.conn.execute("UPDATE events SET data = ? WHERE id = ?", (json.dumps(data), row[0]))
    ran = load_protocol("im-injection").raw
    other = dict(ran, version=str(ran["version"]) + "-edited")
    assert protocol_in_force(db, world.ended, ran) == ran
    assert protocol_in_force(db, world.ended, other) is None
    assert protocol_in_force(db, world.ended, None) is None
    rec = sign_record(db, world.ended, NURSE, PASSWORDS[NURSE], protocol=other)
    assert _definition(db, rec) is None  # not the version check-in recorded: not carried


def test_the_bedside_definition_is_carried(review_db_path, world):
    d = open_db(review_db_path)
    try:
        ran = load_protocol("im-injection").raw
        rec = sign_record(d, world.ended, NURSE, PASSWORDS[NURSE], protocol=ran)
        assert _definition(d, rec) == ran
        verify_db(d, world.ended)
    finally:
        d.conn.close()
