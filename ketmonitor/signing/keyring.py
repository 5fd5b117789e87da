"""The clinic keyring: public keys with their user id, printed name, role and validity.

Exported as a JWK Set (RFC 7517) of OKP Ed25519 keys (RFC 8037) whose ``kid`` is the RFC 7638
thumbprint; the ketmonitor facts ride as extra members (``user_id``, ``printed_name``, ``role``,
``valid_from``, ``valid_to``, ``revoked_at``), which standard JOSE libraries ignore. Importing checks
every ``kid`` against its key, so a keyring cannot map a key id to a different key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..audit import append_audit
from ..clock import parse_utc
from ..errors import ConfigError
from ._db import write_transaction
from .jws import b64url_decode, b64url_encode, strict_json
from .keys import KeyInfo, jwk_thumbprint, list_keys


@dataclass(frozen=True)
class Keyring:
    keys: tuple[KeyInfo, ...]

    def get(self, kid: str) -> KeyInfo | None:
        for k in self.keys:
            if k.kid == kid:
                return k
        return None

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def from_db(cls, db) -> "Keyring":
        return cls(tuple(list_keys(db)))

    def to_jwks(self) -> dict:
        out = []
        for k in self.keys:
            jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(k.public_key), "kid": k.kid,
                   "use": "sig", "alg": "EdDSA", "user_id": k.user_id,
                   "printed_name": k.printed_name, "role": k.role, "valid_from": k.valid_from}
            if k.valid_to:
                jwk["valid_to"] = k.valid_to
            if k.revoked_at:
                jwk["revoked_at"] = k.revoked_at
                if k.revocation_reason:
                    jwk["revocation_reason"] = k.revocation_reason
            out.append(jwk)
        return {"keys": out}

    def to_json(self) -> str:
        return json.dumps(self.to_jwks(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_jwks(cls, data: bytes | str | dict, *, source: str = "keyring") -> "Keyring":
        """Parse a JWK Set; ConfigError naming the bad key otherwise. Never mutates ``data``."""
        try:
            obj = strict_json(data) if isinstance(data, (bytes, str)) else data
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{source} is not JSON ({exc})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("keys"), list):
            raise ConfigError(f"{source} is not a JWK Set (expected an object with a 'keys' array)")
        keys = []
        for i, jwk in enumerate(obj["keys"]):
            where = f"{source}: key {i}"
            if not isinstance(jwk, dict):
                raise ConfigError(f"{where} is not an object")
            if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
                continue  # not ours to use; a JWK Set may hold other keys
            try:
                public = b64url_decode(jwk.get("x", ""))
            except ValueError:
                raise ConfigError(f"{where}: 'x' is not base64url") from None
            if len(public) != 32:
                raise ConfigError(f"{where}: 'x' is not a 32-byte Ed25519 key")
            kid = jwk.get("kid")
            if kid != jwk_thumbprint(public):
                raise ConfigError(f"{where}: kid {kid!r} is not the RFC 7638 thumbprint of its key")
            for member in ("user_id", "printed_name", "role", "valid_from"):
                if not isinstance(jwk.get(member), str) or not jwk[member]:
                    raise ConfigError(f"{where} ({kid}): lacks '{member}'")
            for member in ("valid_from", "valid_to", "revoked_at"):
                _check_time(jwk, member, f"{where} ({kid})")
            if not isinstance(jwk.get("revocation_reason", ""), str):
                raise ConfigError(f"{where} ({kid}): 'revocation_reason' is not a string")
            keys.append(KeyInfo(kid, jwk["user_id"], jwk["printed_name"], jwk["role"], public,
                                jwk["valid_from"], jwk.get("valid_to"), jwk.get("revoked_at"),
                                jwk.get("revocation_reason"), "imported"))
        return cls(tuple(keys))


def _check_time(jwk: dict, member: str, where: str) -> None:
    """A validity time must be ISO 8601 UTC with a zone: verification compares signing times
    with it, and a time it cannot read (or would read in the local zone) decides nothing."""
    value = jwk.get(member)
    if value is None:  # absent (or null): the key was not superseded / revoked
        return
    try:
        parse_utc(value)
    except ValueError:
        raise ConfigError(f"{where}: '{member}' {value!r} is not an ISO 8601 UTC time "
                          "(e.g. 2026-01-01T09:00:00.000Z)") from None


def import_keyring(db, keyring: Keyring, *, by_user_id: str | None = None) -> int:
    """Store a keyring's public keys for verification on this machine; returns how many were new.

    Known keys take on a revocation or supersession the keyring carries; nothing else changes.
    """
    added = 0
    with write_transaction(db) as conn:
        for k in keyring.keys:
            row = conn.execute("SELECT user_id, public_key, valid_to_utc, revoked_at_utc"
                               " FROM signing_keys WHERE kid = ?", (k.kid,)).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO signing_keys (kid, user_id, printed_name, role, public_key, origin,"
                    " created_utc, valid_from_utc, valid_to_utc, revoked_at_utc, revocation_reason)"
                    " VALUES (?,?,?,?,?,'imported',?,?,?,?,?)",
                    (k.kid, k.user_id, k.printed_name, k.role, k.public_key, k.valid_from,
                     k.valid_from, k.valid_to, k.revoked_at, k.revocation_reason))
                added += 1
                continue
            if row[0] != k.user_id:
                raise ConfigError(f"keyring key {k.kid} claims user {k.user_id}, but this database "
                                  f"has it for {row[0]}")
            if k.valid_to and row[2] is None:
                conn.execute("UPDATE signing_keys SET valid_to_utc = ? WHERE kid = ?",
                             (k.valid_to, k.kid))
            if k.revoked_at and row[3] is None:
                conn.execute("UPDATE signing_keys SET revoked_at_utc = ?, revocation_reason = ?"
                             " WHERE kid = ?", (k.revoked_at, k.revocation_reason, k.kid))
        append_audit(db, "keyring.imported", user_id=by_user_id, entity="keyring",
                     detail={"keys": len(keyring), "added": added})
    return added
