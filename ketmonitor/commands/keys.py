"""``ketmonitor keys``: the clinic's signing keys.

    ketmonitor keys export [--db PATH]            public keyring as a JWK Set (RFC 7517) on stdout
    ketmonitor keys list [--db PATH]
    ketmonitor keys import KEYRING.json [--db PATH]   public keys for verifying on this machine
    ketmonitor keys enrol --user-id ID [--name NAME --role ROLE] [--password-stdin] [--db PATH]
    ketmonitor keys rotate --user-id ID [--name NAME --role ROLE] [--password-stdin] [--db PATH]
    ketmonitor keys revoke KID --reason TEXT --by ADMIN_ID [--password-stdin] [--db PATH]

A clinical user's key is normally enrolled with the account and follows its password (see
docs/signing.md); ``enrol`` is for a user without one. ``rotate`` retires the active key (its
validity ends now; what it signed keeps verifying) and makes a new one under the same password,
taking on the account's current printed name and role. ``revoke`` is an administrator's act: the
administrator named by ``--by`` confirms it with their password, and the audit trail records who.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import AuthError, ConfigError
from ._secret import add_password_stdin, read_password

NAME = "keys"
HELP = "signing keys: export the public keyring (JWK Set), list, import, enrol, rotate, revoke"


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="keys_action", metavar="ACTION", required=True)
    for name, helptext in (("export", "print the public keyring as a JWK Set"),
                           ("list", "list keys with their validity"),
                           ("import", "add a keyring's public keys to this database"),
                           ("enrol", "create a user's signing key (asks for the password)"),
                           ("rotate", "replace a user's key with a new one (asks for the "
                                      "password); earlier signatures stay valid"),
                           ("revoke", "revoke a key (signatures made before stay valid); an "
                                      "administrator confirms with their password")):
        p = sub.add_parser(name, help=helptext, description=helptext)
        p.add_argument("--db", dest="keys_db", metavar="PATH", help="session database")
        if name == "import":
            p.add_argument("keyring", metavar="KEYRING.json")
        elif name in ("enrol", "rotate"):
            p.add_argument("--user-id", required=True)
            p.add_argument("--name", help="printed name (default: the user's full name)")
            p.add_argument("--role", help="role (default: the user's role)")
            add_password_stdin(p)
        elif name == "revoke":
            p.add_argument("kid", metavar="KID")
            p.add_argument("--reason", required=True)
            p.add_argument("--by", dest="by_user", required=True, metavar="ADMIN_ID",
                           help="the administrator who revokes it (asked for their password)")
            add_password_stdin(p)


def _db(args):
    from ..paths import default_db
    from ..store import open_db

    return open_db(Path(args.keys_db or getattr(args, "db", None) or default_db()).expanduser())


def _identity(db, args) -> tuple[str, str]:
    """Printed name and role: as given, else the account's."""
    name, role = args.name, args.role
    if (name is None or role is None) and "users" in db.table_names():
        row = db.conn.execute("SELECT full_name, role FROM users WHERE id = ?",
                              (args.user_id,)).fetchone()
        if row:
            name, role = name or row[0], role or row[1]
    if not name or not role:
        raise ConfigError(f"give --name and --role for {args.user_id}")
    return name, role


def _admin(db, args):
    """The administrator named by --by, confirmed by their password (audited like a login)."""
    from ..users import Authenticator, InlineRunner

    if "users" not in db.table_names() or db.conn.execute(
            "SELECT 1 FROM users WHERE id = ? AND role = 'admin' AND active = 1",
            (args.by_user,)).fetchone() is None:
        raise AuthError(f"--by {args.by_user}: not an active administrator of this database; "
                        "keys are revoked in the clinic's database by one of its administrators")
    password = read_password(args, f"Password of administrator {args.by_user}: ")
    return Authenticator(InlineRunner(db)).verify(args.by_user, password, purpose="revoke_key")


def run(args) -> int:
    from ..signing import (Keyring, current_key, enrol_key, get_key, import_keyring, list_keys,
                           revoke_key, rotate_key)

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
        name, role = _identity(db, args)
        password = read_password(args, f"Signing password for {args.user_id}: ", confirm=True)
        info = enrol_key(db, args.user_id, name, role, password)
        print(f"enrolled key {info.kid} for {info.printed_name} ({info.role})")
    elif args.keys_action == "rotate":
        name, role = _identity(db, args)
        before = current_key(db, args.user_id)  # AuthError if the user has no active key
        password = read_password(args, f"Signing password for {args.user_id}: ")
        info = rotate_key(db, args.user_id, password, printed_name=name, role=role)
        old = get_key(db, before.kid)
        print(f"rotated: key {old.kid} valid until {old.valid_to} (what it signed still "
              f"verifies); new key {info.kid} for {info.printed_name} ({info.role})")
    elif args.keys_action == "revoke":
        admin = _admin(db, args)
        info = revoke_key(db, args.kid, reason=args.reason, by_user_id=admin.id)
        print(f"revoked key {info.kid} of {info.user_id} at {info.revoked_at} by {admin.id}")
    return 0
