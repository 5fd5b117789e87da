"""Exports for physicians and auditors: the signed record (json), tidy CSV, FHIR R4 bundles, a PDF
session report and the REMS patient monitoring form. No Qt: runs on a server or an auditor's laptop.

    from ketmonitor.export import export_sessions, open_export_db, select_sessions
    db = open_export_db("clinic.db")
    export_sessions(db, select_sessions(db, since="2026-01-01"), "fhir", "out/", user_id="auditor1")

See docs/export.md for every file and column.
"""

from .runner import (FORMATS, MANIFEST, ExportCancelled, ExportResult, Output, Progress,
                     audit_export, default_user, export_database, export_sessions,
                     open_export_db)
from .selection import Selection, parse_date, select_sessions

__all__ = ["FORMATS", "MANIFEST", "ExportCancelled", "ExportResult", "Output", "Progress",
           "audit_export", "default_user", "export_database", "export_sessions", "open_export_db",
           "Selection", "parse_date", "select_sessions"]
