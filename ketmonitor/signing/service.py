"""Sealing, co-signing and amending session records.

Each signing asks for the signer's password again (through ``password``: a string or a callback
``(prompt) -> str``), decrypts the key for that one signature, and writes the record, its signature
and the audit entries in one transaction. ``password`` may instead be an ``UnlockedKey`` the caller
decrypted itself (``load_key`` in a transaction, then ``EncryptedKey.unlock`` on the thread holding
the password): that is how to sign through a StoreWriter without running the key derivation or a
password callback on the writer thread. Nothing signed is altered afterwards: a co-signature is a
new signature row over the stored payload bytes, and an addendum is a new signed record linked by the
SHA-256 of the record it amends.
"""

from __future__ import annotations

import gc
import hashlib
import os
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import rfc8785

from ..audit import append_audit, audit_head
from ..clock import utc_iso
from ..errors import AuthError, StoreError, WorkflowError
from ._db import stored_bytes, write_transaction
from .canonical import canonical_json
from .evidence import refuse_if_deleted
from .jws import (MEANINGS, JwsDocument, JwsSignature, b64url_bytes, make_header,
                  sign)
from .keys import Secret, UnlockedKey, check_current, key_valid_at, unlock_key
from .record import build_addendum, build_session_record


@dataclass(frozen=True)
class SignatureInfo:
    record_id: str
    index: int
    kid: str
    signer_id: str
    printed_name: str
    role: str
    meaning: str
    signed_at: str
    note: str | None = None  # e.g. "signed before revocation at ..."

    def describe(self) -> str:
        """Part 11 §11.50: printed name, date and time, and meaning."""
        text = (f"signature {self.index}: {self.printed_name} ({self.role}, {self.signer_id}) — "
                f"{self.meaning} — {self.signed_at} — key {self.kid}")
        return f"{text} — {self.note}" if self.note else text


@dataclass(frozen=True)
class SignedRecord:
    record_id: str
    session_id: str
    kind: str
    payload_sha256: str
    created_utc: str
    amends_record_id: str | None
    signatures: tuple[SignatureInfo, ...]


@contextmanager
def _no_gc_pauses():
    """Hold off the cyclic garbage collector while a record is built and serialised.

    A 2-hour record is half a million plain values in some 60,000 row tuples; the collector finds
    nothing to free in them but traverses them again and again as they are made. Reference counting
    still frees everything as usual, and the collector runs again afterwards. Only re-enables what
    it disabled (another caller may have turned it off).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _canonical(record: dict) -> bytes:
    try:
        return canonical_json(record)
    except rfc8785.CanonicalizationError as exc:
        raise StoreError(f"record {record.get('record_id')} cannot be canonicalised: {exc}") from None


def _signature_digest(sig: JwsSignature) -> str:
    return hashlib.sha256(sig.signature.encode("ascii")).hexdigest()


def _sign_and_store(db, record_id: str, payload_b64: bytes, index: int, key: UnlockedKey,
                    meaning: str, now: str, session_id: str) -> SignatureInfo:
    k = key.info
    why = key_valid_at(k, now)
    if why is not None:  # e.g. a simulated clock passed as the signing time
        raise WorkflowError(f"cannot sign at {now}: that is {why}")
    header = make_header(kid=k.kid, signer_id=k.user_id, printed_name=k.printed_name, role=k.role,
                         meaning=meaning, signed_at=now)
    sig = sign(payload_b64, header, key.private_key)
    try:
        db.conn.execute(
            "INSERT INTO record_signatures (record_id, idx, protected, signature, kid, signer_id,"
            " meaning, signed_utc) VALUES (?,?,?,?,?,?,?,?)",
            (record_id, index, sig.protected, sig.signature, k.kid, k.user_id, meaning, now))
    except Exception as exc:
        if "UNIQUE" in str(exc):
            raise WorkflowError(f"{k.user_id} has already signed record {record_id} for {meaning}") \
                from None
        raise
    append_audit(db, "record.signed", user_id=k.user_id, session_id=session_id,
                 entity="session_record", entity_id=record_id,
                 detail={"index": index, "kid": k.kid, "meaning": meaning, "signed_at": now,
                         "signature_sha256": _signature_digest(sig)})
    return SignatureInfo(record_id, index, k.kid, k.user_id, k.printed_name, k.role, meaning, now)


def _signer(db, user_id: str, password: Secret | UnlockedKey, purpose: str,
            meaning: str) -> UnlockedKey:
    if meaning not in MEANINGS:
        raise WorkflowError(f"the meaning of a signature is one of {', '.join(MEANINGS)}, "
                            f"not {meaning!r}")
    if isinstance(password, UnlockedKey):
        if password.info.user_id != user_id:
            raise AuthError(f"the unlocked key belongs to {password.info.user_id}, not {user_id}")
        return password
    return unlock_key(db, user_id, password, purpose=purpose)


def _now(t_wall: float | None) -> str:
    """The signing time: real wall-clock time (UTC) unless a test pins it; never simulated time."""
    return utc_iso(time.time() if t_wall is None else t_wall)


def original_record_id(db, session_id: str) -> str | None:
    row = db.conn.execute("SELECT record_id FROM session_records WHERE session_id = ?"
                          " AND kind = 'original'", (session_id,)).fetchone()
    return row[0] if row else None


def is_sealed(db, session_id: str) -> bool:
    return original_record_id(db, session_id) is not None


def seal_session(db, session_id: str, user_id: str, password: Secret, *,
                 meaning: str = "authorship", t_wall: float | None = None,
                 protocol: dict | None = None) -> SignedRecord:
    """Build, canonicalise and sign the record of an ended session; its rows are sealed from now on.

    The mechanism, not the rules: who may sign which session for what meaning is
    ``signing.rules.sign_record``, the function every signing path of the application calls. This
    refuses what no one may sign: a session not ended, already signed, or whose audit trail records
    a record the database no longer holds (evidence.py). ``protocol``: the definition in force
    (``Protocol.raw``), carried in the record.
    """
    key = _signer(db, user_id, password, f"sign the record of session {session_id}",
                  meaning)
    with write_transaction(db) as conn:
        check_current(db, key)
        row = conn.execute("SELECT ended_utc FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            raise WorkflowError(f"no session {session_id}")
        if row[0] is None:
            raise WorkflowError(f"session {session_id} has not ended; end it before signing")
        existing = original_record_id(db, session_id)
        if existing:
            raise WorkflowError(f"session {session_id} is already signed (record {existing}); "
                                "co-sign it or add an addendum")
        refuse_if_deleted(db, session_id)  # its record was deleted: never sign the rows again
        now = _now(t_wall)
        record_id = str(uuid.uuid4())
        with _no_gc_pauses():
            payload = _canonical(build_session_record(db, session_id, record_id=record_id,
                                                      created_utc=now, protocol=protocol))
        digest = hashlib.sha256(payload).hexdigest()
        conn.execute("INSERT INTO session_records (record_id, session_id, kind, payload,"
                     " payload_sha256, created_utc) VALUES (?,?,'original',?,?,?)",
                     (record_id, session_id, payload, digest, now))
        append_audit(db, "record.sealed", user_id=user_id, session_id=session_id,
                     entity="session_record", entity_id=record_id,
                     detail={"kind": "original", "payload_sha256": digest, "bytes": len(payload)})
        sig = _sign_and_store(db, record_id, b64url_bytes(payload), 0, key, meaning, now, session_id)
        conn.execute("UPDATE sessions SET status = 'signed' WHERE id = ?", (session_id,))
    return SignedRecord(record_id, session_id, "original", digest, now, None, (sig,))


def _load(db, record_id: str):
    row = db.conn.execute("SELECT session_id, kind, payload, payload_sha256 FROM session_records"
                          " WHERE record_id = ?", (record_id,)).fetchone()
    if row is None:
        raise WorkflowError(f"no signed record {record_id}")
    return row[0], row[1], stored_bytes(row[2]), row[3]


def cosign(db, record_id: str, user_id: str, password: Secret, meaning: str, *,
           t_wall: float | None = None) -> SignatureInfo:
    """Add a signature (review, approval, responsibility...) over the record's stored bytes.

    The record is verified first: nobody co-signs a record that no longer verifies.
    """
    from .verification import verify_stored_record

    key = _signer(db, user_id, password, f"co-sign record {record_id} ({meaning})", meaning)
    with write_transaction(db) as conn:
        check_current(db, key)
        session_id, kind, payload, _digest = _load(db, record_id)
        verify_stored_record(db, record_id)
        (count,) = conn.execute("SELECT count(*) FROM record_signatures WHERE record_id = ?",
                                (record_id,)).fetchone()
        sig = _sign_and_store(db, record_id, b64url_bytes(payload), count, key, meaning,
                              _now(t_wall), session_id)
        if kind == "original":
            conn.execute("UPDATE sessions SET status = 'cosigned' WHERE id = ?", (session_id,))
    return sig


def add_addendum(db, record_id: str, user_id: str, password: Secret, content, *,
                 meaning: str = "authorship", t_wall: float | None = None) -> SignedRecord:
    """A new signed record amending ``record_id`` (text, or a JSON-able dict of data)."""
    key = _signer(db, user_id, password, f"sign an addendum to record {record_id}",
                  meaning)
    with write_transaction(db) as conn:
        check_current(db, key)
        session_id, _kind, _payload, amended_digest = _load(db, record_id)
        now = _now(t_wall)
        new_id = str(uuid.uuid4())
        seq, head = audit_head(db)
        payload = _canonical(build_addendum(
            record_id=new_id, session_id=session_id, created_utc=now, amends_record_id=record_id,
            amends_sha256=amended_digest, content=content, audit_seq=seq, audit_hash=head))
        digest = hashlib.sha256(payload).hexdigest()
        conn.execute("INSERT INTO session_records (record_id, session_id, kind, amends_record_id,"
                     " amends_record_hash, payload, payload_sha256, created_utc)"
                     " VALUES (?,?,'addendum',?,?,?,?,?)",
                     (new_id, session_id, record_id, amended_digest, payload, digest, now))
        append_audit(db, "record.sealed", user_id=user_id, session_id=session_id,
                     entity="session_record", entity_id=new_id,
                     detail={"kind": "addendum", "amends": record_id, "payload_sha256": digest,
                             "bytes": len(payload)})
        sig = _sign_and_store(db, new_id, b64url_bytes(payload), 0, key, meaning, now, session_id)
    return SignedRecord(new_id, session_id, "addendum", digest, now, record_id, (sig,))


def record_document(db, record_id: str) -> JwsDocument:
    """The record with all its signatures, from the stored strings (nothing re-serialised)."""
    _session_id, _kind, payload, _digest = _load(db, record_id)
    return JwsDocument.of_bytes(payload, record_signatures(db, record_id))


def record_signatures(db, record_id: str) -> tuple[JwsSignature, ...]:
    """The record's signatures as stored, in order (without its payload: cheap)."""
    return tuple(JwsSignature(p, s) for p, s in db.conn.execute(
        "SELECT protected, signature FROM record_signatures WHERE record_id = ? ORDER BY idx",
        (record_id,)))


def record_bytes(db, record_id: str) -> bytes:
    """The record file's bytes (what ``ketmonitor verify RECORD.json`` and export read/write)."""
    return record_document(db, record_id).to_bytes()


def write_record(db, record_id: str, path: str | os.PathLike) -> Path:
    """Write the record file atomically (temp file, fsync, rename)."""
    path = Path(path)
    data = record_bytes(db, record_id)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise StoreError(f"cannot write record {record_id} to {path}: {exc}") from None
    return path


def list_records(db, session_id: str | None = None) -> list[SignedRecord]:
    sql = ("SELECT record_id, session_id, kind, payload_sha256, created_utc, amends_record_id"
           " FROM session_records")
    rows = (db.conn.execute(sql + " WHERE session_id = ? ORDER BY created_utc, record_id",
                            (session_id,)) if session_id
            else db.conn.execute(sql + " ORDER BY created_utc, record_id")).fetchall()
    out = []
    for rid, sid, kind, digest, created, amends in rows:
        sigs = tuple(SignatureInfo(rid, idx, kid, signer, name, role, meaning, t)
                     for idx, kid, signer, meaning, t, name, role in db.conn.execute(
                         "SELECT s.idx, s.kid, s.signer_id, s.meaning, s.signed_utc, k.printed_name,"
                         " k.role FROM record_signatures s JOIN signing_keys k ON k.kid = s.kid"
                         " WHERE s.record_id = ? ORDER BY s.idx", (rid,)))
        out.append(SignedRecord(rid, sid, kind, digest, created, amends, sigs))
    return out
