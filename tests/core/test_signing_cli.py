"""``ketmonitor verify`` and ``ketmonitor keys``: exit 0 only when everything verifies, otherwise a
line naming what failed."""

from __future__ import annotations

import io
import json

import pytest
from jwcrypto import jwk

from ketmonitor.cli import main
from ketmonitor.signing import record_bytes
from tests.core.test_signing_support import b64d, b64e, drop_trigger, world  # noqa: F401


@pytest.fixture
def files(world, tmp_path):
    record = tmp_path / "record.json"
    record.write_bytes(record_bytes(world.db, world.record_id))
    return world, record


def test_keys_export_prints_a_jwk_set(world, capsys):
    assert main(["keys", "export", "--db", str(world.path)]) == 0
    out = capsys.readouterr().out
    keyset = jwk.JWKSet.from_json(out)
    assert keyset.get_key(world.nurse.kid) is not None
    assert {k["printed_name"] for k in json.loads(out)["keys"]} == {"Nora Nurse, RN",
                                                                   "Dan Doctor, MD"}
    assert main(["--db", str(world.path), "keys", "export"]) == 0  # global --db works too
    assert json.loads(capsys.readouterr().out) == json.loads(out)


def test_verify_a_record_with_a_keyring_file(files, tmp_path, capsys):
    world, record = files
    keyring = tmp_path / "keyring.json"
    assert main(["keys", "export", "--db", str(world.path)]) == 0
    keyring.write_text(capsys.readouterr().out)
    assert main(["verify", str(record), "--keyring", str(keyring)]) == 0
    out = capsys.readouterr().out
    assert f"record {world.record_id}" in out and "Nora Nurse, RN (nurse, nurse1)" in out

    doc = json.loads(record.read_bytes())
    doc["payload"] = b64e(b64d(doc["payload"]).replace(b"esketamine", b"ketamine!!"))
    record.write_text(json.dumps(doc))
    assert main(["verify", str(record), "--keyring", str(keyring)]) == 1
    err = capsys.readouterr().err
    assert f"FAILED: record {world.record_id}: signature 0 (signer nurse1" in err


def test_verify_a_record_on_a_fresh_database_after_importing_the_keyring(files, tmp_path, capsys):
    world, record = files
    keyring = tmp_path / "keyring.json"
    main(["keys", "export", "--db", str(world.path)])
    keyring.write_text(capsys.readouterr().out)
    fresh = tmp_path / "auditor.db"
    assert main(["keys", "import", str(keyring), "--db", str(fresh)]) == 0
    assert "imported 2 new key(s)" in capsys.readouterr().out
    assert main(["verify", str(record), "--db", str(fresh)]) == 0
    assert main(["keys", "list", "--db", str(fresh)]) == 0
    assert "[imported]" in capsys.readouterr().out


def test_verify_db_names_the_failing_chunk(world, capsys):
    assert main(["verify", "--db", str(world.path), "--session", world.session_id]) == 0
    assert "OK: everything verifies" in capsys.readouterr().out
    drop_trigger(world.db, "waveform_chunks_sealed_no_update")
    world.db.conn.execute("UPDATE waveform_chunks SET samples = x'05000000' WHERE id = 3")
    assert main(["verify", "--db", str(world.path)]) == 1
    err = capsys.readouterr().err
    assert "FAILED: record" in err and "waveform chunk 3 (pleth" in err


def test_usage_errors_exit_2(world, tmp_path, capsys):
    assert main(["verify", str(tmp_path / "nope.json"), "--keyring", "x"]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["verify", "--db", str(tmp_path / "missing.db")]) == 2
    assert "no database" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "kid": "k"}]}')
    record = tmp_path / "r.json"
    record.write_bytes(record_bytes(world.db, world.record_id))
    assert main(["verify", str(record), "--keyring", str(bad)]) == 2
    assert "32-byte" in capsys.readouterr().err


def _clinic(path):
    """A clinic database with its administrator (cheap password hashing)."""
    from argon2 import PasswordHasher

    from ketmonitor.store import open_db
    from ketmonitor.users import Authenticator, Clinic, InlineRunner

    db = open_db(path)
    auth = Authenticator(InlineRunner(db), hasher=PasswordHasher(time_cost=1, memory_cost=1024,
                                                                 parallelism=1))
    auth.first_start(Clinic("North clinic"), "admin1", "Ada Admin", "Boss-key-2026x")
    return db


def test_keys_enrol_rotate_and_revoke(tmp_path, capsys, monkeypatch):
    db_file = tmp_path / "k.db"
    db = _clinic(db_file)
    monkeypatch.setattr("sys.stdin", io.StringIO("pw-for-cli\n"))
    assert main(["keys", "enrol", "--db", str(db_file), "--user-id", "nurse9", "--name", "Nina",
                 "--role", "nurse", "--password-stdin"]) == 0
    kid = capsys.readouterr().out.split()[2]

    monkeypatch.setattr("sys.stdin", io.StringIO("pw-for-cli\n"))
    assert main(["keys", "rotate", "--db", str(db_file), "--user-id", "nurse9", "--name", "Nina",
                 "--role", "nurse", "--password-stdin"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"rotated: key {kid} valid until ") and "still verifies" in out
    new_kid = out.split("new key ")[1].split()[0]
    rows = dict(db.conn.execute("SELECT kid, valid_to_utc FROM signing_keys").fetchall())
    assert rows[kid] is not None and rows[new_kid] is None
    monkeypatch.setattr("sys.stdin", io.StringIO("not-the-password\n"))
    assert main(["keys", "rotate", "--db", str(db_file), "--user-id", "nurse9", "--name", "Nina",
                 "--role", "nurse", "--password-stdin"]) == 2
    assert "wrong password for nurse9" in capsys.readouterr().err

    # revoking is an administrator's act, confirmed by their password, and says who
    with pytest.raises(SystemExit) as usage:
        main(["keys", "revoke", new_kid, "--reason", "left", "--db", str(db_file)])
    assert usage.value.code == 2 and "required: --by" in capsys.readouterr().err
    assert main(["keys", "revoke", new_kid, "--reason", "left", "--by", "nurse9",
                 "--db", str(db_file)]) == 2
    assert "not an active administrator" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("Wrong-pass-2026\n"))
    assert main(["keys", "revoke", new_kid, "--reason", "left", "--by", "admin1",
                 "--password-stdin", "--db", str(db_file)]) == 2
    assert "wrong" in capsys.readouterr().err
    assert db.conn.execute("SELECT revoked_at_utc FROM signing_keys WHERE kid = ?",
                           (new_kid,)).fetchone() == (None,)
    monkeypatch.setattr("sys.stdin", io.StringIO("Boss-key-2026x\n"))
    assert main(["keys", "revoke", new_kid, "--reason", "left", "--by", "admin1",
                 "--password-stdin", "--db", str(db_file)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("by admin1")
    who, detail = db.conn.execute("SELECT user_id, detail FROM audit_log WHERE action ="
                                  " 'key.revoked'").fetchone()
    assert who == "admin1" and json.loads(detail)["reason"] == "left"
    assert main(["keys", "list", "--db", str(db_file)]) == 0
    listing = capsys.readouterr().out
    assert "revoked" in listing and "superseded" in listing
    assert main(["keys", "enrol", "--db", str(db_file), "--user-id", "x"]) == 2
    db.conn.close()
