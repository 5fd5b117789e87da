"""Clinic and users: first start, login, lockout (audited), password rules and ageing, handover."""

from __future__ import annotations

import json

import pytest
from argon2 import PasswordHasher

from ketmonitor.audit import verify_chain
from ketmonitor.clock import ManualClock
from ketmonitor.errors import AuthError, ConfigError
from ketmonitor.store import open_db
from ketmonitor.users import (AccountLockedError, Authenticator, Clinic, InactivityLock,
                              InlineRunner, PasswordExpiredError, PasswordPolicy, PermissionDenied)

ADMIN_PW = "Boss-key-2026x"
NURSE_PW = "Nurse-pass-2026"


def cheap_hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # still argon2id


@pytest.fixture
def env(db_path):
    db = open_db(db_path)
    clock = ManualClock()
    auth = Authenticator(InlineRunner(db), clock=clock, hasher=cheap_hasher())
    admin = auth.first_start(Clinic("North clinic", address="1 Main St"), "admin", "Ada Admin",
                             ADMIN_PW)
    nurse = auth.create_user(admin, "nina", "Nina Nurse", "nurse", NURSE_PW, must_change=False)
    yield db, clock, auth, admin, nurse
    db.conn.close()


def audit_actions(db, entity_id=None):
    sql = "SELECT action FROM audit_log" + (" WHERE entity_id = ?" if entity_id else "") + \
        " ORDER BY seq"
    return [r[0] for r in db.conn.execute(sql, (entity_id,) if entity_id else ())]


def test_first_start_creates_clinic_and_admin_once(db_path):
    db = open_db(db_path)
    auth = Authenticator(InlineRunner(db), clock=ManualClock(), hasher=cheap_hasher())
    assert auth.needs_first_start()
    admin = auth.first_start(Clinic("North clinic"), "admin", "Ada Admin", ADMIN_PW)
    assert admin.role == "admin" and not auth.needs_first_start()
    assert auth.clinic().name == "North clinic"
    with pytest.raises(AuthError, match="already has a clinic"):
        auth.first_start(Clinic("Other"), "admin2", "Bob", ADMIN_PW)
    stored = db.conn.execute("SELECT password_hash FROM users WHERE id='admin'").fetchone()[0]
    assert stored.startswith("$argon2id$") and ADMIN_PW not in stored
    assert audit_actions(db) == ["clinic.create", "user.create"]
    db.conn.close()


def test_login_right_and_wrong(env):
    db, clock, auth, admin, nurse = env
    assert auth.login("nina", NURSE_PW).full_name == "Nina Nurse"
    with pytest.raises(AuthError, match="user id or password is wrong"):
        auth.login("nina", "not-the-password")
    with pytest.raises(AuthError, match="user id or password is wrong"):
        auth.login("nobody", NURSE_PW)  # same message: no hint which part was wrong
    failed = [json.loads(d) for (d,) in db.conn.execute(
        "SELECT detail FROM audit_log WHERE action='auth.failed' ORDER BY seq")]
    assert [f["known_user"] for f in failed] == [True, False]
    assert "auth.login" in audit_actions(db, "nina")


def test_lockout_after_repeated_failures_is_recorded_and_expires(env):
    db, clock, auth, admin, nurse = env
    auth.set_policy(admin, PasswordPolicy(max_failures=3, lockout_minutes=15))
    for _ in range(2):
        with pytest.raises(AuthError, match="wrong"):
            auth.login("nina", "bad-Password-1")
    with pytest.raises(AccountLockedError, match="locked until"):
        auth.login("nina", "bad-Password-1")
    with pytest.raises(AccountLockedError):
        auth.login("nina", NURSE_PW)  # even the right password while locked
    actions = audit_actions(db, "nina")
    assert actions.count("auth.failed") == 3 and "auth.lockout" in actions
    assert "auth.locked_attempt" in actions
    clock.advance(16 * 60)
    assert auth.login("nina", NURSE_PW).id == "nina"
    assert db.conn.execute("SELECT failed_attempts, locked_utc FROM users WHERE id='nina'"
                           ).fetchone() == (0, None)
    verify_chain(db)


def test_lockout_until_admin_unlocks(env):
    db, clock, auth, admin, nurse = env
    auth.set_policy(admin, PasswordPolicy(max_failures=2, lockout_minutes=0))
    for _ in range(2):
        with pytest.raises(AuthError):
            auth.login("nina", "bad-Password-1")
    clock.advance(30 * 24 * 3600)
    with pytest.raises(AccountLockedError, match="administrator"):
        auth.login("nina", NURSE_PW)
    with pytest.raises(PermissionDenied):
        auth.unlock_account(nurse, "nina")
    auth.unlock_account(admin, "nina")
    assert auth.login("nina", NURSE_PW).id == "nina"
    assert "user.unlock" in audit_actions(db, "nina")


@pytest.mark.parametrize("password, needs", [
    ("short1A", "at least 10 characters"),
    ("alllowercase1", "an upper-case letter"),
    ("ALLUPPERCASE1", "a lower-case letter"),
    ("NoDigitsHere", "a digit"),
    ("Sam42-pass-123", "not containing the user id"),
])
def test_password_rules(env, password, needs):
    db, clock, auth, admin, nurse = env
    with pytest.raises(AuthError, match=needs):
        auth.create_user(admin, "sam42", "Sam", "nurse", password)
    assert auth.get_user("sam42") is None
    auth.create_user(admin, "sam42", "Sam", "nurse", "Good-pass-2026")  # a good one is taken


def test_symbol_rule_and_policy_validation(env):
    db, clock, auth, admin, nurse = env
    auth.set_policy(admin, PasswordPolicy(require_symbol=True, min_length=12))
    with pytest.raises(AuthError, match="a symbol.*|at least 12"):
        auth.create_user(admin, "sam", "Sam", "nurse", "Abcdefgh1234")
    assert auth.policy().require_symbol
    with pytest.raises(ConfigError, match="min_length"):
        PasswordPolicy.from_dict({"min_length": 4})
    with pytest.raises(ConfigError, match="unknown field"):
        PasswordPolicy.from_dict({"min_lenght": 12})
    with pytest.raises(PermissionDenied):
        auth.set_policy(nurse, PasswordPolicy())


def test_password_ageing_and_reuse(env):
    db, clock, auth, admin, nurse = env
    auth.set_policy(admin, PasswordPolicy(max_age_days=30, history=2))
    clock.advance(31 * 24 * 3600)
    with pytest.raises(PasswordExpiredError, match="older than 30 days"):
        auth.login("nina", NURSE_PW)
    with pytest.raises(AuthError, match="used recently"):
        auth.change_password("nina", NURSE_PW, NURSE_PW)
    auth.change_password("nina", NURSE_PW, "Fresh-pass-2027")
    assert auth.login("nina", "Fresh-pass-2027").id == "nina"
    assert "auth.password_change" in audit_actions(db, "nina")


def test_new_account_and_reset_must_change_password(env):
    db, clock, auth, admin, nurse = env
    auth.create_user(admin, "phil", "Phil Physician", "physician", "Temp-pass-2026")
    with pytest.raises(PasswordExpiredError, match="must choose a new password"):
        auth.login("phil", "Temp-pass-2026")
    assert auth.verify("phil", "Temp-pass-2026").role == "physician"  # re-auth is not blocked
    auth.reset_password(admin, "nina", "Reset-pass-2026")
    with pytest.raises(PasswordExpiredError):
        auth.login("nina", "Reset-pass-2026")
    with pytest.raises(AuthError, match="already exists"):
        auth.create_user(admin, "phil", "Another", "nurse", "Temp-pass-2026")
    with pytest.raises(AuthError, match="unknown role"):
        auth.create_user(admin, "rob", "Rob", "surgeon", "Temp-pass-2026")


def test_deactivated_user_cannot_log_in(env):
    db, clock, auth, admin, nurse = env
    auth.set_active(admin, "nina", False)
    with pytest.raises(AuthError, match="wrong"):
        auth.login("nina", NURSE_PW)
    with pytest.raises(AuthError, match="own account"):
        auth.set_active(admin, "admin", False)


def test_inactivity_lock_model():
    changes = []
    lock = InactivityLock(60, user_id="nina", on_change=changes.append, now=0.0)
    lock.touch(30.0)
    assert not lock.poll(89.0) and lock.remaining(89.0) == pytest.approx(1.0)
    assert lock.poll(90.0) and changes == [True]
    lock.touch(95.0)  # input while locked does not unlock
    assert lock.poll(96.0)
    same = lock.unlock("nina", 100.0)
    assert not same.handover and same.locked_for == pytest.approx(10.0) and changes == [True, False]
    lock.lock(110.0)
    other = lock.unlock("phil", 120.0)
    assert other.handover and other.previous_user == "nina" and lock.user_id == "phil"


def test_unlock_by_another_user_is_a_recorded_handover(env):
    db, clock, auth, admin, nurse = env
    auth.create_user(admin, "paula", "Paula Nurse", "nurse", "Ward-key-2026", must_change=False)
    auth.create_user(admin, "audrey", "Audrey Auditor", "auditor", "Audit-pass-2026",
                     must_change=False)
    lock = InactivityLock(300, user_id="nina", now=clock.monotonic())
    clock.advance(301)
    assert lock.poll(clock.monotonic())
    with pytest.raises(PermissionDenied, match="only a nurse or physician"):
        auth.unlock_screen(lock, "audrey", "Audit-pass-2026", session_id="s1")
    assert lock.locked
    with pytest.raises(AuthError):
        auth.unlock_screen(lock, "paula", "wrong-Pass-1", session_id="s1")
    result = auth.unlock_screen(lock, "paula", "Ward-key-2026", session_id="s1")
    assert result.handover and result.user.full_name == "Paula Nurse" and not lock.locked
    detail = json.loads(db.conn.execute("SELECT detail FROM audit_log WHERE action="
                                        "'session.handover'").fetchone()[0])
    assert detail["from"] == "nina" and detail["to"] == "paula"
    verify_chain(db)


def test_the_unlock_check_changes_nothing_until_it_is_recorded(env):
    """The bedside checks the password on a worker (check_unlock) and unlocks on the Qt thread
    (record_unlock): the check alone leaves the lock locked and records no unlock."""
    db, clock, auth, admin, nurse = env
    changes = []
    lock = InactivityLock(300, user_id="nina", now=clock.monotonic(), on_change=changes.append)
    lock.lock(clock.monotonic())
    user = auth.check_unlock(lock, "nina", "Nurse-pass-2026")
    assert user.id == "nina" and lock.locked and changes == [True]
    unlocks = "SELECT count(*) FROM audit_log WHERE action = 'session.unlock'"
    assert db.conn.execute(unlocks).fetchone() == (0,)
    result = auth.record_unlock(lock, user, session_id="s1")
    assert not result.handover and not lock.locked and changes == [True, False]
    assert db.conn.execute(unlocks).fetchone() == (1,)
