"""``ketmonitor sessions``: list sessions, and close the ones a crash left open."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from ..paths import default_db

NAME = "sessions"
HELP = "list sessions; find and close sessions left unfinished by a crash"


def add_arguments(p) -> None:
    p.add_argument("--db", dest="sessions_db", metavar="PATH", help="session database")
    p.add_argument("--unfinished", action="store_true", help="only sessions left open")
    p.add_argument("--close", metavar="ID", help="close an unfinished session (status 'abandoned')")
    p.add_argument("--reason", default="closed after an interrupted run")


def run(args) -> int:
    from ..sessions import ABANDONED, end_session, unfinished_sessions
    from ..store import open_db

    path = Path(args.sessions_db or getattr(args, "db", None) or default_db()).expanduser()
    if not path.exists():
        raise ConfigError(f"no database at {path}")
    db = open_db(path)
    if args.close:
        ids = {s["id"] for s in unfinished_sessions(db)}
        if args.close not in ids:
            raise ConfigError(f"session {args.close} is not an unfinished session in {path}")
        with db.conn:
            db.conn.execute("BEGIN IMMEDIATE")
            end_session(db, args.close, status=ABANDONED, reason=args.reason)
        print(f"closed {args.close}")
        return 0
    rows = unfinished_sessions(db) if args.unfinished else [dict(r) for r in db.query(
        "SELECT id, started_utc, ended_utc, status, protocol, scenario FROM sessions"
        " ORDER BY started_utc DESC")]
    for r in rows:
        print("  ".join(str(r.get(k) or "-") for k in ("id", "started_utc", "ended_utc", "status",
                                                        "protocol", "scenario")))
    return 0
