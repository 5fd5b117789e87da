"""Per-user Ed25519 signing keys, encrypted at rest under the user's password.

The private key is encrypted with AES-256-GCM under a key derived from the password with Argon2id
(RFC 9106 low-memory profile by default); the KDF parameters, salt and nonce are stored beside it, and
the key id and user id are bound in as associated data, so a ciphertext moved to another row does not
decrypt. The private key exists unencrypted only in memory, for one signing.

Functions take (user_id, printed_name, role, password) and do not depend on the user-management
module. ``password`` is a string or a callback ``(prompt) -> str``: the core asks for the secret
through it and never touches the UI.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..audit import append_audit
from ..clock import parse_utc, utc_iso
from ..errors import AuthError, WorkflowError
from ._db import write_transaction
from .jws import b64url_decode, b64url_encode

Secret = str | Callable[[str], str]

# RFC 9106 "second recommended option" (low memory): t=3, m=64 MiB, p=4.
DEFAULT_KDF = {"t": 3, "m": 65536, "p": 4}
_RAW = serialization.Encoding.Raw


def jwk_thumbprint(public_raw: bytes) -> str:
    """RFC 7638 thumbprint of the OKP public JWK: the key id (``kid``)."""
    members = ('{"crv":"Ed25519","kty":"OKP","x":"' + b64url_encode(public_raw) + '"}').encode()
    return b64url_encode(hashlib.sha256(members).digest())


@dataclass(frozen=True)
class KeyInfo:
    kid: str
    user_id: str
    printed_name: str
    role: str
    public_key: bytes  # raw 32 bytes
    valid_from: str
    valid_to: str | None = None
    revoked_at: str | None = None
    revocation_reason: str | None = None
    origin: str = "enrolled"

    @property
    def active(self) -> bool:
        return self.valid_to is None and self.revoked_at is None

    def public(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(self.public_key)


_COLS = ("kid, user_id, printed_name, role, public_key, valid_from_utc, valid_to_utc, revoked_at_utc,"
         " revocation_reason, origin")


def _info(row) -> KeyInfo:
    return KeyInfo(row[0], row[1], row[2], row[3], bytes(row[4]), row[5], row[6], row[7], row[8],
                   row[9])


def list_keys(db, user_id: str | None = None) -> list[KeyInfo]:
    sql = f"SELECT {_COLS} FROM signing_keys"
    rows = (db.conn.execute(sql + " WHERE user_id = ? ORDER BY valid_from_utc, kid", (user_id,))
            if user_id is not None else db.conn.execute(sql + " ORDER BY user_id, valid_from_utc, kid"))
    return [_info(r) for r in rows]


def get_key(db, kid: str) -> KeyInfo:
    row = db.conn.execute(f"SELECT {_COLS} FROM signing_keys WHERE kid = ?", (kid,)).fetchone()
    if row is None:
        raise WorkflowError(f"no signing key {kid}")
    return _info(row)


def current_key(db, user_id: str) -> KeyInfo:
    """The user's active (neither superseded nor revoked) enrolled key; AuthError if none."""
    row = db.conn.execute(
        f"SELECT {_COLS} FROM signing_keys WHERE user_id = ? AND origin = 'enrolled'"
        " AND valid_to_utc IS NULL AND revoked_at_utc IS NULL", (user_id,)).fetchone()
    if row is None:
        raise AuthError(f"user {user_id} has no active signing key (a nurse's or physician's "
                        "comes with the account, or with the next password after a reset; "
                        "'ketmonitor keys enrol' makes one otherwise)")
    return _info(row)


def _ask(password: Secret, prompt: str) -> str:
    secret = password(prompt) if callable(password) else password
    if not isinstance(secret, str) or not secret:
        raise AuthError("no password given")
    return secret


def _derive(secret: str, kdf: dict) -> bytes:
    return hash_secret_raw(secret.encode("utf-8"), b64url_decode(kdf["salt"]),
                           time_cost=int(kdf["t"]), memory_cost=int(kdf["m"]),
                           parallelism=int(kdf["p"]), hash_len=32, type=Type.ID)


def _aad(kid: str, user_id: str) -> bytes:
    return f"ketmonitor signing key|{kid}|{user_id}".encode()


def _encrypt(private: Ed25519PrivateKey, secret: str, kid: str, user_id: str,
             params: dict | None) -> tuple[bytes, str]:
    p = dict(DEFAULT_KDF, **(params or {}))
    kdf = {"kdf": "argon2id", "v": 19, "t": p["t"], "m": p["m"], "p": p["p"],
           "salt": b64url_encode(os.urandom(16)), "cipher": "A256GCM",
           "nonce": b64url_encode(os.urandom(12))}
    raw = private.private_bytes(_RAW, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    ct = AESGCM(_derive(secret, kdf)).encrypt(b64url_decode(kdf["nonce"]), raw, _aad(kid, user_id))
    return ct, json.dumps(kdf, sort_keys=True)


@dataclass(frozen=True)
class UnlockedKey:
    """A decrypted key, for one signing; not stored anywhere."""

    info: KeyInfo
    private_key: Ed25519PrivateKey


def _now(t_wall: float | None) -> str:
    return utc_iso(time.time() if t_wall is None else t_wall)


@dataclass(frozen=True)
class EncryptedKey:
    """A user's active key as stored: public facts plus the encrypted private part.

    Load it inside a transaction (``load_key``), then ``unlock`` it outside any transaction, on the
    thread that holds the password: the key derivation takes a noticeable fraction of a second and
    must not run on the store writer's thread, and a failure writes nothing.
    """

    info: KeyInfo
    ciphertext: bytes = field(repr=False)
    kdf: dict = field(repr=False)

    def unlock(self, password: Secret, *, purpose: str = "sign") -> UnlockedKey:
        """Decrypt; AuthError on a wrong password (nothing is written: the caller audits it)."""
        info = self.info
        secret = _ask(password, f"Password for {info.printed_name} ({info.user_id}) to {purpose}")
        try:
            raw = AESGCM(_derive(secret, self.kdf)).decrypt(
                b64url_decode(self.kdf["nonce"]), self.ciphertext, _aad(info.kid, info.user_id))
        except InvalidTag:
            raise AuthError(f"wrong password for {info.user_id}: cannot unlock the signing key"
                            ) from None
        private = Ed25519PrivateKey.from_private_bytes(raw)
        if private.public_key().public_bytes(_RAW, serialization.PublicFormat.Raw) != info.public_key:
            raise AuthError(f"signing key {info.kid} of {info.user_id} is damaged: it does not "
                            "match its public key")
        return UnlockedKey(info, private)


def load_key(db, user_id: str) -> EncryptedKey:
    """The user's active key, still encrypted; AuthError if the user has none."""
    info = current_key(db, user_id)
    enc, kdf_text = db.conn.execute(
        "SELECT private_key_enc, kdf FROM signing_keys WHERE kid = ?", (info.kid,)).fetchone()
    return EncryptedKey(info, bytes(enc), json.loads(kdf_text))


def record_auth_failure(db, user_id: str, kid: str | None, purpose: str) -> None:
    """Audit a failed unlock (11.300: attempted misuse detected and reported)."""
    with write_transaction(db):
        append_audit(db, "signing.auth_failed", user_id=user_id, entity="signing_key",
                     entity_id=kid, detail={"purpose": purpose})


def unlock_key(db, user_id: str, password: Secret, *, purpose: str = "sign") -> UnlockedKey:
    """Load and decrypt the user's active key in one call; a wrong password is audited and raises
    AuthError. (Inside a caller's transaction the audit row shares that transaction's fate: use
    ``load_key`` + ``EncryptedKey.unlock`` there and audit the failure separately.)"""
    key = load_key(db, user_id)
    try:
        return key.unlock(password, purpose=purpose)
    except AuthError:
        record_auth_failure(db, user_id, key.info.kid, purpose)
        raise


def check_current(db, key: UnlockedKey) -> None:
    """AuthError unless ``key`` is still its user's active key (not rotated or revoked since)."""
    if current_key(db, key.info.user_id).kid != key.info.kid:
        raise AuthError(f"signing key {key.info.kid} of {key.info.user_id} is no longer active")


@dataclass(frozen=True)
class NewKey:
    """A key pair made and encrypted, not yet stored: ``new_key`` runs the slow key derivation
    outside any transaction, ``store_new_key`` writes it inside one (e.g. with the account)."""

    kid: str
    user_id: str
    printed_name: str
    role: str
    public_key: bytes
    ciphertext: bytes = field(repr=False)
    kdf: str = field(repr=False)


def _check_identity(user_id, printed_name, role):
    for what, value in (("user id", user_id), ("printed name", printed_name), ("role", role)):
        if not isinstance(value, str) or not value.strip():
            raise WorkflowError(f"a signing key needs a {what}")


def new_key(user_id: str, printed_name: str, role: str, password: Secret, *,
            kdf_params: dict | None = None) -> NewKey:
    """Generate an Ed25519 key pair and encrypt its private half under ``password``."""
    _check_identity(user_id, printed_name, role)
    secret = _ask(password, f"Choose the signing password for {printed_name} ({user_id})")
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(_RAW, serialization.PublicFormat.Raw)
    kid = jwk_thumbprint(public)
    ct, kdf = _encrypt(private, secret, kid, user_id, kdf_params)
    return NewKey(kid, user_id, printed_name, role, public, ct, kdf)


def _active_kid(conn, user_id: str) -> str | None:
    row = conn.execute("SELECT kid FROM signing_keys WHERE user_id = ? AND origin = 'enrolled'"
                       " AND valid_to_utc IS NULL AND revoked_at_utc IS NULL", (user_id,)).fetchone()
    return row[0] if row else None


def store_new_key(db, key: NewKey, *, t_wall: float | None = None, by_user_id: str | None = None,
                  action: str = "key.enrolled", detail: dict | None = None) -> KeyInfo:
    """Store a key made by ``new_key`` as the user's active key; WorkflowError if one is active."""
    with write_transaction(db) as conn:
        existing = _active_kid(conn, key.user_id)
        if existing:
            raise WorkflowError(f"user {key.user_id} already has an active signing key {existing}; "
                                "rotate it instead")
        now = _now(t_wall)
        conn.execute(
            "INSERT INTO signing_keys (kid, user_id, printed_name, role, public_key, private_key_enc,"
            " kdf, origin, created_utc, valid_from_utc) VALUES (?,?,?,?,?,?,?,'enrolled',?,?)",
            (key.kid, key.user_id, key.printed_name, key.role, key.public_key, key.ciphertext,
             key.kdf, now, now))
        append_audit(db, action, user_id=by_user_id or key.user_id, entity="signing_key",
                     entity_id=key.kid, detail={"user_id": key.user_id,
                                                "printed_name": key.printed_name,
                                                "role": key.role, **(detail or {})}, t_wall=t_wall)
    return KeyInfo(key.kid, key.user_id, key.printed_name, key.role, key.public_key, now)


def enrol_key(db, user_id: str, printed_name: str, role: str, password: Secret, *,
              kdf_params: dict | None = None, t_wall: float | None = None,
              by_user_id: str | None = None) -> KeyInfo:
    """Create the user's Ed25519 key pair; the private key is stored only encrypted."""
    existing = _active_kid(db.conn, user_id)  # refuse before the slow key derivation
    if existing:
        raise WorkflowError(f"user {user_id} already has an active signing key {existing}; "
                            "rotate it instead")
    key = new_key(user_id, printed_name, role, password, kdf_params=kdf_params)
    return store_new_key(db, key, t_wall=t_wall, by_user_id=by_user_id)


def rotate_key(db, user_id: str, password: Secret, *, printed_name: str | None = None,
               role: str | None = None, kdf_params: dict | None = None,
               t_wall: float | None = None, by_user_id: str | None = None) -> KeyInfo:
    """Replace the active key with a new one (also how a new name or role is taken on).

    The current password must unlock the old key; the new key is protected by the same password.
    The old key's validity ends (``valid_to``) at the rotation: signatures it made before keep
    verifying and say so; it signs nothing afterwards.
    """
    old = unlock_key(db, user_id, password, purpose="rotate the signing key").info
    name, new_role = printed_name or old.printed_name, role or old.role
    key = new_key(user_id, name, new_role, password, kdf_params=kdf_params)
    with write_transaction(db) as conn:
        if _active_kid(conn, user_id) != old.kid:
            raise AuthError(f"signing key {old.kid} of {user_id} changed during the rotation")
        conn.execute("UPDATE signing_keys SET valid_to_utc = ? WHERE kid = ?", (_now(t_wall),
                                                                             old.kid))
        info = store_new_key(db, key, t_wall=t_wall, by_user_id=by_user_id or user_id,
                             action="key.rotated", detail={"previous_kid": old.kid})
    return info


def revoke_key(db, kid: str, *, reason: str, by_user_id: str,
               t_wall: float | None = None) -> KeyInfo:
    """Revoke a key (lost password, compromise, departure). Final; signatures made before still
    verify and say so, signatures made at or after the revocation time do not. ``by_user_id``:
    who revoked it, for the audit trail (required)."""
    if not reason or not reason.strip():
        raise WorkflowError("a revocation needs a reason")
    if not isinstance(by_user_id, str) or not by_user_id.strip():
        raise WorkflowError("a revocation must say who revokes the key")
    with write_transaction(db) as conn:
        info = get_key(db, kid)
        if info.revoked_at is not None:
            raise WorkflowError(f"key {kid} was already revoked at {info.revoked_at}")
        now = _now(t_wall)
        conn.execute("UPDATE signing_keys SET revoked_at_utc = ?, revocation_reason = ? WHERE kid = ?",
                     (now, reason, kid))
        append_audit(db, "key.revoked", user_id=by_user_id, entity="signing_key", entity_id=kid,
                     detail={"user_id": info.user_id, "reason": reason, "revoked_at": now},
                     t_wall=t_wall)
    return get_key(db, kid)


@dataclass(frozen=True)
class Rewrapped:
    """An active key's private half encrypted under a new password, not yet stored."""

    info: KeyInfo
    ciphertext: bytes = field(repr=False)
    kdf: str = field(repr=False)


def rewrap_key(key: UnlockedKey, new_password: Secret, *,
               kdf_params: dict | None = None) -> Rewrapped:
    """Encrypt an unlocked key under a new password (the slow derivation; no database)."""
    secret = _ask(new_password, f"New signing password for {key.info.user_id}")
    ct, kdf = _encrypt(key.private_key, secret, key.info.kid, key.info.user_id, kdf_params)
    return Rewrapped(key.info, ct, kdf)


def store_rewrapped(db, key: Rewrapped, *, t_wall: float | None = None) -> KeyInfo:
    """Replace the stored ciphertext (in the caller's transaction, e.g. with the password change);
    AuthError if the key is no longer the user's active one."""
    info = key.info
    with write_transaction(db) as conn:
        if _active_kid(conn, info.user_id) != info.kid:
            raise AuthError(f"signing key {info.kid} of {info.user_id} is no longer active")
        conn.execute("UPDATE signing_keys SET private_key_enc = ?, kdf = ? WHERE kid = ?",
                     (key.ciphertext, key.kdf, info.kid))
        append_audit(db, "key.password_changed", user_id=info.user_id, entity="signing_key",
                     entity_id=info.kid, t_wall=t_wall)
    return info


def change_key_password(db, user_id: str, old_password: Secret, new_password: Secret, *,
                        kdf_params: dict | None = None) -> KeyInfo:
    """Re-encrypt the active key under a new password (``Authenticator.change_password`` does
    this with the login password, in the same transaction)."""
    unlocked = unlock_key(db, user_id, old_password, purpose="change the signing password")
    return store_rewrapped(db, rewrap_key(unlocked, new_password, kdf_params=kdf_params))


def key_valid_at(info: KeyInfo, signed_at: str) -> str | None:
    """None when ``info`` may sign at ``signed_at``; otherwise why not (for error messages)."""
    t = parse_utc(signed_at)
    if t < parse_utc(info.valid_from):
        return f"before the key was valid (from {info.valid_from})"
    if info.revoked_at is not None and t >= parse_utc(info.revoked_at):
        return f"at or after the key's revocation at {info.revoked_at}"
    if info.valid_to is not None and t >= parse_utc(info.valid_to):
        return f"after the key was superseded at {info.valid_to}"
    return None
