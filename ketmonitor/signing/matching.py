"""Does the database still hold what was signed? The check every export and the review screen make
before they show a sealed session.

Exports and the review screen read the database's rows, not the signed payload, so a row changed
behind the triggers' back (someone with the file and the sqlite3 shell) would otherwise be shown,
co-signed or sent to another system as if it were the signed record. ``check_session``:

- verifies the signatures of every record of the session (``verify_stored_record``) and checks
  them against the audit trail: a signature or a whole record the trail says was made and the
  database no longer holds (deleted behind the triggers' back, evidence.py) is a signature problem,
  so a session whose record was deleted is not "not signed" but ``SIGNED RECORD DOES NOT VERIFY``;
- compares every row of every session table, the waveform digests and the session row with the
  original record: the same comparison ``verify_db`` makes (``verification._check_tables``);
- compares the patient and clinic rows with the copies the record carries. A patient legitimately
  changes after a session: the next check-in updates the weight or the concomitant-medication
  answers, audited as ``patient.update``. A column changed by such an audited update after the
  record was signed is a *note*, not a problem; anything else that differs is a problem. Either
  way, what is shown for a sealed session is the patient and clinic *as signed* (``patient()``,
  ``clinic()``): a session of March shows the March weight and answers.

It never raises for what it finds: the outcome is a ``RecordCheck`` (the caller decides to warn,
mark or refuse). It reads in one snapshot when the caller has no transaction open.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from ..errors import VerificationError
from ..patients import REMS_FLAGS, Patient
from ._db import read_snapshot, stored_bytes
from .parties import PARTIES, check_party
from .service import list_records, original_record_id
from .evidence import missing_records
from .verification import (_check_audit_links, _check_tables, _parse_payload,
                           verify_stored_record)

NOT_SIGNED, MATCHES = "not signed", "matches"
DIFFERS = "DOES NOT MATCH ITS SIGNED RECORD"
SIGNATURE_FAILED = "SIGNED RECORD DOES NOT VERIFY"


@dataclass(frozen=True)
class RecordCheck:
    session_id: str
    record_id: str | None                       # the original record (deleted: the id the audit
    #                                             trail gives it); None: never signed
    signature_problems: tuple[str, ...] = ()    # a signature or stored digest that fails
    data_problems: tuple[str, ...] = ()         # database rows that differ from the signed record
    notes: tuple[str, ...] = ()                 # audited patient updates made after signing
    records: dict = field(default_factory=dict)  # record id -> None (verifies) or why not
    signed_patient: dict | None = None          # the patients row as signed
    signed_clinic: dict | None = None           # the clinic row as signed
    rows: int = 0                               # rows compared

    @property
    def signed(self) -> bool:
        return self.record_id is not None

    @property
    def problems(self) -> tuple[str, ...]:
        return self.signature_problems + self.data_problems

    @property
    def matches(self) -> bool:
        """Signed, every signature verifies and the database holds exactly what was signed."""
        return self.signed and not self.problems

    @property
    def flagged(self) -> bool:
        """Signed, but something does not verify: what is shown is not (only) what was signed."""
        return self.signed and bool(self.problems)

    @property
    def status(self) -> str:
        if not self.signed:
            return NOT_SIGNED
        if self.signature_problems:
            return SIGNATURE_FAILED
        return DIFFERS if self.data_problems else MATCHES

    def summary(self, limit: int = 3) -> str:
        """The problems in one line: the first ``limit``, then how many more."""
        shown = list(self.problems[:limit])
        more = len(self.problems) - len(shown)
        return "; ".join(shown) + (f" (and {more} more)" if more > 0 else "")

    def headline(self) -> str:
        """'DOES NOT MATCH ITS SIGNED RECORD: <what>' (or the signature failure); '' when fine."""
        return f"{self.status}: {self.summary()}" if self.flagged else ""

    def as_dict(self, limit: int = 20) -> dict:
        """For manifests and audit entries (JSON)."""
        return {"status": self.status, "record_id": self.record_id, "rows_compared": self.rows,
                "problems": list(self.problems[:limit]),
                **({"more_problems": len(self.problems) - limit}
                   if len(self.problems) > limit else {}),
                "notes": list(self.notes)}

    def patient(self) -> Patient | None:
        """The patient as signed (None when not signed, or signed without a patient)."""
        row = self.signed_patient
        if row is None:
            return None
        data = {f.name: row.get(f.name) for f in fields(Patient)}
        for k in REMS_FLAGS:
            data[k] = None if data[k] is None else bool(data[k])
        data["notes"] = data["notes"] or ""
        return Patient(**data)

    def clinic(self) -> dict | None:
        """The clinic as signed: name, address, phone, email."""
        row = self.signed_clinic
        if row is None:
            return None
        return {k: row.get(k) or "" for k in ("name", "address", "phone", "email")}


def _strip(rid: str, text: str) -> str:
    prefix = f"record {rid}: "
    return text[len(prefix):] if text.startswith(prefix) else text


def _stored_payload(db, record_id: str) -> dict | None:
    row = db.conn.execute("SELECT payload FROM session_records WHERE record_id = ?",
                          (record_id,)).fetchone()
    return _parse_payload(stored_bytes(row[0])) if row else None


def _signatures(db, session_id: str):
    """(original record or None, its verified payload or None, record id -> None or why not,
    signature problems, deleted records): everything but the rows."""
    records = list_records(db, session_id)
    original = next((r for r in records if r.kind == "original"), None)
    outcomes: dict = {}
    problems: list[str] = []
    payload = None
    for rec in records:
        failures: list[VerificationError] = []
        try:
            v = verify_stored_record(db, rec.record_id)
            _check_audit_links(db, rec.record_id, v.record, v, failures)  # a deleted signature...
            if rec is original:
                payload = v.record
        except VerificationError as exc:
            failures += getattr(exc, "failures", (exc,))
        outcomes[rec.record_id] = "; ".join(map(str, failures)) or None
        problems += map(str, failures)
    # ...and a deleted record, named by the audit entries written with it (evidence.py)
    gone = missing_records(db, session_id)
    problems += [m.describe() for m in gone]
    return original, payload, outcomes, problems, gone


def _check(db, session_id: str) -> RecordCheck:
    original, payload, outcomes, sig_problems, gone = _signatures(db, session_id)
    if original is None:
        deleted = next((m.record_id for m in gone if m.original), None)
        return RecordCheck(session_id, deleted, tuple(sig_problems), records=outcomes)
    if payload is None:  # a signature failed: still compare with the stored (digest-checked) bytes
        payload = _stored_payload(db, original.record_id)
    if not isinstance(payload, dict):
        return RecordCheck(session_id, original.record_id, tuple(sig_problems),
                           ("the signed payload cannot be read",), records=outcomes)
    failures = []
    rows, _chunks = _check_tables(db.conn, original.record_id, session_id, payload, failures)
    data = [_strip(original.record_id, str(f)) for f in failures]
    notes: list[str] = []
    head_seq = (payload.get("audit_head") or {}).get("seq")
    for section in PARTIES:
        check_party(db, section, payload.get(section), head_seq, data, notes)
    return RecordCheck(session_id, original.record_id, tuple(sig_problems), tuple(data),
                       tuple(notes), outcomes, payload.get("patient"), payload.get("clinic"), rows)


def check_session(db, session_id: str) -> RecordCheck:
    """Compare ``session_id`` in the database with its signed record (see the module docstring)."""
    with read_snapshot(db.conn):  # one consistent read while the app may be writing
        return _check(db, session_id)


def deleted_check(db, session_id: str) -> RecordCheck | None:
    """Only the audit-trail part of ``check_session``: None unless a record or signature of the
    session that the trail records is gone from the database. Cheap (no row is compared): for json
    exports, which write the stored records and compare nothing else."""
    gone = missing_records(db, session_id)
    if not gone:
        return None
    original = original_record_id(db, session_id) or next(
        (m.record_id for m in gone if m.original), None)
    return RecordCheck(session_id, original, tuple(m.describe() for m in gone))


def recheck_signatures(db, check: RecordCheck) -> RecordCheck:
    """``check`` with its signature part made again (every record's signatures, their audit
    entries, deleted records) and its row comparison kept: after a co-signature or an addendum,
    which add signatures and change no row, and which ``review`` allows only after comparing the
    rows itself a moment before. A check of a session that was not signed (its first signature
    seals the rows) cannot be reused: that is ``check_session``'s."""
    if not check.signed:
        raise ValueError("recheck_signatures needs the check of a signed session")
    with read_snapshot(db.conn):
        original, _payload, outcomes, problems, _gone = _signatures(db, check.session_id)
    if original is None or original.record_id != check.record_id:  # gone since: compare anew
        return check_session(db, check.session_id)
    return replace(check, signature_problems=tuple(problems), records=outcomes)
