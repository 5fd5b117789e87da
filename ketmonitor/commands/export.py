"""``ketmonitor export``: sessions for auditors and physicians, as the signed record (json), tidy CSV,
FHIR R4 bundles, a PDF session report or the REMS patient monitoring form.

    ketmonitor export --db PATH --format {json,csv,fhir,pdf,rems} (--session ID | --since DATE
                      [--until DATE]) --out DIR

Dates are UTC (YYYY-MM-DD or ISO 8601). Every exported session is written to the audit trail.
Files and columns: docs/export.md.

Exit status: 0 when everything was exported and every signed session matches its signed record;
3 when the files were written but at least one signed session does not match its record (or a
signature fails) — each such session gets a WARNING line on stderr and is marked in its files;
2 for errors (one line on stderr, nothing exported).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import ExportError

NAME = "export"
EXIT_NOT_MATCHING = 3  # exported, but some session's rows or signatures do not verify
HELP = "export sessions as the signed record (json), CSV, FHIR R4, a PDF report or the REMS form"


def add_arguments(p) -> None:
    from ..export import FORMATS

    p.add_argument("--db", dest="export_db", metavar="PATH", help="session database")
    p.add_argument("--format", required=True, choices=list(FORMATS), help="what to write")
    p.add_argument("--session", action="append", metavar="ID",
                   help="a session to export (repeat for several)")
    p.add_argument("--since", metavar="DATE", help="sessions started on or after (UTC)")
    p.add_argument("--until", metavar="DATE", help="sessions started on or before (UTC; a date "
                                                   "includes the whole day)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the files (created)")
    p.add_argument("--user", metavar="ID", help="who exports, for the audit trail (default: the "
                                                "operating-system account)")
    p.add_argument("--overwrite", action="store_true", help="replace files already in DIR")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    from ..export import export_database, select_sessions
    from ..paths import default_db

    path = Path(args.export_db or getattr(args, "db", None) or default_db()).expanduser()
    result = export_database(
        path, args.format, args.out,
        lambda db: select_sessions(db, session_ids=args.session, since=args.since,
                                   until=args.until),
        user_id=args.user, overwrite=args.overwrite,
        progress=False if args.quiet else sys.stderr, origin="cli")
    for sid, why in result.skipped.items():
        print(f"ketmonitor export: skipped {sid}: {why}", file=sys.stderr)
    for warning in result.warnings:
        print(f"ketmonitor export: WARNING: {warning}", file=sys.stderr)
    print(f"exported {len(result.sessions)} session(s) as {args.format} to {result.folder} "
          f"({len(result.files)} files, {result.seconds:.1f} s)")
    if not result.sessions:  # pragma: no cover - export_sessions raises first
        raise ExportError("nothing exported")
    if result.flagged:
        where = ("listed in the export manifest" if args.format == "json"  # signed bytes only
                 else "marked in the files and the export manifest")
        print(f"ketmonitor export: {len(result.flagged)} session(s) do not match their signed "
              f"record; they are {where} (exit status 3)", file=sys.stderr)
        return EXIT_NOT_MATCHING
    return 0
