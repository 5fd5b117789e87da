"""Signed, tamper-evident session records (21 CFR Part 11).

A session record is canonical JSON (RFC 8785) signed as a JWS in General JSON Serialization
(RFC 7515) with EdDSA over Ed25519 (RFC 8037). See docs/signing.md for the format and for verifying
a record with any standard JOSE library.
"""

from .errors import (AuditChainError, AuditLinkError, ChunkDigestError, HeaderMismatchError,
                     InvalidSignatureError, KeyNotValidError, KeyRevokedError, PayloadDigestError,
                     RecordFormatError, RecordLinkError, RowMismatchError, SignatureError,
                     UnknownKeyError, VerificationError)
from .jws import MEANINGS, JwsDocument, JwsSignature
from .keyring import Keyring, import_keyring
from .keys import (EncryptedKey, KeyInfo, UnlockedKey, change_key_password, current_key, enrol_key,
                   get_key, list_keys, load_key, record_auth_failure, revoke_key, rotate_key,
                   unlock_key)
from .service import (SignatureInfo, SignedRecord, add_addendum, cosign, is_sealed, list_records,
                      original_record_id, record_bytes, record_document, seal_session, write_record)
from .verification import (DbVerification, RecordVerification, verify_db, verify_record,
                           verify_stored_record)

__all__ = [
    "MEANINGS", "JwsDocument", "JwsSignature", "Keyring", "import_keyring", "KeyInfo",
    "EncryptedKey", "UnlockedKey", "load_key", "record_auth_failure",
    "change_key_password", "current_key", "enrol_key", "get_key", "list_keys", "revoke_key",
    "rotate_key", "unlock_key", "SignatureInfo", "SignedRecord", "add_addendum", "cosign",
    "is_sealed", "list_records", "original_record_id", "record_bytes", "record_document",
    "seal_session", "write_record", "DbVerification", "RecordVerification", "verify_db",
    "verify_record", "verify_stored_record", "VerificationError", "AuditChainError",
    "AuditLinkError", "ChunkDigestError", "HeaderMismatchError", "InvalidSignatureError",
    "KeyNotValidError", "KeyRevokedError", "PayloadDigestError", "RecordFormatError",
    "RecordLinkError", "RowMismatchError", "SignatureError", "UnknownKeyError",
]
