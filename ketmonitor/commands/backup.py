"""``ketmonitor backup``: a consistent copy of the session database, safe while the monitor runs.

    ketmonitor backup --db PATH --out FILE [--force]

Uses SQLite's online backup API over one read transaction: in WAL mode the monitor keeps writing
meanwhile, and the copy is the database as of one instant, with everything committed up to then
(also what is still in the -wal file, which a plain file copy of sessions.db would miss or tear).
The copy is checked (PRAGMA integrity_check), made a single self-contained file (rollback journal,
no -wal beside it), flushed to disk, and only then renamed to FILE. The source is only read.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from ..errors import ConfigError, StoreError

NAME = "backup"
HELP = "copy the session database safely while the monitor runs (SQLite online backup)"


def add_arguments(p) -> None:
    p.add_argument("--db", dest="backup_db", metavar="PATH",
                   help="session database (default: the workstation's database)")
    p.add_argument("--out", required=True, metavar="FILE", help="the backup file to write")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")


def backup_database(source: str | os.PathLike, out: str | os.PathLike, *,
                    force: bool = False) -> dict:
    """Copy ``source`` to ``out`` consistently; returns facts about the copy. Raises
    ConfigError/StoreError with a message for people."""
    source, out = Path(source).expanduser(), Path(out).expanduser()
    if not source.is_file():
        raise ConfigError(f"no database at {source}")
    if not out.parent.is_dir():
        raise ConfigError(f"cannot write {out}: folder {out.parent} does not exist")
    if out.exists() and not force:
        raise ConfigError(f"{out} exists; give --force to replace it")
    try:
        if out.resolve() == source.resolve():
            raise ConfigError("the backup cannot replace the database itself")
    except OSError:
        pass
    tmp = out.with_name(f".{out.name}.partial")
    tmp.unlink(missing_ok=True)
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {source}: {exc}") from None
    try:
        src.execute("PRAGMA busy_timeout=10000")
        dst = sqlite3.connect(str(tmp))
        try:
            src.backup(dst)  # all pages in one step: one read transaction, the writer goes on
            dst.execute("PRAGMA journal_mode=DELETE")
            check = dst.execute("PRAGMA integrity_check").fetchone()[0]
            if check != "ok":
                raise StoreError(f"the copy of {source} is damaged ({check}); nothing written")
            tables = {r[0] for r in dst.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            sessions = (dst.execute("SELECT count(*) FROM sessions").fetchone()[0]
                        if "sessions" in tables else 0)
        finally:
            dst.close()
    except sqlite3.Error as exc:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"cannot back up {source}: {exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    try:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"cannot write {out}: {exc.strerror or exc}") from None
    return {"source": str(source), "out": str(out), "bytes": out.stat().st_size,
            "sessions": sessions}


def run(args) -> int:
    from ..paths import default_db

    source = args.backup_db or getattr(args, "db", None) or default_db()
    facts = backup_database(source, args.out, force=args.force)
    print(f"backup of {facts['source']} written to {facts['out']} "
          f"({facts['bytes'] / 1e6:.1f} MB, {facts['sessions']} sessions, integrity ok)")
    return 0
