"""Verifying records and databases. Every check raises a typed VerificationError naming what failed;
when several fail, the first is raised and its ``failures`` attribute lists them all.

``verify_record`` needs only the record file and a keyring. ``verify_db`` also recomputes what the
records commit to from the database: waveform chunk digests from the sample blobs, every row of every
session table, the session row, the audit chain and the audit entries of every signature.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import Counter
from dataclasses import dataclass, field

from ..audit import append_audit, audit_row_hash, check_head, find_audit, verify_chain
from ..clock import parse_utc
from ..errors import VerificationError
from ._db import is_blob, read_snapshot, stored_bytes, write_transaction
from .canonical import MAX_INT
from .errors import (AuditChainError, AuditLinkError, ChunkDigestError, HeaderMismatchError,
                     KeyNotValidError, KeyRevokedError, PayloadDigestError, RecordFormatError,
                     RecordLinkError, RowMismatchError, UnknownKeyError)
from .evidence import missing_records
from .jws import JwsDocument, strict_json, verify_signature
from .keyring import Keyring
from .keys import key_valid_at
from .parties import PARTIES, check_party
from .record import FORMAT, session_row
from .rows import table_rows
from .scope import TableScope, session_tables, table_columns
from .service import SignatureInfo, record_document, record_signatures

_MAX_REPORTED = 3  # row differences named per table before summarising


@dataclass(frozen=True)
class RecordVerification:
    record_id: str
    session_id: str
    kind: str
    payload_sha256: str
    signatures: tuple[SignatureInfo, ...]
    amends: dict | None = None
    record: dict | None = field(default=None, repr=False, compare=False)  # the parsed payload

    def describe(self) -> str:
        lines = [f"record {self.record_id} ({self.kind}, session {self.session_id}, "
                 f"payload sha256 {self.payload_sha256}): verified"]
        if self.amends:
            lines.append(f"  amends record {self.amends.get('record_id')}")
        lines += ["  " + s.describe() for s in self.signatures]
        return "\n".join(lines)


@dataclass(frozen=True)
class DbVerification:
    records: tuple[RecordVerification, ...]
    audit_rows: int
    audit_head: str
    chunks: int
    rows: int
    audit_seq: int = 0  # the head's row number
    expected_head: tuple[int, str] | None = None  # a head seen earlier, found unchanged

    @property
    def head_text(self) -> str:
        """``SEQ:HASH``, for ``verify --expect-head`` later."""
        return f"{self.audit_seq}:{self.audit_head}"

    def describe(self) -> str:
        lines = [r.describe() for r in self.records]
        lines.append(f"audit chain: {self.audit_rows} rows verified")
        if self.expected_head:
            lines.append(f"audit row {self.expected_head[0]} still has the hash seen earlier: "
                         f"rows 1-{self.expected_head[0]} are unchanged")
        lines.append(f"audit head: {self.head_text}")
        lines.append(f"database rows compared with the signed records: {self.rows} "
                     f"(waveform chunks re-hashed: {self.chunks})")
        return "\n".join(lines)


def _raise(failures: list[VerificationError]):
    if failures:
        first = failures[0]
        first.failures = tuple(failures)
        raise first


def _parse_payload(payload: bytes) -> dict | None:
    try:
        obj = strict_json(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    return obj if isinstance(obj, dict) else None


def verify_document(doc: JwsDocument, keyring: Keyring) -> RecordVerification:
    payload = doc.payload_bytes()
    digest = hashlib.sha256(payload).hexdigest()
    record = _parse_payload(payload)
    rid = record.get("record_id") if record and isinstance(record.get("record_id"), str) else None
    label = f"record {rid}" if rid else f"record (payload sha256 {digest[:16]}…)"
    if not doc.signatures:
        raise RecordFormatError(f"{label} has no signatures", record_id=rid)
    failures: list[VerificationError] = []
    infos = []
    for i, sig in enumerate(doc.signatures):
        try:
            infos.append(_verify_one(doc, i, keyring, rid, label))
        except VerificationError as exc:
            failures.append(exc)
    _raise(failures)
    if record is None or record.get("format") != FORMAT or rid is None \
            or not isinstance(record.get("session_id"), str) \
            or record.get("kind") not in ("original", "addendum"):
        raise RecordFormatError(f"{label}: the signed payload is not a {FORMAT} JSON object",
                                record_id=rid)
    return RecordVerification(rid, record["session_id"], record["kind"], digest, tuple(infos),
                              record.get("amends"), record)


def _verify_one(doc, i, keyring, rid, label) -> SignatureInfo:
    header = doc.signatures[i].header(record_id=rid, index=i)
    kid, who = header["kid"], header["signer_id"]
    where = f"{label}: signature {i} (signer {who}, key {kid})"
    key = keyring.get(kid)
    if key is None:
        raise UnknownKeyError(f"{where}: the key is not in the keyring", record_id=rid, index=i,
                              kid=kid, signer_id=who)
    verify_signature(doc, i, key.public(), record_id=rid, header=header)
    for member, known in (("signer_id", key.user_id), ("printed_name", key.printed_name),
                          ("role", key.role)):
        if header[member] != known:
            raise HeaderMismatchError(
                f"{where}: protected header says {member} {header[member]!r}, the keyring gives "
                f"this key to {known!r}", record_id=rid, index=i, kid=kid, signer_id=who)
    try:
        parse_utc(header["signed_at"])
    except ValueError:
        raise HeaderMismatchError(f"{where}: signing time {header['signed_at']!r} is not an ISO "
                                  "8601 UTC time with a zone (Z)",
                                  record_id=rid, index=i, kid=kid, signer_id=who) from None
    why = key_valid_at(key, header["signed_at"])
    if why is not None:
        cls = KeyRevokedError if "revocation" in why else KeyNotValidError
        raise cls(f"{where}: signed at {header['signed_at']}, {why}"
                  + (f" (reason: {key.revocation_reason})" if key.revocation_reason else ""),
                  record_id=rid, index=i, kid=kid, signer_id=who)
    note = None
    if key.revoked_at:
        note = f"signed before revocation at {key.revoked_at}"
    elif key.valid_to:
        note = f"signed before the key was superseded at {key.valid_to}"
    return SignatureInfo(rid, i, kid, who, header["printed_name"], header["role"],
                         header["meaning"], header["signed_at"], note)


def verify_record(record_json_bytes: bytes, keyring: Keyring) -> RecordVerification:
    """Verify a record file (JWS General JSON) with a keyring alone; raise on any failure."""
    try:
        doc = JwsDocument.from_bytes(record_json_bytes)
    except RecordFormatError as exc:
        rid = _record_id_of(record_json_bytes)
        if rid is None or exc.record_id:
            raise
        raise RecordFormatError(f"record {rid}: {exc}", record_id=rid) from None
    return verify_document(doc, keyring)


def _record_id_of(data: bytes) -> str | None:
    """The record id in a file that is not a well-formed record, when it can still be read (for
    naming the record in the error); None otherwise."""
    try:
        obj = strict_json(data)
        record = _parse_payload(JwsDocument(obj["payload"], ()).payload_bytes())
    except (ValueError, UnicodeDecodeError, TypeError, KeyError, RecordFormatError):
        return None
    rid = record.get("record_id") if record else None
    return rid if isinstance(rid, str) else None


def _not_a_blob(record_id: str, value) -> PayloadDigestError:
    return PayloadDigestError(f"record {record_id}: stored payload is not a BLOB any more "
                              f"({type(value).__name__}): the record was rewritten",
                              record_id=record_id)


def verify_stored_record(db, record_id: str, keyring: Keyring | None = None) -> RecordVerification:
    """Signatures and stored digest of one record in the database (not the session rows)."""
    row = db.conn.execute("SELECT payload, payload_sha256 FROM session_records WHERE record_id = ?",
                          (record_id,)).fetchone()
    if row is None:
        raise RecordFormatError(f"no signed record {record_id}", record_id=record_id)
    if not is_blob(row[0]):
        raise _not_a_blob(record_id, row[0])
    if hashlib.sha256(bytes(row[0])).hexdigest() != row[1]:
        raise PayloadDigestError(f"record {record_id}: stored payload no longer matches its SHA-256 "
                                 f"{row[1]}", record_id=record_id)
    return verify_document(record_document(db, record_id), keyring or Keyring.from_db(db))


# -- database -----------------------------------------------------------------------------------

def _describe_row(columns, row) -> str:
    d = dict(zip(columns, row))
    parts = [f"{c}={d[c]}" for c in ("id", "source", "metric", "kind", "t_utc") if c in d]
    return "(" + ", ".join(parts or [f"{c}={v}" for c, v in list(d.items())[:4]]) + ")"


def _identity(columns, row):
    d = dict(zip(columns, row))
    keys = [c for c in ("id",) if c in d] or [c for c in ("source", "metric", "kind", "t_mono",
                                                          "t_wall") if c in d]
    return tuple(d[c] for c in keys) if keys else None


def _as_stored(v):
    """A record value as the database holds it. The record writes an integral float in its shortest
    form, so 2.0**60 comes back from the JSON as the int 1152921504606847000, which is not equal to
    the stored float; beyond 2**53 such an int can only have been a float (larger integers are
    written as strings), so it is compared as one."""
    return float(v) if type(v) is int and not -MAX_INT <= v <= MAX_INT else v


def _as_tuples(rows) -> list[tuple]:
    """The record's rows as tuples; a row that is not a JSON array (a malformed payload) becomes a
    one-value row, reported as a difference rather than raising."""
    if not isinstance(rows, list):
        return []
    if all(type(r) is list for r in rows):
        return list(map(tuple, rows))
    return [tuple(r) if type(r) is list else (r,) for r in rows]


def _compare_rows(rid, table, columns, rec_rows, db_rows, failures) -> None:
    """``rec_rows``: the record's rows (lists, from its JSON); ``db_rows``: ``table_rows`` (tuples)."""
    signed = _as_tuples(rec_rows)
    if signed == db_rows:
        # The usual case, decided at C speed: both come from the same ORDER BY, so unchanged rows
        # are equal tuples in the same order (Python's == is the comparison the multiset path below
        # makes too). Anything else takes that path, which also names what differs.
        return
    rec = Counter(tuple(map(_as_stored, r)) for r in signed)
    now = Counter(db_rows)
    missing, extra = list((rec - now).elements()), list((now - rec).elements())
    if not missing and not extra:
        return
    extra_by_id: dict = {}
    for r in extra:
        extra_by_id.setdefault(_identity(columns, r), []).append(r)
    problems = []
    for r in missing:
        ident = _identity(columns, r)
        candidates = extra_by_id.get(ident) if ident is not None else None
        if candidates:
            other = candidates.pop(0)
            diffs = ", ".join(f"{c} {b!r} (signed record: {a!r})"
                              for c, a, b in zip(columns, r, other) if a != b)
            problems.append(("changed", r, f"{table} row {_describe_row(columns, r)} was changed "
                                           f"in the database: {diffs}"))
        else:
            problems.append(("missing", r, f"{table} row {_describe_row(columns, r)} of the signed "
                                           "record is missing from the database"))
    for rows in extra_by_id.values():
        for r in rows:
            problems.append(("extra", r, f"{table} row {_describe_row(columns, r)} is in the database "
                                         "but not in the signed record"))
    total = len(problems)
    for n, (_what, r, text) in enumerate(problems[:_MAX_REPORTED]):
        more = f" (and {total - _MAX_REPORTED} more differences in {table})" \
            if n == _MAX_REPORTED - 1 and total > _MAX_REPORTED else ""
        msg = f"record {rid}: {text}{more}"
        d = dict(zip(columns, r))
        if table == "waveform_chunks" and "id" in d:
            failures.append(ChunkDigestError(msg, record_id=rid, chunk_id=d["id"]))
        else:
            failures.append(RowMismatchError(msg, record_id=rid, table=table,
                                             key=_identity(columns, r)))


def _check_chunks(conn, rid, session_id, rec_section, failures) -> int:
    """Re-hash every waveform chunk's samples against the digest the record commits to."""
    cols = rec_section["columns"]
    if "id" not in cols or "sha256" not in cols:
        return 0
    i_id, i_sha = cols.index("id"), cols.index("sha256")
    signed = {r[i_id]: r for r in rec_section["rows"]}
    ids, blobs, stored_digests = [], [], []
    for cid, blob, stored in conn.execute(
            "SELECT id, samples, sha256 FROM waveform_chunks WHERE session_id = ? ORDER BY id",
            (session_id,)):
        ids.append(cid)
        blobs.append(blob)
        stored_digests.append(stored)
    sha256 = hashlib.sha256
    # a samples value rewritten as TEXT, a number or NULL has no digest: it matches nothing
    actuals = [sha256(b).hexdigest() if type(b) is bytes else None for b in blobs]
    signed_digests = [row[i_sha] if (row := signed.get(cid)) is not None else _ABSENT
                      for cid in ids]
    if actuals == signed_digests and actuals == stored_digests:  # the usual case: compared in C
        return len(ids)
    for cid, blob, actual, stored, want in zip(ids, blobs, actuals, stored_digests,
                                                signed_digests):
        if actual is None:
            why = f"its samples are not a BLOB any more ({type(blob).__name__})"
        elif want is not _ABSENT and actual != want:
            why = (f"its samples hash to {actual[:16]}…, the signed record commits to "
                   f"{str(want)[:16]}…" + ("" if stored == want else
                                            " (its sha256 column was changed too)"))
        elif actual != stored:
            why = "samples do not match their stored SHA-256"
        else:
            continue
        metric, t_utc = conn.execute("SELECT metric, t_utc FROM waveform_chunks WHERE id = ?",
                                     (cid,)).fetchone()
        failures.append(ChunkDigestError(
            f"record {rid}: waveform chunk {cid} ({metric} at {t_utc}): {why}",
            record_id=rid, chunk_id=cid))
    return len(ids)


_ABSENT = object()  # a chunk the record does not hold


def _check_tables(conn, rid, session_id, record, failures) -> tuple[int, int]:
    tables = record.get("tables")
    if not isinstance(tables, dict):
        failures.append(RecordFormatError(f"record {rid}: payload has no 'tables'", record_id=rid))
        return 0, 0
    scopes = {s.name: s for s in session_tables(conn)}
    rows = chunks = 0
    for name, section in tables.items():
        scope = scopes.get(name)
        cols = section.get("columns") if isinstance(section, dict) else None
        if scope is None or not isinstance(cols, list):
            failures.append(RowMismatchError(
                f"record {rid}: table {name} of the signed record is not in the database",
                record_id=rid, table=name))
            continue
        present = {c for c, _t, _pk in table_columns(conn, name)}
        lost = [c for c in cols if c not in present]
        if lost:
            failures.append(RowMismatchError(f"record {rid}: table {name} lost column(s) "
                                             f"{', '.join(lost)}", record_id=rid, table=name))
            continue
        # Compare exactly the columns that were signed (a later migration may add columns).
        signed_scope = TableScope(scope.name, tuple(cols), scope.pk, scope.parent, scope.from_col,
                                  scope.to_col)
        db_rows = table_rows(conn, signed_scope, session_id)
        rows += len(db_rows)
        if name == "waveform_chunks":
            chunks = _check_chunks(conn, rid, session_id, section, failures)
            before = len(failures)
            _compare_rows(rid, name, cols, section["rows"], db_rows, failures)
            # a replaced chunk was already named by its digest; keep one message per chunk
            named = {f.chunk_id for f in failures[:before] if isinstance(f, ChunkDigestError)}
            failures[before:] = [f for f in failures[before:]
                                 if not (isinstance(f, ChunkDigestError) and f.chunk_id in named)]
        else:
            _compare_rows(rid, name, cols, section["rows"], db_rows, failures)
    signed_session = record.get("session") or {}
    try:
        current = session_row(conn, session_id)
    except Exception:  # noqa: BLE001 - reported as a mismatch below
        current = {}
    for col, value in signed_session.items():
        if current.get(col, object()) != value:
            failures.append(RowMismatchError(
                f"record {rid}: session {session_id} column {col} is {current.get(col)!r} in the "
                f"database, {value!r} in the signed record", record_id=rid, table="sessions",
                key=session_id))
    return rows, chunks


def _check_audit_links(db, rid, record, verification, failures) -> None:
    head = record.get("audit_head") or {}
    seq, expected = head.get("seq"), head.get("hash")
    if isinstance(seq, int):
        actual = audit_row_hash(db, seq)
        if actual != expected:
            failures.append(AuditLinkError(
                f"record {rid}: audit row {seq} " + ("is missing" if actual is None else
                                                     "differs from the audit-chain head signed in "
                                                     "the record") + " (audit trail rewritten)",
                seq=seq, record_id=rid))
    entries = find_audit(db, "record.signed", entity_id=rid)
    signatures = record_signatures(db, rid)
    stored = {hashlib.sha256(sig.signature.encode("ascii")).hexdigest() for sig in signatures}
    for q, d in entries:
        if d.get("signature_sha256") not in stored:
            failures.append(AuditLinkError(
                f"record {rid}: audit row {q} records signature {d.get('index')} "
                f"({d.get('meaning')}, key {d.get('kid')}), which is missing from the database",
                seq=q, record_id=rid))
    for s in verification.signatures:
        sig = signatures[s.index]
        want = hashlib.sha256(sig.signature.encode("ascii")).hexdigest()
        found = [q for q, d in entries if d.get("index") == s.index
                 and d.get("signature_sha256") == want]
        if not found:
            failures.append(AuditLinkError(
                f"record {rid}: signature {s.index} ({s.signer_id}) has no matching 'record.signed' "
                "audit entry", seq=None, record_id=rid))
            continue
        revoked = find_audit(db, "key.revoked", entity_id=s.kid)
        if revoked and found[0] > revoked[0][0]:
            failures.append(KeyRevokedError(
                f"record {rid}: signature {s.index} ({s.signer_id}, key {s.kid}) was entered at "
                f"audit row {found[0]}, after the key's revocation at audit row {revoked[0][0]}",
                record_id=rid, index=s.index, kid=s.kid, signer_id=s.signer_id))


def _check_stored(db, rid, session_id, kind, amends_id, amends_hash, v, failures) -> None:
    if v.record_id != rid or v.session_id != session_id or v.kind != kind:
        failures.append(RecordLinkError(
            f"record {rid}: stored as {kind} of session {session_id}, but the signed payload says "
            f"record {v.record_id}, {v.kind} of session {v.session_id}", record_id=rid))
    for idx, kid, signer, meaning in db.conn.execute(
            "SELECT idx, kid, signer_id, meaning FROM record_signatures WHERE record_id = ?"
            " ORDER BY idx", (rid,)):
        s = v.signatures[idx] if idx < len(v.signatures) else None
        if s is None or (s.kid, s.signer_id, s.meaning) != (kid, signer, meaning):
            failures.append(RecordLinkError(
                f"record {rid}: signature {idx} is listed as {signer}/{meaning}/{kid} but its "
                "protected header says otherwise", record_id=rid))
    if kind == "addendum":
        target = db.conn.execute("SELECT payload_sha256 FROM session_records WHERE record_id = ?",
                                 (amends_id,)).fetchone()
        signed = (v.amends or {})
        if target is None or target[0] != amends_hash or signed.get("payload_sha256") != amends_hash \
                or signed.get("record_id") != amends_id:
            failures.append(RecordLinkError(
                f"addendum {rid}: its link to record {amends_id} (sha256 {amends_hash}) is broken",
                record_id=rid))


def _check_audit_evidence(db, session_id, failures) -> bool:
    """Records the audit trail says were sealed or signed that are gone (evidence.py); returns
    whether there is any."""
    found = [m.error() for m in missing_records(db, session_id)]
    failures.extend(found)
    return bool(found)


def _check_parties(db, rid: str, record: dict, failures: list) -> None:
    """The patient and clinic rows the record carries (audited later updates are not failures)."""
    head_seq = (record.get("audit_head") or {}).get("seq")
    for section, (table, _action) in PARTIES.items():
        problems: list[str] = []
        check_party(db, section, record.get(section), head_seq, problems, [])
        key = (record.get(section) or {}).get("id")
        failures.extend(RowMismatchError(f"record {rid}: {p}", record_id=rid, table=table, key=key)
                        for p in problems)


def _check_db(db, session_id, expect_head=None):
    failures: list[VerificationError] = []
    try:
        chain = verify_chain(db)
        audit_rows, head, head_seq = chain.rows, chain.head, chain.seq
    except AuditChainError as exc:
        failures.append(exc)
        audit_rows, head, head_seq = 0, "?", 0
    if expect_head is not None:
        try:
            check_head(db, *expect_head)
        except AuditChainError as exc:
            failures.append(exc)
    evidence_missing = _check_audit_evidence(db, session_id, failures)
    keyring = Keyring.from_db(db)
    sql = ("SELECT record_id, session_id, kind, payload, payload_sha256, amends_record_id,"
           " amends_record_hash FROM session_records")
    rows = (db.conn.execute(sql + " WHERE session_id = ? ORDER BY created_utc", (session_id,))
            if session_id else db.conn.execute(sql + " ORDER BY created_utc")).fetchall()
    if session_id and not rows and not evidence_missing:
        failures.append(VerificationError(f"session {session_id} has no signed record"))
    results, n_rows, n_chunks = [], 0, 0
    for rid, sid, kind, payload, digest, amends_id, amends_hash in rows:
        if not is_blob(payload):
            failures.append(_not_a_blob(rid, payload))
        payload = stored_bytes(payload)
        if hashlib.sha256(payload).hexdigest() != digest:
            failures.append(PayloadDigestError(
                f"record {rid}: stored payload no longer matches its SHA-256 {digest}",
                record_id=rid))
        try:
            v = verify_document(record_document(db, rid), keyring)
        except VerificationError as exc:
            failures.extend(getattr(exc, "failures", (exc,)))
            continue
        results.append(v)
        _check_stored(db, rid, sid, kind, amends_id, amends_hash, v, failures)
        if kind == "original":
            r, c = _check_tables(db.conn, rid, sid, v.record, failures)
            n_rows, n_chunks = n_rows + r, n_chunks + c
            _check_parties(db, rid, v.record, failures)
        _check_audit_links(db, rid, v.record, v, failures)
    return failures, results, n_rows, n_chunks, audit_rows, head, head_seq, len(rows)


def verify_db(db, session_id: str | None = None, *, audit: bool = True,
              user_id: str | None = None,
              expect_head: tuple[int, str] | None = None) -> DbVerification:
    """Verify the audit chain and every signed record (of one session, or all) against the database.

    ``expect_head`` (seq, hash): an audit head seen earlier (printed by an earlier verification,
    recorded in an export manifest); it must still be in the chain, unchanged. The outcome is
    appended to the audit trail when the database is writable and ``audit`` is set.
    """
    with read_snapshot(db.conn):  # the whole database as of one moment while the app may write
        failures, results, n_rows, n_chunks, audit_rows, head, head_seq, n_records = _check_db(
            db, session_id, expect_head)
    if audit:
        record_verification(db, "verify.db", user_id=user_id, session_id=session_id,
                            detail={"records": n_records, "ok": not failures,
                                    "head": f"{head_seq}:{head}",
                                    **({"expected_head": f"{expect_head[0]}:{expect_head[1]}"}
                                       if expect_head else {}),
                                    "failures": [str(f) for f in failures[:20]]})
    _raise(failures)
    return DbVerification(tuple(results), audit_rows, head, n_chunks, n_rows, head_seq, expect_head)


def record_verification(db, action: str, *, user_id=None, session_id=None, detail=None) -> bool:
    """Append a verification outcome to the audit trail; False when the database is read-only."""
    try:
        with write_transaction(db):
            append_audit(db, action, user_id=user_id, session_id=session_id, entity="verification",
                         detail=json.loads(json.dumps(detail or {}, default=str)))
        return True
    except sqlite3.OperationalError:
        return False
