"""Signing keys follow the account: enrolled for nurses and physicians, re-encrypted by a password
change in the same transaction, revoked by an administrator's reset and replaced at the user's next
password. Real SQLite files, real Argon2id and Ed25519 (cheap parameters)."""

from __future__ import annotations

import json

import pytest
from argon2 import PasswordHasher

from ketmonitor.clock import ManualClock
from ketmonitor.errors import AuthError
from ketmonitor.signing import (Keyring, current_key, enrol_key, list_keys, record_bytes,
                                rotate_key, seal_session, verify_db, verify_record)
from ketmonitor.signing.keys import unlock_key
from ketmonitor.store import open_db
from ketmonitor.users import Authenticator, Clinic, InlineRunner, PasswordExpiredError
from tests.core.test_signing_support import FAST_KDF, make_session

ADMIN_PW, NURSE_PW, NEW_PW = "Boss-key-2026x", "Nurse-pass-2026", "Fresh-pass-2027"


class Runner(InlineRunner):
    """An InlineRunner that lets another workstation act just before the next account write (the
    Authenticator's write transactions are its functions named ``write``)."""

    before_write = None

    def run(self, fn, timeout=None):
        if self.before_write is not None and fn.__name__ == "write":
            act, self.before_write = self.before_write, None
            act(self.db)
        return super().run(fn, timeout)


@pytest.fixture
def env(db_path):
    db = open_db(db_path)
    runner = Runner(db)
    auth = Authenticator(runner, clock=ManualClock(),
                         hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
                         key_kdf=FAST_KDF)
    admin = auth.first_start(Clinic("North clinic"), "admin", "Ada Admin", ADMIN_PW)
    yield db, runner, auth, admin
    db.conn.close()


def actions(db, *names):
    marks = ",".join("?" * len(names))
    return [(a, u, e) for a, u, e in db.conn.execute(
        f"SELECT action, user_id, entity_id FROM audit_log WHERE action IN ({marks}) ORDER BY seq",
        names)]


def test_clinical_users_get_a_key_under_their_password_and_others_none(env):
    db, _runner, auth, admin = env
    auth.create_user(admin, "nina", "Nina Nurse, RN", "nurse", NURSE_PW, must_change=False)
    auth.create_user(admin, "phil", "Phil Physician, MD", "physician", "Phys-key-2026",
                     must_change=False)
    auth.create_user(admin, "audrey", "Audrey Auditor", "auditor", "Audit-key-2026",
                     must_change=False)
    keys = {k.user_id: k for k in list_keys(db)}
    assert set(keys) == {"nina", "phil"}  # the admin and the auditor sign nothing
    assert (keys["nina"].printed_name, keys["nina"].role) == ("Nina Nurse, RN", "nurse")
    assert unlock_key(db, "nina", NURSE_PW).info.kid == keys["nina"].kid
    assert actions(db, "key.enrolled") == [("key.enrolled", "admin", keys["nina"].kid),
                                           ("key.enrolled", "admin", keys["phil"].kid)]
    kdf = json.loads(db.conn.execute("SELECT kdf FROM signing_keys WHERE user_id = 'nina'"
                                     ).fetchone()[0])
    assert (kdf["t"], kdf["m"], kdf["p"]) == (1, 1024, 1)


def test_a_temporary_password_gets_no_key_the_users_own_does(env):
    """A key under the password the administrator chose would be the administrator's key."""
    db, _runner, auth, admin = env
    auth.create_user(admin, "nina", "Nina Nurse, RN", "nurse", NURSE_PW)  # must change it
    assert list_keys(db, "nina") == []
    with pytest.raises(PasswordExpiredError):
        auth.login("nina", NURSE_PW)
    auth.change_password("nina", NURSE_PW, NEW_PW)
    (key,) = list_keys(db, "nina")
    assert key.active and unlock_key(db, "nina", NEW_PW).info.kid == key.kid
    with pytest.raises(AuthError, match="wrong password"):
        unlock_key(db, "nina", NURSE_PW)
    assert actions(db, "auth.password_change", "key.enrolled")[-2:] == [
        ("auth.password_change", "nina", "nina"), ("key.enrolled", "nina", key.kid)]


def test_a_password_change_re_encrypts_the_key_and_earlier_records_still_verify(env):
    db, _runner, auth, admin = env
    auth.create_user(admin, "nurse1", "Nora Nurse, RN", "nurse", NURSE_PW, must_change=False)
    make_session(db, "s1", seconds=3)
    rec = seal_session(db, "s1", "nurse1", NURSE_PW)
    kid = current_key(db, "nurse1").kid
    auth.change_password("nurse1", NURSE_PW, NEW_PW)
    with pytest.raises(AuthError, match="wrong password"):
        unlock_key(db, "nurse1", NURSE_PW)
    assert unlock_key(db, "nurse1", NEW_PW).info.kid == kid  # the same key, newly wrapped
    change_seq, rewrap_seq = (db.conn.execute(
        "SELECT seq FROM audit_log WHERE action = ?", (a,)).fetchone()[0]
        for a in ("auth.password_change", "key.password_changed"))
    assert rewrap_seq == change_seq + 1  # written with the password, in one transaction
    make_session(db, "s2", seconds=3)
    seal_session(db, "s2", "nurse1", NEW_PW)
    assert verify_record(record_bytes(db, rec.record_id), Keyring.from_db(db)).signatures[0].note \
        is None
    verify_db(db)


def test_a_key_changed_meanwhile_aborts_the_whole_password_change(env):
    """The re-encrypted key and the new password are one write: if the key was rotated on another
    workstation after it was re-encrypted, neither is stored."""
    db, runner, auth, admin = env
    auth.create_user(admin, "nurse1", "Nora Nurse, RN", "nurse", NURSE_PW, must_change=False)
    before = db.conn.execute("SELECT password_hash FROM users WHERE id = 'nurse1'").fetchone()
    runner.before_write = lambda d: rotate_key(d, "nurse1", NURSE_PW, kdf_params=FAST_KDF)
    with pytest.raises(AuthError, match="no longer active"):
        auth.change_password("nurse1", NURSE_PW, NEW_PW)
    assert runner.before_write is None  # the rotation did happen in between
    assert db.conn.execute("SELECT password_hash FROM users WHERE id = 'nurse1'").fetchone() == before
    assert actions(db, "auth.password_change", "key.password_changed") == []
    assert unlock_key(db, "nurse1", NURSE_PW).info.kid == current_key(db, "nurse1").kid
    assert auth.login("nurse1", NURSE_PW).id == "nurse1"


def test_an_admin_reset_revokes_the_key_and_the_next_password_gets_a_new_one(env):
    db, _runner, auth, admin = env
    auth.create_user(admin, "nurse1", "Nora Nurse, RN", "nurse", NURSE_PW, must_change=False)
    make_session(db, "s1", seconds=3)
    rec = seal_session(db, "s1", "nurse1", NURSE_PW)
    old = current_key(db, "nurse1")
    auth.reset_password(admin, "nurse1", "Reset-pass-2026")
    (revoked,) = [k for k in list_keys(db, "nurse1") if k.kid == old.kid]
    assert revoked.revocation_reason == "password reset by admin" and revoked.revoked_at
    assert ("key.revoked", "admin", old.kid) in actions(db, "key.revoked")
    with pytest.raises(AuthError, match="no active signing key"):  # nobody signs with it now
        seal_session(db, "s1", "nurse1", NURSE_PW)
    result = verify_record(record_bytes(db, rec.record_id), Keyring.from_db(db))
    assert result.signatures[0].note == f"signed before revocation at {revoked.revoked_at}"

    with pytest.raises(PasswordExpiredError):
        auth.login("nurse1", "Reset-pass-2026")
    auth.change_password("nurse1", "Reset-pass-2026", NEW_PW)
    new = current_key(db, "nurse1")
    assert new.kid != old.kid and unlock_key(db, "nurse1", NEW_PW).info.kid == new.kid
    make_session(db, "s2", seconds=3)
    seal_session(db, "s2", "nurse1", NEW_PW)
    verify_db(db)


def test_a_key_with_its_own_signing_password_is_left_alone_and_that_is_audited(env):
    db, _runner, auth, admin = env
    auth.create_user(admin, "audrey", "Audrey Auditor", "auditor", "Audit-key-2026",
                     must_change=False)
    db.conn.execute("UPDATE users SET role = 'nurse' WHERE id = 'audrey'")  # became a nurse
    enrol_key(db, "audrey", "Audrey Nurse, RN", "nurse", "a separate signing secret",
              kdf_params=FAST_KDF)
    auth.change_password("audrey", "Audit-key-2026", NEW_PW)
    assert unlock_key(db, "audrey", "a separate signing secret")
    (kept,) = actions(db, "key.password_kept")
    assert kept[1:] == ("audrey", current_key(db, "audrey").kid)
