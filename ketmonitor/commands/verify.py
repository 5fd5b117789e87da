"""``ketmonitor verify``: verify a signed session record file, or every signed record in a database.

    ketmonitor verify RECORD.json [--keyring KEYRING.json | --db PATH]
    ketmonitor verify --db PATH [--session ID]

Exit status 0 only when everything verifies; 1 when anything fails, with one line per failure on
stderr naming exactly what failed (record, signature and signer, waveform chunk, table row or audit
row); 2 for usage errors (missing file, unreadable keyring).
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


def run(args) -> int:
    from ..paths import default_db
    from ..signing import Keyring, verify_db, verify_record
    from ..signing.verification import record_verification

    if args.record is not None:
        if args.session:
            raise ConfigError("--session applies to --db verification, not to a record file")
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
        return 0
    if args.keyring:
        raise ConfigError("--keyring applies to a record file; a database carries its keyring")
    db = _open(_db_path(args) or default_db())
    try:
        report = verify_db(db, args.session)
    except VerificationError as exc:
        return _failed(exc)
    print(report.describe())
    print("OK: everything verifies")
    return 0
