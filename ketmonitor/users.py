"""Clinic, users and roles, login with lockout, password rules and ageing, the inactivity lock.

The ``Authenticator`` does not depend on a monitoring session: it takes a *runner*, anything with
``run(fn)`` that calls ``fn(db)`` inside a write transaction (the StoreWriter, or ``InlineRunner``
for a database opened directly). Password hashing (argon2id, deliberately slow) runs on the
caller's thread, never inside the write transaction, so a login does not stall sample writing.

Every login, failure, lockout, unlock, password change and handover goes to the audit trail
(21 CFR 11.300: attempted misuse detected and reported).

Signing keys follow the password (docs/signing.md, "Keys and the keyring"): a nurse or physician
gets an Ed25519 key encrypted under their own password — when the account is made with a password
that is the user's (``must_change=False``), otherwise when they replace the temporary one, so no
key is ever kept under a password the administrator chose for them. A password change re-encrypts
the key in the same transaction; an administrator's reset revokes it (the old password that
unlocks it is lost) and the user's next password gets a new key.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from .audit import append_audit
from .clock import Clock, parse_utc, utc_iso
from .errors import AuthError, ConfigError
from .signing.keys import (list_keys, load_key, new_key, revoke_key, rewrap_key, store_new_key,
                           store_rewrapped)

ROLES = ("nurse", "physician", "auditor", "admin")
CLINICAL_ROLES = frozenset({"nurse", "physician"})  # may make session entries
POLICY_KEY = "auth.password_policy"
_USER_ID = re.compile(r"^[A-Za-z0-9._@-]{2,64}$")


class PasswordExpiredError(AuthError):
    """The password is right but too old (or must be changed): change it before going on."""

    def __init__(self, message: str, user: "User"):
        super().__init__(message)
        self.user = user


class AccountLockedError(AuthError):
    """Too many failed attempts."""


class PermissionDenied(AuthError):
    """The user's role does not allow the action."""


@dataclass(frozen=True)
class PasswordPolicy:
    """Password rules, ageing and lockout. Stored as JSON under settings[POLICY_KEY]."""

    min_length: int = 10
    require_lower: bool = True
    require_upper: bool = True
    require_digit: bool = True
    require_symbol: bool = False
    max_age_days: int = 180          # 0: passwords never expire
    history: int = 3                 # may not reuse the last N passwords
    max_failures: int = 5            # consecutive failures before lockout
    lockout_minutes: int = 15        # 0: locked until an admin unlocks

    @classmethod
    def from_dict(cls, data: dict) -> "PasswordPolicy":
        known = {f.name: f.type for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"password policy: unknown field(s) {', '.join(unknown)}")
        policy = cls(**data)
        for f in fields(cls):
            value = getattr(policy, f.name)
            expected = bool if f.type in ("bool", bool) else int
            if type(value) is not expected:
                raise ConfigError(f"password policy: {f.name} must be {expected.__name__}")
            if expected is int and value < 0:
                raise ConfigError(f"password policy: {f.name} must not be negative")
        if policy.min_length < 8:
            raise ConfigError("password policy: min_length must be at least 8")
        if policy.max_failures < 1:
            raise ConfigError("password policy: max_failures must be at least 1")
        return policy

    def problems(self, password: str, user_id: str = "") -> list[str]:
        """What is wrong with ``password`` under these rules (empty when it is acceptable)."""
        out = []
        if len(password) < self.min_length:
            out.append(f"at least {self.min_length} characters")
        if self.require_lower and not re.search(r"[a-z]", password):
            out.append("a lower-case letter")
        if self.require_upper and not re.search(r"[A-Z]", password):
            out.append("an upper-case letter")
        if self.require_digit and not re.search(r"\d", password):
            out.append("a digit")
        if self.require_symbol and not re.search(r"[^A-Za-z0-9]", password):
            out.append("a symbol")
        if user_id and user_id.lower() in password.lower():
            out.append("not containing the user id")
        return out

    def check(self, password: str, user_id: str = "") -> None:
        problems = self.problems(password, user_id)
        if problems:
            raise AuthError("password needs " + ", ".join(problems))


@dataclass(frozen=True)
class User:
    id: str
    full_name: str
    role: str
    active: bool = True
    email: str = ""
    phone: str = ""

    @property
    def clinical(self) -> bool:
        return self.role in CLINICAL_ROLES


@dataclass(frozen=True)
class Clinic:
    name: str
    address: str = ""
    phone: str = ""
    email: str = ""


class InlineRunner:
    """Run ``fn(db)`` in a transaction on the calling thread (CLI tools, tests, the auditor's laptop).

    Same contract as ``StoreWriter.run``; do not mix with a StoreWriter on the same file at once.
    """

    def __init__(self, db):
        self.db = db

    def run(self, fn, timeout: float | None = None):
        conn = self.db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(self.db)
            conn.execute("COMMIT")
        except BaseException:
            # a COMMIT that fails (disk full, a deferred constraint) leaves the transaction open
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result

    def call(self, fn):
        from concurrent.futures import Future

        fut: Future = Future()
        try:
            fut.set_result(self.run(fn))
        except Exception as exc:  # noqa: BLE001 - handed to the caller through the future
            fut.set_exception(exc)
        return fut


def _user(row: dict) -> User:
    return User(row["id"], row["full_name"], row["role"], bool(row["active"]), row["email"],
                row["phone"])


def _row(db, user_id: str) -> dict | None:
    cur = db.conn.execute("SELECT * FROM users WHERE id = ?", (user_id,))
    r = cur.fetchone()
    return dict(zip([c[0] for c in cur.description], r)) if r else None


def load_policy(db) -> PasswordPolicy:
    row = db.conn.execute("SELECT value FROM settings WHERE key = ?", (POLICY_KEY,)).fetchone()
    return PasswordPolicy.from_dict(json.loads(row[0])) if row else PasswordPolicy()


def get_clinic(db) -> Clinic | None:
    row = db.conn.execute("SELECT name, address, phone, email FROM clinic WHERE id = 1").fetchone()
    return Clinic(*row) if row else None


class Authenticator:
    """Users, login and lockout over one database. Methods raise AuthError with a message for people."""

    def __init__(self, runner, *, clock: Clock | None = None, hasher: PasswordHasher | None = None,
                 key_kdf: dict | None = None):
        self.runner = runner
        self.clock = clock or Clock()
        self.hasher = hasher or PasswordHasher()  # argon2id with the library's recommended cost
        self.key_kdf = key_kdf  # Argon2id parameters of signing keys (None: the RFC 9106 default)

    # -- reading -------------------------------------------------------------------------------
    def _now(self) -> str:
        return utc_iso(self.clock.wall())

    def _key_time(self) -> float:
        """When a new signing key becomes valid: this clock's time, but never later than real
        time. Signatures carry real time; a simulated clock running ahead would date the key after
        the signatures it makes."""
        return min(self.clock.wall(), time.time())

    def needs_first_start(self) -> bool:
        return self.runner.run(lambda db: get_clinic(db) is None)

    def clinic(self) -> Clinic | None:
        return self.runner.run(get_clinic)

    def policy(self) -> PasswordPolicy:
        return self.runner.run(load_policy)

    def get_user(self, user_id: str) -> User | None:
        row = self.runner.run(lambda db: _row(db, user_id))
        return _user(row) if row else None

    def users(self) -> list[User]:
        def read(db):
            cur = db.conn.execute("SELECT * FROM users ORDER BY id")
            cols = [c[0] for c in cur.description]
            return [_user(dict(zip(cols, r))) for r in cur.fetchall()]
        return self.runner.run(read)

    # -- setting up ----------------------------------------------------------------------------
    def first_start(self, clinic: Clinic, admin_id: str, admin_name: str, password: str) -> User:
        """Create the clinic and its first admin; only on an empty database."""
        if not clinic.name.strip():
            raise AuthError("the clinic needs a name")
        policy = self.policy()
        self._check_new_user(admin_id, admin_name, "admin")
        policy.check(password, admin_id)
        pw_hash = self.hasher.hash(password)
        now = self._now()

        def write(db):
            if get_clinic(db) is not None:
                raise AuthError("this database already has a clinic; first start is done")
            db.conn.execute("INSERT INTO clinic (id, name, address, phone, email, created_utc)"
                            " VALUES (1, ?, ?, ?, ?, ?)",
                            (clinic.name.strip(), clinic.address, clinic.phone, clinic.email, now))
            append_audit(db, "clinic.create", user_id=admin_id, entity="clinic", entity_id="1",
                         detail=asdict(clinic), t_wall=self.clock.wall())
            self._insert_user(db, admin_id, admin_name, "admin", pw_hash, now, created_by=None)
        self.runner.run(write)
        return User(admin_id, admin_name, "admin")

    def set_policy(self, actor: User, policy: PasswordPolicy) -> None:
        self._require_admin(actor)
        data = asdict(PasswordPolicy.from_dict(asdict(policy)))

        def write(db):
            db.conn.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)",
                            (POLICY_KEY, json.dumps(data, sort_keys=True)))
            append_audit(db, "auth.policy", user_id=actor.id, entity="settings",
                         entity_id=POLICY_KEY, detail=data, t_wall=self.clock.wall())
        self.runner.run(write)

    def create_user(self, actor: User, user_id: str, full_name: str, role: str, password: str, *,
                    email: str = "", phone: str = "", must_change: bool = True) -> User:
        """An admin creates an account; by default the user must choose a new password at first login."""
        self._require_admin(actor)
        self._check_new_user(user_id, full_name, role)
        self.policy().check(password, user_id)
        if self.get_user(user_id) is not None:  # before the slow hashing and key derivation
            raise AuthError(f"user id {user_id!r} already exists (user ids are never reused)")
        pw_hash = self.hasher.hash(password)
        now = self._now()
        # A temporary password (must_change) is the administrator's: the key waits for the user's own.
        key = (new_key(user_id, full_name.strip(), role, password, kdf_params=self.key_kdf)
               if role in CLINICAL_ROLES and not must_change else None)
        key_time = self._key_time()

        def write(db):
            if _row(db, user_id) is not None:
                raise AuthError(f"user id {user_id!r} already exists (user ids are never reused)")
            self._insert_user(db, user_id, full_name, role, pw_hash, now, created_by=actor.id,
                              must_change=must_change, email=email, phone=phone)
            if key is not None:
                store_new_key(db, key, t_wall=key_time, by_user_id=actor.id)
        self.runner.run(write)
        return User(user_id, full_name, role, True, email, phone)

    def _check_new_user(self, user_id: str, full_name: str, role: str) -> None:
        if not _USER_ID.match(user_id or ""):
            raise AuthError("user id must be 2-64 letters, digits or . _ @ -")
        if not full_name.strip():
            raise AuthError("the user needs a full name (it is printed with every signature)")
        if role not in ROLES:
            raise AuthError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")

    def _insert_user(self, db, user_id, full_name, role, pw_hash, now, *, created_by,
                     must_change=False, email="", phone=""):
        db.conn.execute(
            "INSERT INTO users (id, full_name, role, password_hash, password_changed_utc, must_change,"
            " email, phone, created_utc, created_by) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (user_id, full_name.strip(), role, pw_hash, now, int(must_change), email, phone, now,
             created_by))
        db.conn.execute("INSERT INTO password_history (user_id, password_hash, t_utc) VALUES (?,?,?)",
                        (user_id, pw_hash, now))
        append_audit(db, "user.create", user_id=created_by or user_id, entity="user",
                     entity_id=user_id, detail={"full_name": full_name.strip(), "role": role},
                     t_wall=self.clock.wall())

    def _require_admin(self, actor: User) -> None:
        if actor.role != "admin":
            raise PermissionDenied(f"{actor.id} is {actor.role}: only an admin may do this")

    # -- login ---------------------------------------------------------------------------------
    def login(self, user_id: str, password: str, *, purpose: str = "login") -> User:
        """Check user id + password. Raises AuthError (wrong), AccountLockedError or
        PasswordExpiredError (right password, but it must be changed first)."""
        row = self.runner.run(lambda db: _row(db, user_id))
        wall = self.clock.wall()
        if row is not None and row["locked_utc"] is not None:
            until = row["locked_until_utc"]
            if until is None or parse_utc(until) > wall:
                self._record(lambda db: append_audit(
                    db, "auth.locked_attempt", user_id=user_id, entity="user", entity_id=user_id,
                    detail={"purpose": purpose}, t_wall=wall))
                when = "until an administrator unlocks it" if until is None else f"until {until}"
                raise AccountLockedError(f"account {user_id} is locked {when}")
        ok = False
        if row is not None and row["active"]:
            try:
                ok = self.hasher.verify(row["password_hash"], password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                ok = False
        if not ok:
            self._failed(user_id, row, purpose, wall)
        user = _user(row)
        rehash = self.hasher.check_needs_rehash(row["password_hash"])
        new_hash = self.hasher.hash(password) if rehash else None

        def success(db):
            db.conn.execute("UPDATE users SET failed_attempts = 0, locked_utc = NULL,"
                            " locked_until_utc = NULL WHERE id = ?", (user_id,))
            if new_hash:
                db.conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (new_hash, user_id))
            append_audit(db, f"auth.{purpose}", user_id=user_id, entity="user", entity_id=user_id,
                         t_wall=wall)
            return load_policy(db)
        policy = self.runner.run(success)
        if row["must_change"]:
            raise PasswordExpiredError(f"{user_id} must choose a new password", user)
        if policy.max_age_days:
            age = wall - parse_utc(row["password_changed_utc"])
            if age > timedelta(days=policy.max_age_days).total_seconds():
                raise PasswordExpiredError(
                    f"the password of {user_id} is older than {policy.max_age_days} days:"
                    " choose a new one", user)
        return user

    def _record(self, fn) -> None:
        self.runner.run(fn)

    def _failed(self, user_id: str, row: dict | None, purpose: str, wall: float):
        def write(db):
            policy = load_policy(db)
            append_audit(db, "auth.failed", user_id=user_id, entity="user", entity_id=user_id,
                         detail={"purpose": purpose, "known_user": row is not None}, t_wall=wall)
            if row is None:
                return None
            n, locked = db.conn.execute("SELECT failed_attempts, locked_utc FROM users WHERE id = ?",
                                        (user_id,)).fetchone()
            n = 1 if locked is not None else n + 1  # a lockout that has run out starts a new count
            if locked is not None:
                db.conn.execute("UPDATE users SET locked_utc = NULL, locked_until_utc = NULL"
                                " WHERE id = ?", (user_id,))
            db.conn.execute("UPDATE users SET failed_attempts = ? WHERE id = ?", (n, user_id))
            if n >= policy.max_failures:
                until = (utc_iso(wall + policy.lockout_minutes * 60) if policy.lockout_minutes
                         else None)
                db.conn.execute("UPDATE users SET locked_utc = ?, locked_until_utc = ? WHERE id = ?",
                                (utc_iso(wall), until, user_id))
                append_audit(db, "auth.lockout", user_id=user_id, entity="user", entity_id=user_id,
                             detail={"failures": n, "until": until}, t_wall=wall)
                return until or "admin"
            return None
        locked = self.runner.run(write)
        if locked is not None:
            when = "until an administrator unlocks it" if locked == "admin" else f"until {locked}"
            raise AccountLockedError(f"too many failed attempts: account {user_id} is locked {when}")
        raise AuthError("user id or password is wrong")

    def verify(self, user_id: str, password: str, *, purpose: str = "reauth") -> User:
        """Re-check credentials (signing, unlocking): same counting and lockout as login, but an
        expired password does not block it."""
        try:
            return self.login(user_id, password, purpose=purpose)
        except PasswordExpiredError as exc:
            return exc.user

    # -- passwords and accounts ----------------------------------------------------------------
    def change_password(self, user_id: str, old_password: str, new_password: str) -> None:
        """The user's own change. Their signing key is re-encrypted under the new password in the
        same transaction (or, if they have none, e.g. after a reset, a new key is enrolled)."""
        user = self.verify(user_id, old_password, purpose="password_check")
        self._set_password(user_id, new_password, actor_id=user_id, must_change=False,
                           key_step=lambda: self._key_for(user, old_password, new_password))

    def reset_password(self, actor: User, user_id: str, new_password: str) -> None:
        """Lost credentials: an admin sets a temporary password the user must change. The user's
        signing key cannot be unlocked any more (its password is lost): it is revoked, and the
        password the user chooses next gets a new key."""
        self._require_admin(actor)

        def revoke(db):
            for k in list_keys(db, user_id):
                if k.origin == "enrolled" and k.active:
                    revoke_key(db, k.kid, reason=f"password reset by {actor.id}",
                               by_user_id=actor.id)
        self._set_password(user_id, new_password, actor_id=actor.id, must_change=True,
                           key_step=lambda: revoke)

    def _key_for(self, user: User, old_password: str, new_password: str):
        """The signing-key part of a password change, prepared outside the write transaction
        (the key derivations are slow): returns what to write inside it, or None."""
        if not user.clinical:
            return None  # admins and auditors sign nothing

        def active(db):
            try:
                return load_key(db, user.id)
            except AuthError:
                return None
        encrypted = self.runner.run(active)
        if encrypted is None:
            key, t = new_key(user.id, user.full_name, user.role, new_password,
                             kdf_params=self.key_kdf), self._key_time()
            return lambda db: store_new_key(db, key, t_wall=t, by_user_id=user.id)
        try:
            unlocked = encrypted.unlock(old_password, purpose="change the password")
        except AuthError:
            # enrolled with a signing password of its own ('ketmonitor keys enrol'): it stays so
            kid = encrypted.info.kid
            return lambda db: append_audit(
                db, "key.password_kept", user_id=user.id, entity="signing_key", entity_id=kid,
                detail={"why": "the signing key has a password of its own, not the login password"},
                t_wall=self.clock.wall())
        wrapped = rewrap_key(unlocked, new_password, kdf_params=self.key_kdf)
        return lambda db: store_rewrapped(db, wrapped, t_wall=self.clock.wall())

    def _set_password(self, user_id: str, password: str, *, actor_id: str, must_change: bool,
                      key_step: Callable | None = None):
        policy = self.policy()
        policy.check(password, user_id)
        history = self.runner.run(lambda db: [r[0] for r in db.conn.execute(
            "SELECT password_hash FROM password_history WHERE user_id = ? ORDER BY rowid DESC"
            " LIMIT ?", (user_id, max(policy.history, 1)))])
        if not history:
            raise AuthError(f"no user {user_id!r}")
        for old in history[:policy.history]:
            try:
                if self.hasher.verify(old, password):
                    raise AuthError(f"password was used recently (last {policy.history} not allowed)")
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                pass
        pw_hash, now = self.hasher.hash(password), self._now()
        key_write = key_step() if key_step is not None else None  # after the checks, outside the write

        def write(db):
            db.conn.execute("UPDATE users SET password_hash = ?, password_changed_utc = ?,"
                            " must_change = ?, failed_attempts = 0, locked_utc = NULL,"
                            " locked_until_utc = NULL WHERE id = ?",
                            (pw_hash, now, int(must_change), user_id))
            db.conn.execute("INSERT INTO password_history (user_id, password_hash, t_utc)"
                            " VALUES (?,?,?)", (user_id, pw_hash, now))
            append_audit(db, "auth.password_reset" if must_change else "auth.password_change",
                         user_id=actor_id, entity="user", entity_id=user_id,
                         t_wall=self.clock.wall())
            if key_write is not None:
                key_write(db)
        self.runner.run(write)

    def unlock_account(self, actor: User, user_id: str) -> None:
        self._require_admin(actor)
        self._update_account(actor, user_id, "user.unlock",
                             "failed_attempts = 0, locked_utc = NULL, locked_until_utc = NULL", ())

    def set_active(self, actor: User, user_id: str, active: bool) -> None:
        self._require_admin(actor)
        if user_id == actor.id and not active:
            raise AuthError("an admin cannot deactivate their own account")
        self._update_account(actor, user_id, "user.activate" if active else "user.deactivate",
                             "active = ?", (int(active),))

    def set_role(self, actor: User, user_id: str, role: str) -> None:
        self._require_admin(actor)
        if role not in ROLES:
            raise AuthError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
        self._update_account(actor, user_id, "user.role", "role = ?", (role,), {"role": role})

    def _update_account(self, actor, user_id, action, assignment, params, detail=None):
        def write(db):
            old = _row(db, user_id)
            if old is None:
                raise AuthError(f"no user {user_id!r}")
            db.conn.execute(f"UPDATE users SET {assignment} WHERE id = ?", (*params, user_id))
            append_audit(db, action, user_id=actor.id, entity="user", entity_id=user_id,
                         detail={**(detail or {}), "was": {"role": old["role"],
                                                           "active": bool(old["active"])}},
                         t_wall=self.clock.wall())
        self.runner.run(write)

    # -- the inactivity lock -------------------------------------------------------------------
    def unlock_screen(self, lock: "InactivityLock", user_id: str, password: str, *,
                      session_id: str | None = None) -> "Unlock":
        """Unlock the controls with user id + password; another user taking over is a handover."""
        user = self.check_unlock(lock, user_id, password)
        return self.record_unlock(lock, user, session_id=session_id)

    def check_unlock(self, lock: "InactivityLock", user_id: str, password: str) -> User:
        """The slow half of ``unlock_screen`` (the password hash), safe on a worker thread: who may
        unlock, counted and audited like a login. Changes nothing about the lock."""
        user = self.verify(user_id, password, purpose="unlock")
        if user.id != lock.user_id and not user.clinical:
            raise PermissionDenied(f"{user.id} is {user.role}: only a nurse or physician may take"
                                   " over the controls")
        return user

    def record_unlock(self, lock: "InactivityLock", user: User, *,
                      session_id: str | None = None) -> "Unlock":
        """The quick half, on the thread that owns the lock (its ``on_change`` drives the screen):
        unlock for ``user`` (checked by ``check_unlock``) and record the unlock or handover."""
        result = lock.unlock(user.id, self.clock.monotonic())
        self.runner.run(lambda db: append_audit(
            db, "session.handover" if result.handover else "session.unlock", user_id=user.id,
            session_id=session_id, entity="user", entity_id=user.id,
            detail={"from": result.previous_user, "to": user.id,
                    "locked_for_s": round(result.locked_for, 1)}, t_wall=self.clock.wall()))
        return replace(result, user=user)


@dataclass(frozen=True)
class Unlock:
    previous_user: str | None
    user_id: str
    handover: bool
    locked_for: float
    user: User | None = None


class InactivityLock:
    """When the controls lock. Pure model, driven by the UI: ``touch`` on every input,
    ``poll`` on a timer. Locking hides no vitals and silences no alarm: it only blocks input.

    ``on_change(locked)`` is called when the state changes.
    """

    def __init__(self, timeout_s: float = 300.0, *, user_id: str | None = None,
                 on_change: Callable[[bool], None] | None = None, now: float = 0.0):
        if timeout_s <= 0:
            raise ConfigError("the inactivity timeout must be positive")
        self.timeout_s = float(timeout_s)
        self.user_id = user_id
        self.on_change = on_change
        self.locked = user_id is None
        self._last_activity = now
        self._locked_at = now if self.locked else None

    def touch(self, now: float) -> None:
        if not self.locked:
            self._last_activity = max(self._last_activity, now)

    def remaining(self, now: float) -> float:
        return 0.0 if self.locked else max(0.0, self.timeout_s - (now - self._last_activity))

    def poll(self, now: float) -> bool:
        """Lock if the timeout has passed; returns whether the controls are locked."""
        if not self.locked and now - self._last_activity >= self.timeout_s:
            self.lock(now)
        return self.locked

    def lock(self, now: float) -> None:
        if not self.locked:
            self.locked, self._locked_at = True, now
            if self.on_change:
                self.on_change(True)

    def unlock(self, user_id: str, now: float) -> Unlock:
        """Unlock for ``user_id`` (credentials already checked by the caller)."""
        previous = self.user_id
        locked_for = now - self._locked_at if self._locked_at is not None else 0.0
        handover = previous is not None and previous != user_id
        self.user_id, self._last_activity, self._locked_at = user_id, now, None
        was_locked, self.locked = self.locked, False
        if was_locked and self.on_change:
            self.on_change(False)
        return Unlock(previous, user_id, handover, locked_for)
