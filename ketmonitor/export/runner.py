"""Running an export: the output folder, atomic files, progress, the manifest and the audit trail.

Before a session is exported in any format but json (which is the signed bytes themselves), its
rows are compared with its signed record (``signing.matching.check_session``) in the same read
snapshot the export reads them from; a session whose record the audit trail says was signed and the
database no longer holds (deleted) fails that check too, in every format (json:
``matching.deleted_check``). A session that does not match is still exported (an auditor needs to
see it) but every format marks it, the manifest and the audit entry carry the finding, and
``ExportResult.flagged`` lists it (``ketmonitor export`` then exits 3). A json export skips a
session whose record was deleted, saying so.

Every exported session gets an audit entry (``session.exported``: format, files, their SHA-256, row
counts and the record check) written in its own BEGIN IMMEDIATE transaction right after its files
are on disk; the run ends with ``export.completed`` (or ``export.cancelled``) carrying the
manifest's SHA-256. A database that cannot take these entries (read-only file) is refused before
anything is written.
"""

from __future__ import annotations

import getpass
import hashlib
import importlib
import json
import os
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TextIO

from ..audit import append_audit, audit_head
from ..clock import utc_iso
from ..errors import ExportError, StoreError
from ..signing._db import read_snapshot, write_transaction
from ..signing.matching import check_session, deleted_check
from .selection import Selection

FORMATS = {"json": "json_export", "csv": "csv_export", "fhir": "fhir_export", "pdf": "pdf_export",
           "rems": "rems_export"}
MANIFEST = "export-manifest.json"


def default_user() -> str:
    """Who runs a command-line export when no --user is given: the operating-system account."""
    try:
        return "os:" + getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name (container, service)
        return "os:unknown"


class Output:
    """The export folder. Files are written atomically (temp file, fsync, rename); existing files
    are never replaced unless ``overwrite``."""

    def __init__(self, folder, *, overwrite: bool = False):
        self.folder = Path(folder).expanduser()
        self.overwrite = overwrite
        self.files: dict[str, str] = {}  # name -> sha256
        self._check()

    def _check(self) -> None:
        f = self.folder
        if f.exists() and not f.is_dir():
            raise ExportError(f"cannot export to {f}: it is a file, not a folder")
        try:
            f.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ExportError(f"cannot create the export folder {f}: {exc.strerror or exc}") from None
        probe = f / f".ketmonitor-write-test-{os.getpid()}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ExportError(f"the export folder {f} is not writable: {exc.strerror or exc}") \
                from None

    def path(self, name: str) -> Path:
        p = self.folder / name
        if p.exists() and not self.overwrite and name not in self.files:
            raise ExportError(f"{p} already exists: export into an empty folder or pass --overwrite")
        return p

    def write(self, name: str, data: bytes) -> Path:
        p = self.path(name)
        tmp = p.with_name(p.name + ".tmp")
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, p)
        except OSError as exc:
            raise ExportError(f"cannot write {p}: {exc.strerror or exc}") from None
        self.files[name] = hashlib.sha256(data).hexdigest()
        return p

    def register(self, name: str) -> None:
        """A file a format wrote itself (streamed): hash it for the manifest."""
        h = hashlib.sha256()
        with open(self.folder / name, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        self.files[name] = h.hexdigest()


class Progress:
    """A plain-text progress bar on stderr: redrawn in place on a terminal, a line per tenth
    otherwise (logs stay readable). Silent for a single session."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None, width: int = 30):
        self.total, self.label, self.width = total, label, width
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_tenth = -1
        self.t0 = time.monotonic()

    def update(self, done: int, current: str = "") -> None:
        if self.total <= 1:
            return
        frac = done / self.total
        if self.tty:
            bar = "#" * int(frac * self.width)
            self.stream.write(f"\r{self.label} [{bar:<{self.width}}] {done}/{self.total} "
                              f"{current[:36]:<36}")
            if done == self.total:
                self.stream.write("\n")
        else:
            tenth = int(frac * 10)
            if tenth == self._last_tenth and done != self.total:
                return
            self._last_tenth = tenth
            self.stream.write(f"{self.label}: {done}/{self.total} sessions ({frac:.0%}, "
                              f"{time.monotonic() - self.t0:.1f} s)\n")
        self.stream.flush()


@dataclass
class ExportResult:
    format: str
    folder: Path
    sessions: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # session id -> why
    warnings: list[str] = field(default_factory=list)  # e.g. rows that differ from the record
    files: dict[str, str] = field(default_factory=dict)  # name -> sha256
    seconds: float = 0.0
    checks: dict = field(default_factory=dict)  # session id -> RecordCheck (not for json)
    cancelled: bool = False  # stopped on request: the sessions listed were exported, no others

    @property
    def flagged(self) -> list[str]:
        """Exported sessions whose rows or signatures do not verify against the signed record."""
        return [sid for sid in self.sessions if sid in self.checks and self.checks[sid].flagged]


class ExportCancelled(ExportError):
    """The export was cancelled before any session was written."""


def _check_audit_writable(db) -> None:
    try:
        with write_transaction(db):
            pass
    except sqlite3.OperationalError as exc:
        raise ExportError(f"the database cannot record the export in its audit trail ({exc}); "
                          "exports are always audited: use a writable copy") from None


def audit_export(db, *, user_id: str, session_id: str | None, fmt: str, detail: dict,
                 action: str = "session.exported") -> str:
    with write_transaction(db):
        return append_audit(db, action, user_id=user_id, session_id=session_id,
                            entity="session" if session_id else "export", entity_id=session_id,
                            detail={"format": fmt, **detail})


def exporter_module(fmt: str):
    try:
        return importlib.import_module(f"{__package__}.{FORMATS[fmt]}")
    except KeyError:
        raise ExportError(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}") from None


def export_sessions(db, selection: Selection, fmt: str, folder, *, user_id: str | None = None,
                    overwrite: bool = False, progress: TextIO | None | bool = None,
                    db_path: str | None = None,
                    on_progress: Callable[[int, int, str], None] | None = None,
                    cancel=None, origin: str = "library") -> ExportResult:
    """Export the selected sessions in ``fmt`` into ``folder``; audited.

    ``progress``: a stream for the text progress bar (default stderr), or False for none;
    ``on_progress(done, total, session_id)`` is called after each session (from this thread);
    ``cancel`` (a ``threading.Event``) stops the export before the next session: the sessions
    already exported keep their files and the run is finished and audited as cancelled.
    ``origin`` says where the export was asked for (``cli``, ``review browser``), for the audit.
    """
    module = exporter_module(fmt)
    user_id = user_id or default_user()
    _check_audit_writable(db)
    out = Output(folder, overwrite=overwrite)
    result = ExportResult(fmt, out.folder)
    t0 = time.perf_counter()
    total = len(selection.session_ids)
    bar = None if progress is False else Progress(total, f"export {fmt}",
                                                  None if progress in (None, True) else progress)
    exporter = module.Exporter(db, out)
    from .data import load_session

    conn = db.conn
    try:
        for i, sid in enumerate(selection.session_ids, 1):
            if cancel is not None and cancel.is_set():
                result.cancelled = True
                break
            with read_snapshot(conn):  # the check and the export read the same rows
                # json writes the stored records as they are: only whether one was deleted
                check = deleted_check(db, sid) if fmt == "json" else check_session(db, sid)
                data = None
                if exporter.needs_data:
                    data = load_session(db, sid, numerics=getattr(exporter, "needs_numerics", True))
                    data.use_check(check)
                try:
                    written = exporter.add(sid, data)
                except ExportError as exc:
                    if check is not None and check.flagged:  # not "sign it first": it was signed
                        exc = ExportError(f"session {sid}: {check.headline()}")
                    if total == 1:
                        raise exc from None
                    result.skipped[sid] = str(exc)
                    written = None
            if written is not None:
                files = {name: out.files.get(name) for name in written.get("files", ())}
                extra = {k: v for k, v in written.items() if k not in ("files", "warnings")}
                if check is not None:
                    extra["record_check"] = check.as_dict()
                    result.checks[sid] = check
                audit_export(db, user_id=user_id, session_id=sid, fmt=fmt,
                             detail={"folder": str(out.folder), "files": files, "origin": origin,
                                     **extra})
                result.sessions.append(sid)
                if check is not None and check.flagged:
                    result.warnings.append(f"session {sid}: {check.headline()}")
                result.warnings += [f"session {sid}: {w}" for w in written.get("warnings", ())]
            if bar:
                bar.update(i, sid)
            if on_progress is not None:
                on_progress(i, total, sid)
    except BaseException:
        getattr(exporter, "abort", lambda: None)()
        raise
    if result.sessions:
        exporter.finish()
    else:
        getattr(exporter, "abort", lambda: None)()
    if not result.sessions:
        if result.cancelled:
            raise ExportCancelled("export cancelled before any session was written")
        raise ExportError("nothing exported: " + "; ".join(f"{k}: {v}" for k, v in
                                                           result.skipped.items()))
    result.seconds = time.perf_counter() - t0
    seq, head = audit_head(db)  # after this export's session.exported rows
    manifest = {
        "format": "ketmonitor.export-manifest", "format_version": 1,
        "export_format": fmt, "created_utc": utc_iso(time.time()), "user_id": user_id,
        "origin": origin, "database": db_path, "selection": selection.description,
        # the audit trail as it stood: 'ketmonitor verify --db PATH --expect-head SEQ:HASH' later
        # proves it still holds these rows unchanged (nothing signed covers the latest rows)
        "audit_head": {"seq": seq, "hash": head, "expect_head": f"{seq}:{head}"},
        "sessions": result.sessions, "skipped": result.skipped, "warnings": result.warnings,
        "files": dict(sorted(out.files.items())),
    }
    if fmt != "json":
        manifest["record_checks"] = {sid: result.checks[sid].as_dict() for sid in result.sessions}
    if fmt != "json" or result.flagged:
        manifest["not_matching_signed_record"] = result.flagged
    if result.cancelled:
        manifest["cancelled"] = (f"cancelled after {len(result.sessions) + len(result.skipped)} of "
                                 f"{total} sessions; the others were not exported")
    data = json.dumps(manifest, indent=1, sort_keys=True).encode()
    out.write(MANIFEST, data)
    audit_export(db, user_id=user_id, session_id=None, fmt=fmt,
                 action="export.cancelled" if result.cancelled else "export.completed",
                 detail={"folder": str(out.folder), "sessions": len(result.sessions),
                         "skipped": len(result.skipped), "selection": selection.description,
                         "origin": origin, "not_matching_signed_record": result.flagged,
                         "manifest_sha256": out.files[MANIFEST]})
    result.files = dict(out.files)
    return result


def export_database(db_path, fmt: str, folder, choose: Callable[..., Selection],
                    **options) -> ExportResult:
    """The whole export as ``ketmonitor export`` and the review browser run it: open the database
    at ``db_path`` on a connection of its own (so this may run on a worker thread), choose the
    sessions with ``choose(db) -> Selection``, ``export_sessions(..., **options)``, close."""
    path = Path(db_path).expanduser()
    db = open_export_db(path)
    try:
        return export_sessions(db, choose(db), fmt, folder, db_path=str(path), **options)
    finally:
        db.conn.close()


def open_export_db(path):
    """The database to export from: must exist; opened for writing (the audit trail)."""
    from ..store import open_db

    p = Path(path).expanduser()
    if not p.exists():
        raise ExportError(f"no database at {p}")
    if not os.access(p, os.W_OK):
        raise ExportError(f"database {p} is read-only: exports are recorded in its audit trail, "
                          "export from a writable copy")
    try:
        return open_db(p)
    except StoreError as exc:
        raise ExportError(str(exc)) from None
