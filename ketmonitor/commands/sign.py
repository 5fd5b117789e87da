"""``ketmonitor sign``: sign the record of an ended session (its first signature).

    ketmonitor sign --db PATH --session ID --user ID [--meaning M] [--password-stdin]

Who may sign and for what (docs/signing.md, ``signing.rules``: the same rules and the same function as
the bedside and the review screen): a nurse or physician who made entries in the session, for
authorship (the default for them); a physician, for responsibility. The password is asked on
the terminal (not echoed), or read from the first line of stdin with ``--password-stdin``. Every
refusal is one line and signs nothing: unknown or read-only user, session not ended or already
signed, a signed record deleted from the database, no signing key, wrong password (audited as a
failed signing attempt). Signed after the fact, the record names the protocol but carries no
definition of it (``signing.rules``).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import AuthError, StoreError
from ._secret import add_password_stdin, read_password

NAME = "sign"
HELP = "sign the record of an ended session (asks for the password again)"


def add_arguments(parser) -> None:
    parser.add_argument("--db", dest="sign_db", metavar="PATH",
                        help="session database (default: the workstation's database)")
    parser.add_argument("--session", required=True, metavar="ID", help="the session to sign")
    parser.add_argument("--user", required=True, metavar="ID", help="who signs (their user id)")
    parser.add_argument("--meaning", choices=("authorship", "responsibility"),
                        help="what the signature means (default: authorship for the session's "
                             "author, otherwise responsibility for a physician)")
    add_password_stdin(parser)


def run(args) -> int:
    from ..paths import default_db
    from ..signing import load_key, record_auth_failure
    from ..signing.rules import choose_meaning, sign_check, sign_record
    from ..store import open_db

    path = Path(args.sign_db or getattr(args, "db", None) or default_db()).expanduser()
    if not path.exists():
        raise StoreError(f"no database at {path}")
    db = open_db(path)
    try:
        role, meanings = sign_check(db, args.session, args.user)  # before asking a password
        meaning = choose_meaning(args.user, role, meanings, args.meaning)
        key = load_key(db, args.user)
        password = read_password(args, f"Password of {key.info.printed_name} ({args.user}) to sign "
                                       f"session {args.session} ({meaning}): ")
        try:
            unlocked = key.unlock(password, purpose="sign")
        except AuthError:
            record_auth_failure(db, args.user, key.info.kid,
                                f"sign session {args.session} (command line)")
            raise AuthError(f"wrong password for {args.user}: nothing was signed") from None
        record = sign_record(db, args.session, args.user, unlocked, meaning)
    finally:
        db.conn.close()
    sig = record.signatures[0]
    print(f"signed session {args.session}: record {record.record_id} (payload sha256 "
          f"{record.payload_sha256})")
    print(f"  {sig.describe()}")
    return 0
