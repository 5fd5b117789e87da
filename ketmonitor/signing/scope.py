"""Which tables belong to a session, found from the schema itself.

Other features add their own session tables (doses, scale entries, alarms, amendments...). Rather than
hard-code their names, the record and the sealing triggers take every table whose ``session_id``
column points at ``sessions`` (or declares no foreign key at all), plus their direct child tables
(rows whose foreign key points at such a table, e.g. the item scores of a scale entry).

Columns that look like secrets (passwords, salts, private keys) never enter a record.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

# Tables that are never part of a session record: the record machinery itself, the audit trail
# (the record commits to its head instead), keys and settings.
EXCLUDED_TABLES = {"sessions", "audit_log", "signing_keys", "session_records", "record_signatures",
                   "settings"}


def exclude_from_record(*tables: str) -> None:
    """Keep tables out of every session record and out of the sealing triggers: for tables that
    legitimately gain rows about a session after it is signed (an export log, a view log).

    Call it at import time of the migration module that creates the table, so every process that
    opens a database (which loads all migrations) builds records the same way.
    """
    EXCLUDED_TABLES.update(tables)
# Session columns that change after sealing as part of the normal workflow.
MUTABLE_SESSION_COLUMNS = frozenset({"status", "state", "last_seen_utc"})
# BLOB columns committed to through a digest column that the record carries instead.
DIGESTED_BLOBS = {("waveform_chunks", "samples"): "sha256"}
_SECRET = re.compile(r"password|passwd|secret|private|salt|pin_hash|token", re.I)


@dataclass(frozen=True)
class TableScope:
    name: str
    columns: tuple[str, ...]          # what the record holds, in declared order
    pk: str | None                    # single INTEGER/TEXT primary key column, if any
    parent: str | None = None         # for child tables: the session table they hang off
    from_col: str | None = None       # child column ...
    to_col: str | None = None         # ... pointing at this parent column

    def select_sql(self) -> tuple[str, str]:
        """(SQL selecting this table's rows of one session (one ? parameter), ORDER BY clause)."""
        cols = ", ".join(_q(c) for c in self.columns)
        order = ", ".join(_q(c) for c in ((self.pk,) if self.pk else ()) + self.columns)
        return f"SELECT {cols} {self.from_where()}", order

    def from_where(self) -> str:
        """``FROM ... WHERE ...`` of this table's rows of one session (one ? parameter)."""
        if self.parent is None:
            where = "session_id = ?"
        else:
            where = (f"{_q(self.from_col)} IN (SELECT {_q(self.to_col)} FROM {_q(self.parent)}"
                     " WHERE session_id = ?)")
        return f"FROM {_q(self.name)} WHERE {where}"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def table_columns(conn: sqlite3.Connection, table: str) -> list[tuple[str, str, int]]:
    """[(name, declared type, pk position)] of a table."""
    return [(r[1], (r[2] or "").upper(), r[5])
            for r in conn.execute(f"PRAGMA table_info({_q(table)})")]


def _foreign_keys(conn, table) -> list[tuple[str, str, str | None]]:
    return [(r[3], r[2], r[4]) for r in conn.execute(f"PRAGMA foreign_key_list({_q(table)})")]


def _tables(conn) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
        " ORDER BY name")]


def _single_pk(cols) -> str | None:
    pks = [c for c, _t, pk in cols if pk]
    return pks[0] if len(pks) == 1 else None


def session_tables(conn: sqlite3.Connection) -> list[TableScope]:
    """Every table holding rows of a session, core tables first, then by name."""
    found: dict[str, TableScope] = {}
    names = [t for t in _tables(conn) if t not in EXCLUDED_TABLES and not t.startswith("_")]
    for name in names:
        cols = table_columns(conn, name)
        colnames = [c for c, _t, _pk in cols]
        if "session_id" not in colnames:
            continue
        fk_targets = {parent for frm, parent, _to in _foreign_keys(conn, name) if frm == "session_id"}
        if fk_targets and fk_targets != {"sessions"}:
            continue  # a session of something else (e.g. a login session)
        keep = tuple(c for c in colnames if c != "session_id" and not _SECRET.search(c)
                     and (name, c) not in DIGESTED_BLOBS)
        found[name] = TableScope(name, keep, _single_pk(cols))
    for name in names:
        if name in found:
            continue
        cols = table_columns(conn, name)
        for frm, parent, to in _foreign_keys(conn, name):
            if parent in found and found[parent].parent is None:
                to = to or _single_pk(table_columns(conn, parent)) or "rowid"
                keep = tuple(c for c, _t, _pk in cols if not _SECRET.search(c))
                found[name] = TableScope(name, keep, _single_pk(cols), parent, frm, to)
                break
    core = ["numerics", "waveform_chunks", "device_status", "events"]
    return sorted(found.values(), key=lambda s: (s.name not in core,
                                                 core.index(s.name) if s.name in core else 0,
                                                 s.name))


def session_columns(conn: sqlite3.Connection) -> list[str]:
    """Columns of ``sessions`` fixed once the session is sealed."""
    return [c for c, _t, _pk in table_columns(conn, "sessions")
            if c not in MUTABLE_SESSION_COLUMNS and not _SECRET.search(c)]


_SEALED = "EXISTS (SELECT 1 FROM session_records WHERE session_id = {sid})"


def sealed_triggers(conn: sqlite3.Connection) -> list[str]:
    """Triggers refusing UPDATE and DELETE on the rows of sealed (signed) sessions.

    Idempotent (IF NOT EXISTS): a later migration that adds a session table calls
    ``protect_sealed_tables`` again. INSERT stays allowed on purpose: a late sample must not make the
    store writer's batch fail forever; ``verify_db`` reports any row that is not in the signed record.
    """
    out = []
    for t in session_tables(conn):
        if t.parent is None:
            cond_old = _SEALED.format(sid="OLD.session_id")
            cond_new = _SEALED.format(sid="NEW.session_id")
        else:
            sub = (f"EXISTS (SELECT 1 FROM {_q(t.parent)} p JOIN session_records r"
                   f" ON r.session_id = p.session_id WHERE p.{_q(t.to_col)} = {{v}}.{_q(t.from_col)})")
            cond_old, cond_new = sub.format(v="OLD"), sub.format(v="NEW")
        msg = f"{t.name}: rows of a signed session cannot be changed (add an addendum)"
        trig = re.sub(r"\W", "_", t.name)
        out.append(f"CREATE TRIGGER IF NOT EXISTS {trig}_sealed_no_update BEFORE UPDATE ON {_q(t.name)}"
                   f" WHEN {cond_old} OR {cond_new} BEGIN SELECT RAISE(ABORT, '{msg}'); END;")
        out.append(f"CREATE TRIGGER IF NOT EXISTS {trig}_sealed_no_delete BEFORE DELETE ON {_q(t.name)}"
                   f" WHEN {cond_old} BEGIN SELECT RAISE(ABORT, '{msg}'); END;")
    fixed = session_columns(conn)
    changed = " OR ".join(f"OLD.{_q(c)} IS NOT NEW.{_q(c)}" for c in fixed) or "0"
    msg = "sessions: a signed session cannot be changed (add an addendum)"
    out.append("CREATE TRIGGER IF NOT EXISTS sessions_sealed_no_update BEFORE UPDATE ON sessions"
               f" WHEN {_SEALED.format(sid='OLD.id')} AND ({changed})"
               f" BEGIN SELECT RAISE(ABORT, '{msg}'); END;")
    out.append("CREATE TRIGGER IF NOT EXISTS sessions_sealed_no_delete BEFORE DELETE ON sessions"
               f" WHEN {_SEALED.format(sid='OLD.id')} BEGIN SELECT RAISE(ABORT, '{msg}'); END;")
    return out


def protect_sealed_tables(conn: sqlite3.Connection) -> None:
    """Install the sealed-session triggers on every session table that lacks them."""
    for statement in sealed_triggers(conn):
        conn.execute(statement)
