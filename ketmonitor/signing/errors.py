"""Typed verification failures. Each names what failed: the record, the signature (index and signer),
the waveform chunk, the table row or the audit row. Verification raises; it never returns False.

When several things fail, the first is raised and ``failures`` on it lists them all.
"""

from __future__ import annotations

from ..audit import AuditChainError
from ..errors import VerificationError

__all__ = ["VerificationError", "AuditChainError", "RecordFormatError", "SignatureError",
           "InvalidSignatureError", "UnknownKeyError", "HeaderMismatchError", "KeyRevokedError",
           "KeyNotValidError", "PayloadDigestError", "RecordLinkError", "RowMismatchError",
           "ChunkDigestError", "AuditLinkError"]


class RecordFormatError(VerificationError):
    """The file or stored record is not a well-formed ketmonitor JWS record."""

    def __init__(self, message: str, *, record_id: str | None = None):
        super().__init__(message)
        self.record_id = record_id


class SignatureError(VerificationError):
    """Base for failures of one signature; carries record id, signature index, kid and signer."""

    def __init__(self, message: str, *, record_id: str | None, index: int, kid: str | None = None,
                 signer_id: str | None = None):
        super().__init__(message)
        self.record_id, self.index, self.kid, self.signer_id = record_id, index, kid, signer_id


class InvalidSignatureError(SignatureError):
    """The Ed25519 signature does not match the protected header and payload."""


class UnknownKeyError(SignatureError):
    """The signature's key id is not in the keyring."""


class HeaderMismatchError(SignatureError):
    """The protected header claims a signer, name or role that the keyring does not give its key,
    or is malformed."""


class KeyRevokedError(SignatureError):
    """The signature was made at or after its key's revocation."""


class KeyNotValidError(SignatureError):
    """The signature was made outside its key's validity (before valid_from or after rotation)."""


class PayloadDigestError(VerificationError):
    """A stored record's bytes no longer match their recorded SHA-256."""

    def __init__(self, message: str, *, record_id: str):
        super().__init__(message)
        self.record_id = record_id


class RecordLinkError(VerificationError):
    """An addendum's link to the record it amends is broken, or stored columns contradict the payload."""

    def __init__(self, message: str, *, record_id: str):
        super().__init__(message)
        self.record_id = record_id


class RowMismatchError(VerificationError):
    """A database row of a sealed session differs from, is missing from, or is not in the record."""

    def __init__(self, message: str, *, record_id: str, table: str, key=None):
        super().__init__(message)
        self.record_id, self.table, self.key = record_id, table, key


class ChunkDigestError(RowMismatchError):
    """A waveform chunk's samples no longer hash to the digest the record commits to."""

    def __init__(self, message: str, *, record_id: str, chunk_id: int):
        super().__init__(message, record_id=record_id, table="waveform_chunks", key=chunk_id)
        self.chunk_id = chunk_id


class AuditLinkError(AuditChainError):
    """The audit trail disagrees with a signed record (its head, or a signing entry is missing)."""

    def __init__(self, message: str, *, seq: int | None, record_id: str | None = None):
        super().__init__(message, seq=seq)
        self.record_id = record_id
