"""``ketmonitor verify``: verify a signed session record file, or every signed record in a database.

    ketmonitor verify RECORD.json [--keyring KEYRING.json | --db PATH]
    ketmonitor verify --db PATH [--session ID] [--expect-head SEQ:HASH]

Exit status 0 only when everything verifies; 1 when anything fails, with one line per failure on
stderr naming exactly what failed (record, signature and signer, waveform chunk, table row or audit
row); 2 for usage errors (missing file, unreadable keyring).

A database verification prints the audit head (``SEQ:HASH``). Audit rows after the last signed
record are covered by no signature, so only a head kept outside the database proves them later:
``--expect-head`` checks that such a head is still in the chain, unchanged.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..errors import ConfigError, StoreError, VerificationError

NAME = "verify"
HELP = "verify a signed record file or all signed records, waveform digests and the audit chain of a database"
EXIT_FAILED = 1


def add_arguments(parser) -> None:
    parser.add_argument("record", nargs="?", metavar="RECORD.json",
                        help="a record file (JWS General JSON); omit to verify a database")
    parser.add_argument("--keyring", metavar="KEYRING.json",
                        help="public keyring (JWK Set from 'ketmonitor keys export')")
    parser.add_argument("--db", dest="verify_db", metavar="PATH",
                        help="session database (default: the workstation's database)")
    parser.add_argument("--session", metavar="ID", help="only this session's records (with --db)")
    parser.add_argument("--expect-head", metavar="SEQ:HASH",
                        help="an audit head printed by an earlier verification or recorded in an "
                             "export manifest: fail unless that row is still in the chain, unchanged")


def _open(path: Path):
    from ..store import open_db

    if not path.exists():
        raise StoreError(f"no database at {path}")
    return open_db(path, readonly=not os.access(path, os.W_OK))


def _db_path(args) -> Path | None:
    given = args.verify_db or getattr(args, "db", None)
    return Path(given).expanduser() if given else None


def _failed(exc: VerificationError) -> int:
    for failure in getattr(exc, "failures", (exc,)):
        print(f"ketmonitor verify: FAILED: {failure}", file=sys.stderr)
    return EXIT_FAILED


# A signature's signed_at is written by the signer: with the key alone a thief can write any time
# before the revocation. Only the clinic database's audit trail orders signing and revocation.
FILE_ONLY_REVOKED = ("note: signature {index} ({signer}) is by key {kid}, revoked at {revoked}; "
                     "its signing time {signed_at} is the signer's own claim, which a record file "
                     "cannot prove (a stolen key can back-date). Verify it against the clinic's "
                     "database ('ketmonitor verify --db PATH'), whose audit trail orders the "
                     "signature and the revocation.")


def _revoked_notes(result, keyring) -> list[str]:
    notes = []
    for s in result.signatures:
        key = keyring.get(s.kid)
        if key is not None and key.revoked_at:
            notes.append(FILE_ONLY_REVOKED.format(index=s.index, signer=s.signer_id, kid=s.kid,
                                                  revoked=key.revoked_at, signed_at=s.signed_at))
    return notes


def run(args) -> int:
    from ..audit import parse_head
    from ..paths import default_db
    from ..signing import Keyring, verify_db, verify_record
    from ..signing.verification import record_verification

    if args.record is not None:
        if args.session or args.expect_head:
            raise ConfigError("--session and --expect-head apply to --db verification, not to a "
                              "record file")
        try:
            data = Path(args.record).read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read {args.record}: {exc.strerror or exc}") from None
        db = None
        if args.keyring:
            try:
                keyring = Keyring.from_jwks(Path(args.keyring).read_bytes(), source=args.keyring)
            except OSError as exc:
                raise ConfigError(f"cannot read {args.keyring}: {exc.strerror or exc}") from None
        else:
            path = _db_path(args) or (default_db() if default_db().exists() else None)
            if path is None:
                raise ConfigError("no keyring: give --keyring KEYRING.json (from 'ketmonitor keys "
                                  "export') or --db PATH")
            db = _open(path)
            keyring = Keyring.from_db(db)
        try:
            result = verify_record(data, keyring)
        except VerificationError as exc:
            if db is not None:
                record_verification(db, "verify.record", detail={"file": str(args.record),
                                                                 "ok": False, "failure": str(exc)})
            return _failed(exc)
        if db is not None:
            record_verification(db, "verify.record", session_id=result.session_id,
                                detail={"file": str(args.record), "ok": True,
                                        "record_id": result.record_id})
        print(result.describe())
        for note in _revoked_notes(result, keyring):
            print(note)
        return 0
    if args.keyring:
        raise ConfigError("--keyring applies to a record file; a database carries its keyring")
    expect = None
    if args.expect_head:
        try:
            expect = parse_head(args.expect_head)
        except ValueError as exc:
            raise ConfigError(f"--expect-head: {exc}") from None
    path = _db_path(args) or default_db()
    db = _open(path)
    try:
        report = verify_db(db, args.session, expect_head=expect)
    except VerificationError as exc:
        return _failed(exc)
    print(report.describe())
    print(f"keep the audit head elsewhere: 'ketmonitor verify --db {path} --expect-head "
          f"{report.head_text}' later proves these {report.audit_seq} audit rows unchanged (rows "
          "after the last signed record are covered by nothing else)")
    print("OK: everything verifies")
    return 0
