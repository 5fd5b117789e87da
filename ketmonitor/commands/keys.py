"""``ketmonitor keys``: the clinic's signing keys.

    ketmonitor keys export [--db PATH]            public keyring as a JWK Set (RFC 7517) on stdout
    ketmonitor keys list [--db PATH]
    ketmonitor keys import KEYRING.json [--db PATH]   public keys for verifying on this machine
    ketmonitor keys enrol --user-id ID [--name NAME --role ROLE] [--password-stdin] [--db PATH]
    ketmonitor keys revoke KID --reason TEXT [--db PATH]
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

from ..errors import AuthError, ConfigError

NAME = "keys"
HELP = "signing keys: export the public keyring (JWK Set), list, import, enrol, revoke"


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="keys_action", metavar="ACTION", required=True)
    for name, helptext in (("export", "print the public keyring as a JWK Set"),
                           ("list", "list keys with their validity"),
                           ("import", "add a keyring's public keys to this database"),
                           ("enrol", "create a user's signing key (asks for the password)"),
                           ("revoke", "revoke a key (signatures made before stay valid)")):
        p = sub.add_parser(name, help=helptext, description=helptext)
        p.add_argument("--db", dest="keys_db", metavar="PATH", help="session database")
        if name == "import":
            p.add_argument("keyring", metavar="KEYRING.json")
        elif name == "enrol":
            p.add_argument("--user-id", required=True)
            p.add_argument("--name", help="printed name (default: the user's full name)")
            p.add_argument("--role", help="role (default: the user's role)")
            p.add_argument("--password-stdin", action="store_true",
                           help="read the password from the first line of stdin")
        elif name == "revoke":
            p.add_argument("kid", metavar="KID")
            p.add_argument("--reason", required=True)
            p.add_argument("--by", dest="by_user", help="user id of who revokes")


def _db(args):
    from ..paths import default_db
    from ..store import open_db

    return open_db(Path(args.keys_db or getattr(args, "db", None) or default_db()).expanduser())


def _password(args) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass(f"Signing password for {args.user_id}: ")
    if first != getpass.getpass("Again: "):
        raise AuthError("the passwords differ")
    return first


def run(args) -> int:
    from ..signing import Keyring, enrol_key, import_keyring, list_keys, revoke_key

    db = _db(args)
    if args.keys_action == "export":
        sys.stdout.write(Keyring.from_db(db).to_json())
    elif args.keys_action == "list":
        for k in list_keys(db):
            state = (f"revoked {k.revoked_at}" if k.revoked_at else
                     f"superseded {k.valid_to}" if k.valid_to else "active")
            print(f"{k.kid}  {k.user_id}  {k.printed_name} ({k.role})  from {k.valid_from}  "
                  f"{state}  [{k.origin}]")
    elif args.keys_action == "import":
        try:
            data = Path(args.keyring).read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read {args.keyring}: {exc.strerror or exc}") from None
        added = import_keyring(db, Keyring.from_jwks(data, source=args.keyring))
        print(f"imported {added} new key(s) from {args.keyring}")
    elif args.keys_action == "enrol":
        name, role = args.name, args.role
        if (name is None or role is None) and "users" in db.table_names():
            row = db.conn.execute("SELECT full_name, role FROM users WHERE id = ?",
                                  (args.user_id,)).fetchone()
            if row:
                name, role = name or row[0], role or row[1]
        if not name or not role:
            raise ConfigError(f"give --name and --role for {args.user_id}")
        info = enrol_key(db, args.user_id, name, role, _password(args))
        print(f"enrolled key {info.kid} for {info.printed_name} ({info.role})")
    elif args.keys_action == "revoke":
        info = revoke_key(db, args.kid, reason=args.reason, by_user_id=args.by_user)
        print(f"revoked key {info.kid} of {info.user_id} at {info.revoked_at}")
    return 0
