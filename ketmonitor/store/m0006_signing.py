"""Signing: user keys, signed session records, their signatures, and the triggers that seal them.

A record is stored with the exact bytes that were signed (``payload``); signatures are stored as the
base64url strings of their JWS objects, verbatim. Nothing here is ever updated or deleted: a
co-signature is a new ``record_signatures`` row and an addendum a new ``session_records`` row linked
to the record it amends by that record's payload SHA-256. Keys change only by being superseded
(``valid_to_utc``), revoked (``revoked_at_utc``, once) or re-encrypted under a new password.
"""

from ..signing.scope import protect_sealed_tables
from .schema import MIGRATIONS

_NO = "BEGIN SELECT RAISE(ABORT, '{msg}'); END;"


@MIGRATIONS(name="0006_signing")
def m0006_signing(db):
    db.executescript(
        """
        CREATE TABLE signing_keys (
            kid TEXT PRIMARY KEY,                     -- RFC 7638 JWK thumbprint of the public key
            user_id TEXT NOT NULL,
            printed_name TEXT NOT NULL,
            role TEXT NOT NULL,
            public_key BLOB NOT NULL,                 -- raw Ed25519 public key, 32 bytes
            private_key_enc BLOB,                     -- AES-256-GCM; NULL for keys imported from a keyring
            kdf TEXT,                                 -- JSON: KDF name, parameters, salt, cipher, nonce
            origin TEXT NOT NULL DEFAULT 'enrolled',  -- enrolled | imported
            created_utc TEXT NOT NULL,
            valid_from_utc TEXT NOT NULL,
            valid_to_utc TEXT,                        -- set when superseded by a rotation
            revoked_at_utc TEXT,
            revocation_reason TEXT,
            CHECK (origin IN ('enrolled', 'imported')),
            CHECK ((origin = 'enrolled') = (private_key_enc IS NOT NULL))
        );
        CREATE INDEX signing_keys_user ON signing_keys(user_id);

        CREATE TABLE session_records (
            record_id TEXT PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES sessions(id),
            kind TEXT NOT NULL CHECK (kind IN ('original', 'addendum')),
            amends_record_id TEXT REFERENCES session_records(record_id),
            amends_record_hash TEXT,                  -- payload SHA-256 of the amended record
            payload BLOB NOT NULL,                    -- the RFC 8785 bytes that were signed, verbatim
            payload_sha256 TEXT NOT NULL UNIQUE,
            created_utc TEXT NOT NULL,
            CHECK ((kind = 'original') = (amends_record_hash IS NULL))
        );
        CREATE UNIQUE INDEX session_records_one_original ON session_records(session_id)
            WHERE kind = 'original';
        CREATE INDEX session_records_session ON session_records(session_id);

        CREATE TABLE record_signatures (
            id INTEGER PRIMARY KEY,
            record_id TEXT NOT NULL REFERENCES session_records(record_id),
            idx INTEGER NOT NULL,                     -- position in the JWS "signatures" array
            protected TEXT NOT NULL,                  -- base64url JWS protected header, verbatim
            signature TEXT NOT NULL,                  -- base64url JWS signature, verbatim
            kid TEXT NOT NULL REFERENCES signing_keys(kid),
            signer_id TEXT NOT NULL,
            meaning TEXT NOT NULL CHECK (meaning IN ('authorship', 'review', 'approval',
                                                      'responsibility')),
            signed_utc TEXT NOT NULL,
            UNIQUE (record_id, idx),
            UNIQUE (record_id, signer_id, meaning)
        );
        """
        + "CREATE TRIGGER session_records_no_update BEFORE UPDATE ON session_records "
        + _NO.format(msg="session_records: a signed record is never altered")
        + "\nCREATE TRIGGER session_records_no_delete BEFORE DELETE ON session_records "
        + _NO.format(msg="session_records: a signed record is never deleted")
        + "\nCREATE TRIGGER record_signatures_no_update BEFORE UPDATE ON record_signatures "
        + _NO.format(msg="record_signatures: a signature is never altered")
        + "\nCREATE TRIGGER record_signatures_no_delete BEFORE DELETE ON record_signatures "
        + _NO.format(msg="record_signatures: a signature is never deleted")
        + "\nCREATE TRIGGER signing_keys_no_delete BEFORE DELETE ON signing_keys "
        + _NO.format(msg="signing_keys: keys are revoked, never deleted")
        + "\nCREATE TRIGGER signing_keys_fixed BEFORE UPDATE OF kid, user_id, printed_name, role,"
          " public_key, origin, created_utc, valid_from_utc ON signing_keys "
        + _NO.format(msg="signing_keys: the identity of a key never changes (rotate instead)")
        + "\nCREATE TRIGGER signing_keys_revoked_once BEFORE UPDATE OF revoked_at_utc,"
          " revocation_reason ON signing_keys WHEN OLD.revoked_at_utc IS NOT NULL "
        + _NO.format(msg="signing_keys: a revocation is final")
        + "\nCREATE TRIGGER signing_keys_superseded_once BEFORE UPDATE OF valid_to_utc ON signing_keys"
          " WHEN OLD.valid_to_utc IS NOT NULL "
        + _NO.format(msg="signing_keys: a superseded key stays superseded")
        + "\nCREATE TRIGGER signing_keys_imported_public BEFORE UPDATE OF private_key_enc, kdf"
          " ON signing_keys WHEN OLD.private_key_enc IS NULL "
        + _NO.format(msg="signing_keys: an imported key has no private part")
    )
    protect_sealed_tables(db.conn)
