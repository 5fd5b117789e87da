"""Signing keys: encrypted at rest under the password, rotation, revocation, the keyring."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time

import pytest
from cryptography.hazmat.primitives import serialization

from ketmonitor.audit import append_audit
from ketmonitor.clock import utc_iso
from ketmonitor.errors import AuthError, ConfigError, WorkflowError
from ketmonitor.signing import (KeyNotValidError, KeyRevokedError, Keyring, change_key_password,
                                current_key, enrol_key, list_keys, record_bytes, revoke_key,
                                rotate_key, seal_session, verify_db, verify_record)
from ketmonitor.signing.jws import b64url_encode, make_header, sign
from ketmonitor.signing.keys import jwk_thumbprint, unlock_key
from ketmonitor.store import open_db
from tests.core.test_signing_support import (FAST_KDF, NURSE_PW, make_session,
                                             world)  # noqa: F401 - fixture


@pytest.fixture
def db(tmp_path):
    db = open_db(tmp_path / "keys.db")
    yield db
    db.conn.close()


def test_the_private_key_is_stored_only_encrypted(db):
    info = enrol_key(db, "nurse1", "Nora Nurse, RN", "nurse", "pw-1", kdf_params=FAST_KDF)
    raw = unlock_key(db, "nurse1", "pw-1").private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    everything = "\n".join(db.conn.iterdump()).encode()
    assert raw not in everything and raw.hex().encode() not in everything
    assert b64url_encode(raw).encode() not in everything
    kdf = json.loads(db.conn.execute("SELECT kdf FROM signing_keys").fetchone()[0])
    assert kdf["kdf"] == "argon2id" and kdf["cipher"] == "A256GCM" and len(kdf["salt"]) >= 22
    assert info.kid == jwk_thumbprint(info.public_key)


def test_production_kdf_defaults_round_trip(db):
    enrol_key(db, "doc1", "Dan Doctor, MD", "physician", "correct horse")
    kdf = json.loads(db.conn.execute("SELECT kdf FROM signing_keys").fetchone()[0])
    assert (kdf["t"], kdf["m"], kdf["p"]) == (3, 65536, 4)
    assert unlock_key(db, "doc1", "correct horse").info.user_id == "doc1"


def test_a_wrong_password_is_an_auth_error_and_is_audited(db):
    enrol_key(db, "nurse1", "Nora", "nurse", "pw-1", kdf_params=FAST_KDF)
    with pytest.raises(AuthError, match="wrong password for nurse1"):
        unlock_key(db, "nurse1", "pw-2")
    with pytest.raises(AuthError, match="no password"):
        unlock_key(db, "nurse1", lambda prompt: "")
    assert db.conn.execute("SELECT count(*) FROM audit_log WHERE action = 'signing.auth_failed'"
                           ).fetchone() == (2,)


def test_a_ciphertext_moved_to_another_users_row_does_not_decrypt(db):
    enrol_key(db, "nurse1", "Nora", "nurse", "pw-nurse", kdf_params=FAST_KDF)
    enrol_key(db, "doc1", "Dan", "physician", "pw-doc", kdf_params=FAST_KDF)
    db.conn.execute("UPDATE signing_keys SET (private_key_enc, kdf) = (SELECT private_key_enc, kdf"
                    " FROM signing_keys WHERE user_id = 'doc1') WHERE user_id = 'nurse1'")
    with pytest.raises(AuthError):
        unlock_key(db, "nurse1", "pw-doc")


def test_one_active_key_per_user_and_identity_is_required(db):
    enrol_key(db, "nurse1", "Nora", "nurse", "pw", kdf_params=FAST_KDF)
    with pytest.raises(WorkflowError, match="already has an active signing key"):
        enrol_key(db, "nurse1", "Nora", "nurse", "pw", kdf_params=FAST_KDF)
    with pytest.raises(WorkflowError, match="printed name"):
        enrol_key(db, "x1", " ", "nurse", "pw", kdf_params=FAST_KDF)
    with pytest.raises(AuthError, match="no active signing key"):
        unlock_key(db, "nobody", "pw")


@pytest.mark.parametrize("sql", [
    "DELETE FROM signing_keys",
    "UPDATE signing_keys SET public_key = x'00'",
    "UPDATE signing_keys SET printed_name = 'Someone Else'",
    "UPDATE signing_keys SET role = 'physician'",
])
def test_key_identity_is_fixed_in_the_database(db, sql):
    enrol_key(db, "nurse1", "Nora", "nurse", "pw", kdf_params=FAST_KDF)
    with pytest.raises(sqlite3.IntegrityError):
        db.conn.execute(sql)


def test_password_change_re_encrypts_the_key(db):
    info = enrol_key(db, "nurse1", "Nora", "nurse", "old-pw", kdf_params=FAST_KDF)
    change_key_password(db, "nurse1", "old-pw", "new-pw", kdf_params=FAST_KDF)
    with pytest.raises(AuthError):
        unlock_key(db, "nurse1", "old-pw")
    assert unlock_key(db, "nurse1", "new-pw").info.kid == info.kid


def _sign_with_stolen_key(world, doc, kid, signed_at, private, meaning="authorship"):
    header = make_header(kid=kid, signer_id="nurse1", printed_name="Nora Nurse, RN", role="nurse",
                         meaning=meaning, signed_at=signed_at)
    sig = sign(doc["payload"], header, private)
    return sig, dict(doc, signatures=[{"protected": sig.protected, "signature": sig.signature}])


def test_rotation_keeps_old_signatures_valid_and_retires_the_old_key(world):
    old = world.nurse
    stolen = unlock_key(world.db, "nurse1", NURSE_PW).private_key  # a copy kept somewhere
    new = rotate_key(world.db, "nurse1", NURSE_PW, kdf_params=FAST_KDF)
    assert new.kid != old.kid and current_key(world.db, "nurse1").kid == new.kid
    result = verify_record(record_bytes(world.db, world.record_id), Keyring.from_db(world.db))
    assert result.signatures[0].note.startswith("signed before the key was superseded at")
    make_session(world.db, "s2", seconds=2)
    rec = seal_session(world.db, "s2", "nurse1", NURSE_PW)
    assert verify_record(record_bytes(world.db, rec.record_id),
                         Keyring.from_db(world.db)).signatures[0].kid == new.kid
    doc = json.loads(record_bytes(world.db, rec.record_id))
    _sig, forged = _sign_with_stolen_key(world, doc, old.kid, "2099-01-01T00:00:00.000Z", stolen)
    with pytest.raises(KeyNotValidError, match="after the key was superseded"):
        verify_record(json.dumps(forged).encode(), Keyring.from_db(world.db))
    verify_db(world.db)


def test_revocation_signatures_before_verify_and_say_so_after_fail(world):
    stolen = unlock_key(world.db, "nurse1", NURSE_PW).private_key
    revoked = revoke_key(world.db, world.nurse.kid, reason="laptop stolen", by_user_id="admin",
                         t_wall=time.time() + 1)
    result = verify_record(record_bytes(world.db, world.record_id), Keyring.from_db(world.db))
    assert result.signatures[0].note == f"signed before revocation at {revoked.revoked_at}"
    assert "signed before revocation" in result.describe()
    doc = json.loads(record_bytes(world.db, world.record_id))
    _sig, forged = _sign_with_stolen_key(world, doc, world.nurse.kid, "2400-01-01T00:00:00.000Z",
                                         stolen)
    with pytest.raises(KeyRevokedError, match="revocation .*laptop stolen") as err:
        verify_record(json.dumps(forged).encode(), Keyring.from_db(world.db))
    assert err.value.signer_id == "nurse1" and err.value.index == 0
    with pytest.raises(AuthError, match="no active signing key"):
        seal_session(world.db, "s1", "nurse1", NURSE_PW)
    with pytest.raises(WorkflowError, match="already revoked"):
        revoke_key(world.db, world.nurse.kid, reason="again", by_user_id="admin")
    with pytest.raises(sqlite3.IntegrityError):
        world.db.conn.execute("UPDATE signing_keys SET revoked_at_utc = NULL")
    verify_db(world.db)


def test_a_backdated_signature_entered_after_revocation_is_caught_by_the_audit_trail(world):
    """A thief writes a signing time before the revocation into the header. The file alone cannot
    tell; the database can, because the audit trail orders the revocation and the signature."""
    stolen = unlock_key(world.db, "nurse1", NURSE_PW).private_key
    revoke_key(world.db, world.nurse.kid, reason="laptop stolen", by_user_id="admin",
               t_wall=time.time() + 3600)
    doc = json.loads(record_bytes(world.db, world.record_id))
    backdated = utc_iso(time.time())
    sig, forged = _sign_with_stolen_key(world, doc, world.nurse.kid, backdated, stolen,
                                        meaning="responsibility")
    forged["signatures"] = doc["signatures"] + forged["signatures"]
    assert verify_record(json.dumps(forged).encode(), Keyring.from_db(world.db))  # file: looks ok
    world.db.conn.execute(
        "INSERT INTO record_signatures (record_id, idx, protected, signature, kid, signer_id,"
        " meaning, signed_utc) VALUES (?, 1, ?, ?, ?, 'nurse1', 'responsibility', ?)",
        (world.record_id, sig.protected, sig.signature, world.nurse.kid, backdated))
    append_audit(world.db, "record.signed", user_id="nurse1", entity="session_record",
                 entity_id=world.record_id,
                 detail={"index": 1, "signature_sha256": hashlib.sha256(
                     sig.signature.encode()).hexdigest()})
    with pytest.raises(KeyRevokedError) as err:
        verify_db(world.db)
    assert "after the key's revocation at audit row" in str(err.value)
    assert err.value.index == 1


def test_keyring_export_and_import_check_every_kid(world):
    jwks = Keyring.from_db(world.db).to_jwks()
    assert {k["user_id"] for k in jwks["keys"]} == {"nurse1", "doc1"}
    assert all(k["kty"] == "OKP" and k["crv"] == "Ed25519" and k["alg"] == "EdDSA"
               for k in jwks["keys"])
    assert all("d" not in k for k in jwks["keys"])
    jwks["keys"][0]["kid"] = jwks["keys"][1]["kid"]
    with pytest.raises(ConfigError, match="not the RFC 7638 thumbprint"):
        Keyring.from_jwks(jwks)
    with pytest.raises(ConfigError, match="not a JWK Set"):
        Keyring.from_jwks(b'{"kty": "OKP"}')
    assert len(list_keys(world.db)) == 2


def test_signing_through_the_store_writer_with_a_key_unlocked_on_the_callers_thread(tmp_path):
    """The workflow's way: load the encrypted key on the writer, derive and decrypt on the thread
    that holds the password (no KDF, no callback on the writer), then seal on the writer."""
    from ketmonitor.signing import load_key, verify_db
    from ketmonitor.store import StoreWriter
    from tests.core.test_signing_support import enrol_staff

    path = tmp_path / "w.db"
    db = open_db(path)
    enrol_staff(db)
    make_session(db, "s1", seconds=3)
    make_session(db, "s2", seconds=3)
    db.conn.close()
    with StoreWriter(path) as writer:
        encrypted = writer.run(lambda db: load_key(db, "nurse1"))
        before = writer.run(lambda db: db.conn.execute("SELECT count(*) FROM audit_log").fetchone())
        with pytest.raises(AuthError):
            encrypted.unlock("wrong")
        assert writer.run(lambda db: db.conn.execute("SELECT count(*) FROM audit_log").fetchone()
                          ) == before  # unlock writes nothing; the caller audits the failure
        key = encrypted.unlock(NURSE_PW)
        rec = writer.run(lambda db: seal_session(db, "s1", "nurse1", key))
        with pytest.raises(AuthError, match="belongs to nurse1, not doc1"):
            writer.run(lambda db: seal_session(db, "s2", "doc1", key))
        writer.run(lambda db: rotate_key(db, "nurse1", NURSE_PW, kdf_params=FAST_KDF))
        with pytest.raises(AuthError, match="no longer active"):
            writer.run(lambda db: seal_session(db, "s2", "nurse1", key))
        report = writer.run(lambda db: verify_db(db))
    assert [r.record_id for r in report.records] == [rec.record_id]
