"""What the audit trail proves beyond the signed records: a deleted signed record is named from its
audit entries; the tail of the trail after the last signed record is proven only by a head kept
elsewhere (``--expect-head``, export manifests); malformed keyrings and file-only caveats."""

from __future__ import annotations

import json

import pytest

from ketmonitor.audit import append_audit, audit_head, parse_head, verify_chain
from ketmonitor.cli import main
from ketmonitor.signing import (AuditChainError, AuditLinkError, RecordFormatError, Keyring,
                                record_bytes, revoke_key, verify_db, verify_record)
from ketmonitor.signing.jws import b64url_encode
from tests.core.test_signing_db import _rewrite_chain
from tests.core.test_signing_support import (delete_signed_record, drop_trigger,
                                             world)  # noqa: F401 - fixture


def _seqs(db, action, record_id):
    return [r[0] for r in db.conn.execute("SELECT seq FROM audit_log WHERE action = ? AND"
                                          " entity_id = ? ORDER BY seq", (action, record_id))]


def test_a_deleted_signed_record_is_named_from_its_audit_entries(world):
    sealed, signed = (_seqs(world.db, a, world.record_id) for a in ("record.sealed", "record.signed"))
    delete_signed_record(world.db, world.session_id)
    with pytest.raises(AuditLinkError) as err:
        verify_db(world.db)
    texts = [str(f) for f in err.value.failures]
    assert err.value.record_id == world.record_id and err.value.seq == sealed[0]
    assert f"audit row {sealed[0]} (record.sealed)" in texts[0]
    assert f"record {world.record_id} of session {world.session_id}" in texts[0]
    assert any(f"audit row {signed[0]} (record.signed) records signature 0 (authorship" in t
               for t in texts)
    with pytest.raises(AuditLinkError, match=f"audit row {sealed[0]} .*missing from the database"):
        verify_db(world.db, world.session_id)  # one session, the same evidence


def test_the_cli_says_which_record_was_deleted(world, capsys):
    delete_signed_record(world.db, world.session_id)
    assert main(["verify", "--db", str(world.path)]) == 1
    out = capsys.readouterr()
    assert "OK: everything verifies" not in out.out
    assert f"FAILED: audit row" in out.err and world.record_id in out.err
    assert world.session_id in out.err


def _tail(db, n=2):
    """Rows after the sealing, covered by no signature (a failed login, a view)."""
    db.conn.execute("BEGIN IMMEDIATE")
    for i in range(n):
        append_audit(db, "auth.failed", user_id="mallory", entity="user", entity_id="nurse1",
                     detail={"purpose": "login", "attempt": i})
    db.conn.execute("COMMIT")


def test_the_tail_is_proven_only_by_a_head_kept_elsewhere(world):
    _tail(world.db)
    report = verify_db(world.db, audit=False)
    seq, head = audit_head(world.db)
    assert (report.audit_seq, report.audit_head) == (seq, head)
    assert f"audit head: {seq}:{head}" in report.describe()
    kept = parse_head(report.head_text)

    drop_trigger(world.db, "audit_log_no_delete")
    world.db.conn.execute("DELETE FROM audit_log WHERE seq >= ?", (seq - 1,))  # the failed logins
    verify_db(world.db, audit=False)  # the limitation: nothing signed covers those rows...
    with pytest.raises(AuditChainError) as err:  # ...only the head kept outside does
        verify_db(world.db, audit=False, expect_head=kept)
    assert err.value.seq == seq and "cut back" in str(err.value)
    assert f"now ends at row {seq - 2}" in str(err.value)


def test_a_rewritten_tail_contradicts_the_kept_head(world):
    _tail(world.db)
    seq, head = audit_head(world.db)
    _rewrite_chain(world.db, lambda s, user: "someone-else" if s == seq - 1 else user)
    verify_chain(world.db)
    verify_db(world.db, audit=False)  # the signed head lies before the rewritten rows
    with pytest.raises(AuditChainError, match=f"audit row {seq} no longer has the hash seen"):
        verify_db(world.db, audit=False, expect_head=(seq, head))


def test_an_earlier_head_still_in_an_unchanged_chain_verifies_and_is_audited(world):
    seq, head = audit_head(world.db)
    _tail(world.db, 3)  # the trail grows after the head was kept: that is fine
    report = verify_db(world.db, expect_head=(seq, head))
    assert report.expected_head == (seq, head) and f"rows 1-{seq} are unchanged" in report.describe()
    detail = json.loads(world.db.conn.execute("SELECT detail FROM audit_log WHERE action ="
                                              " 'verify.db' ORDER BY seq DESC").fetchone()[0])
    assert detail["expected_head"] == f"{seq}:{head}" and detail["head"] == report.head_text


@pytest.mark.parametrize("text", ["12", "x:" + "a" * 64, "3:" + "a" * 63, "3:" + "g" * 64, ""])
def test_a_malformed_head_is_refused(text):
    with pytest.raises(ValueError, match="SEQ:HASH"):
        parse_head(text)


def test_verify_prints_the_head_and_checks_it_from_the_command_line(world, capsys):
    _tail(world.db)
    assert main(["verify", "--db", str(world.path)]) == 0
    out = capsys.readouterr().out
    (line,) = [x for x in out.splitlines() if x.startswith("audit head: ")]
    kept = line.split(": ", 1)[1]
    assert parse_head(kept)[0] == audit_head(world.db)[0] - 1  # the verify.db row came after it
    assert f"--expect-head {kept}" in out
    assert main(["verify", "--db", str(world.path), "--expect-head", kept]) == 0
    capsys.readouterr()
    drop_trigger(world.db, "audit_log_no_delete")
    world.db.conn.execute("DELETE FROM audit_log WHERE seq >= ?", (parse_head(kept)[0],))
    assert main(["verify", "--db", str(world.path), "--expect-head", kept]) == 1
    assert "cut back" in capsys.readouterr().err
    assert main(["verify", "--db", str(world.path), "--expect-head", "nonsense"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--expect-head" in err and "SEQ:HASH" in err


def test_an_export_manifest_records_the_head(world, tmp_path, capsys):
    from ketmonitor.export.runner import export_sessions
    from ketmonitor.export.selection import select_sessions

    result = export_sessions(world.db, select_sessions(world.db, session_ids=[world.session_id]),
                             "json", tmp_path / "out", user_id="auditor-1", progress=False)
    manifest = json.loads((result.folder / "export-manifest.json").read_text())
    head = manifest["audit_head"]
    last = world.db.conn.execute("SELECT seq, action FROM audit_log ORDER BY seq DESC LIMIT 1"
                                 ).fetchone()
    assert last == (head["seq"] + 1, "export.completed")  # the entry that carries the manifest
    assert world.db.conn.execute("SELECT action FROM audit_log WHERE seq = ?", (head["seq"],)
                                 ).fetchone() == ("session.exported",)
    assert head["expect_head"] == f"{head['seq']}:{head['hash']}"
    assert main(["verify", "--db", str(world.path), "--expect-head", head["expect_head"]]) == 0


# -- record files and keyrings ------------------------------------------------------------------

def _keyring(world, tmp_path, edit) -> str:
    jwks = Keyring.from_db(world.db).to_jwks()
    edit(jwks["keys"][0])
    path = tmp_path / "keyring.json"
    path.write_text(json.dumps(jwks))
    return str(path)


@pytest.mark.parametrize("member, value", [("valid_from", "yesterday"),
                                           ("valid_from", "2026-01-01T00:00:00"),
                                           ("valid_to", 17), ("revoked_at", "soon")])
def test_a_malformed_keyring_time_is_a_one_line_error_naming_key_and_field(world, tmp_path, capsys,
                                                                           member, value):
    keyring = _keyring(world, tmp_path, lambda k: k.__setitem__(member, value))
    kid = json.loads(open(keyring).read())["keys"][0]["kid"]
    record = tmp_path / "record.json"
    record.write_bytes(record_bytes(world.db, world.record_id))
    assert main(["verify", str(record), "--keyring", keyring]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"key 0 ({kid}): '{member}' {value!r} is not an ISO 8601 UTC time" in err


def test_a_signing_time_without_a_zone_is_refused(world):
    """A header time without a zone is not read as the verifier's local time."""
    from ketmonitor.signing import HeaderMismatchError
    from ketmonitor.signing.jws import make_header, sign
    from ketmonitor.signing.keys import unlock_key
    from tests.core.test_signing_support import NURSE_PW

    doc = json.loads(record_bytes(world.db, world.record_id))
    key = unlock_key(world.db, "nurse1", NURSE_PW).private_key
    header = make_header(kid=world.nurse.kid, signer_id="nurse1", printed_name="Nora Nurse, RN",
                         role="nurse", meaning="authorship", signed_at="2099-01-01T09:00:00")
    sig = sign(doc["payload"], header, key)
    doc["signatures"] = [{"protected": sig.protected, "signature": sig.signature}]
    with pytest.raises(HeaderMismatchError, match="2099-01-01T09:00:00.*UTC"):
        verify_record(json.dumps(doc).encode(), Keyring.from_db(world.db))


def test_an_unprotected_header_error_names_the_record(world):
    doc = json.loads(record_bytes(world.db, world.record_id))
    doc["signatures"][0]["header"] = {"note": "unsigned claim"}
    with pytest.raises(RecordFormatError) as err:
        verify_record(json.dumps(doc).encode(), Keyring.from_db(world.db))
    assert err.value.record_id == world.record_id
    assert str(err.value).startswith(f"record {world.record_id}: signature 0 has an unprotected")
    doc["payload"] = b64url_encode(b"not json")  # nothing to name: the message stays as it was
    with pytest.raises(RecordFormatError, match="^signature 0 has an unprotected"):
        verify_record(json.dumps(doc).encode(), Keyring.from_db(world.db))


def test_a_file_alone_says_a_revoked_keys_signing_time_is_the_signers_claim(world, tmp_path,
                                                                            capsys):
    import time

    record = tmp_path / "record.json"
    record.write_bytes(record_bytes(world.db, world.record_id))
    before = tmp_path / "before.json"
    assert main(["keys", "export", "--db", str(world.path)]) == 0
    before.write_text(capsys.readouterr().out)
    assert main(["verify", str(record), "--keyring", str(before)]) == 0
    assert "note:" not in capsys.readouterr().out  # no revoked key, no caveat
    revoke_key(world.db, world.nurse.kid, reason="laptop stolen", by_user_id="admin1",
               t_wall=time.time() + 1)
    after = tmp_path / "after.json"
    assert main(["keys", "export", "--db", str(world.path)]) == 0
    after.write_text(capsys.readouterr().out)
    assert main(["verify", str(record), "--keyring", str(after)]) == 0
    out = capsys.readouterr().out
    assert "signed before revocation" in out
    assert f"note: signature 0 (nurse1) is by key {world.nurse.kid}, revoked at" in out
    assert "signer's own claim" in out and "verify --db" in out
