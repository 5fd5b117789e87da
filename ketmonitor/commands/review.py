"""``ketmonitor review``: browse sessions, review one on its timeline, co-sign or add an addendum.

    ketmonitor review --db PATH [--session ID] [--user ID]

Needs a display (the review screens are Qt); the session is checked before any window opens.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from ..errors import ConfigError
from ..paths import default_db, has_display

NAME = "review"
HELP = "review sessions: browse, open a session's timeline, co-sign or add an addendum (GUI)"


def add_arguments(p) -> None:
    p.add_argument("--db", dest="review_db", metavar="PATH", help="session database")
    p.add_argument("--session", metavar="ID", help="open this session's review screen at once")
    p.add_argument("--user", metavar="ID", help="user id to log in as (the password is asked)")


def run(args) -> int:
    from ..store import open_db

    path = Path(args.review_db or getattr(args, "db", None) or default_db()).expanduser()
    if not path.exists():
        raise ConfigError(f"no database at {path}")
    if args.session:
        db = open_db(path, readonly=True)
        try:
            found = db.conn.execute("SELECT 1 FROM sessions WHERE id = ?", (args.session,)).fetchone()
        finally:
            db.conn.close()
        if found is None:
            raise ConfigError(f"no session {args.session} in {path} (see 'ketmonitor sessions')")
    if not has_display():
        raise ConfigError("no display found: the review screens need one (set DISPLAY); "
                          "'ketmonitor export' and 'ketmonitor verify' work without")
    ui_review = importlib.import_module("ui.review.app")  # Qt only on this path
    return ui_review.run_review(args, path, args.session)
