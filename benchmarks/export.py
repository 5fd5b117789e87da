"""Export time of many 2-hour sessions to FHIR and to PDF (and optionally the other formats).

    .venv/bin/python benchmarks/export.py [--sessions 100] [--formats fhir,pdf] [--keep DIR]

One session is made by the real pipeline (simulated oximeter and NIBP through the MonitorRuntime,
the esketamine walk-through, hypertensive-surge scenario: ~25,800 numerics, ~24,000 waveform
chunks, alarms, scales, doses, an amendment), then copied row for row under new session ids until
there are ``--sessions``; every session is sealed by the nurse and co-signed by the physician
(setup, not timed). The timed part is ``ketmonitor export --format F --since 2000-01-01 --out DIR``
run in-process through the CLI entry point, once per format, with FHIR validation on (as shipped).
Every format but json includes comparing each session's rows with its signed record; that check
alone (``signing.matching.check_session``: signatures, every row, every chunk re-hashed, patient and
clinic) is timed per session as well.
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ketmonitor.cli import main  # noqa: E402
from ketmonitor.signing import cosign, seal_session  # noqa: E402
from ketmonitor.signing.keys import unlock_key  # noqa: E402
from ketmonitor.store import open_db  # noqa: E402
from tests.factories import NURSE, PHYSICIAN, enrol_signers, monitored_session  # noqa: E402

SESSION_TABLES = ("numerics", "waveform_chunks", "device_status", "events", "doses",
                  "scale_entries", "check_results", "discharges", "amendments", "alarm_log",
                  "alarm_actions")


def _columns(conn, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")
            if not (r[1] == "id" and r[5]) and r[1] != "session_id"]


def clone(db, source: str, new_id: str) -> None:
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    cols = [c for c in _columns(conn, "sessions") if c not in ("id", "status")]
    conn.execute(f"INSERT INTO sessions (id, status, {', '.join(cols)}) SELECT ?, 'ended',"
                 f" {', '.join(cols)} FROM sessions WHERE id = ?", (new_id, source))
    for table in SESSION_TABLES:
        cols = ", ".join(_columns(conn, table))
        conn.execute(f"INSERT INTO {table} (session_id, {cols}) SELECT ?, {cols} FROM {table}"
                     " WHERE session_id = ?", (new_id, source))
    conn.execute("COMMIT")


def build(db_path: Path, n: int) -> list[str]:
    t = time.perf_counter()
    first = monitored_session(db_path)
    print(f"real-pipeline session {first}: {time.perf_counter() - t:.1f} s", flush=True)
    db = open_db(db_path)
    enrol_signers(db)
    nurse = unlock_key(db, NURSE[0], NURSE[3])
    doctor = unlock_key(db, PHYSICIAN[0], PHYSICIAN[3])
    ids = [first] + [f"bench-{i:03d}" for i in range(1, n)]
    t = time.perf_counter()
    for sid in ids[1:]:
        clone(db, first, sid)
    for i, sid in enumerate(ids):
        rec = seal_session(db, sid, NURSE[0], nurse)
        cosign(db, rec.record_id, PHYSICIAN[0], doctor, "review")
        if (i + 1) % 10 == 0:
            print(f"  sealed and co-signed {i + 1}/{n}", flush=True)
    counts = db.conn.execute("SELECT count(*) FROM numerics").fetchone()[0]
    db.conn.close()
    print(f"copied and signed {n} sessions ({counts} numerics rows): "
          f"{time.perf_counter() - t:.1f} s", flush=True)
    return ids


def _export(db_path: Path, fmt: str, out: Path) -> tuple[float, str]:
    shutil.rmtree(out, ignore_errors=True)
    argv = ["export", "--db", str(db_path), "--format", fmt, "--since", "2000-01-01",
            "--out", str(out), "--quiet"]
    t = time.perf_counter()
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()) as se:
        rc = main(argv)
    dt = time.perf_counter() - t
    if rc != 0:
        raise RuntimeError(f"export {fmt} failed: {se.getvalue().strip()}")
    return dt, " ".join(argv)


def time_checks(db_path: Path, limit: int = 10) -> list[float]:
    """Seconds of ``check_session`` for each of the first ``limit`` sessions."""
    from ketmonitor.signing.matching import check_session

    db = open_db(db_path)
    try:
        ids = [r[0] for r in db.conn.execute("SELECT id FROM sessions ORDER BY id LIMIT ?",
                                             (limit,))]
        out = []
        for sid in ids:
            t = time.perf_counter()
            check = check_session(db, sid)
            out.append(time.perf_counter() - t)
            if not check.matches:
                raise RuntimeError(f"session {sid}: {check.status}: {check.summary()}")
        return out
    finally:
        db.conn.close()


def figures(quick: bool = False) -> list:
    """For ``python -m benchmarks``: each run exports every session once per format."""
    from benchmarks.harness import Figure

    n, runs = (10, 2) if quick else (100, 3)
    work = Path(tempfile.mkdtemp(prefix="ketmonitor-export-"))
    out = []
    try:
        db_path = work / "clinic.db"
        with redirect_stdout(io.StringIO()):
            build(db_path, n)
        for fmt, label in (("fhir", "FHIR R4 bundles, validated"), ("pdf", "PDF reports")):
            times = []
            for _ in range(runs):
                dt, _cmd = _export(db_path, fmt, work / f"out-{fmt}")
                times.append(dt)
            files = [p for p in (work / f"out-{fmt}").iterdir() if p.name != "export-manifest.json"]
            size = sum(p.stat().st_size for p in files) / 1e6
            out.append(Figure(
                f"export.{fmt}_{n}", f"Export {n} sessions to {fmt.upper()}", "s", times, "",
                f"{label}: `ketmonitor export --format {fmt}` in-process over {n} sealed and "
                f"co-signed sessions (each a copy of one real-pipeline session: ~25,800 numerics, "
                f"~24,000 pleth chunks); {len(files)} files, {size:.1f} MB; "
                f"{statistics.median(times) / n * 1000:.0f} ms a session"))
        out.append(Figure(
            "export.record_check_2h", "  of which: compare a 2-hour session with its record", "ms",
            [t * 1000 for t in time_checks(db_path)], "",
            "check_session, done before exporting a signed session in every format but json: "
            "signatures, every row of every session table, every pleth chunk re-hashed, patient "
            "and clinic"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def main_(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=100)
    ap.add_argument("--formats", default="fhir,pdf")
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (default: a temp dir)")
    args = ap.parse_args(argv)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="ketmonitor-export-"))
    work.mkdir(parents=True, exist_ok=True)
    db_path = work / "clinic.db"
    try:
        if not db_path.exists():
            build(db_path, args.sessions)
        for fmt in args.formats.split(","):
            out = work / f"out-{fmt}"
            shutil.rmtree(out, ignore_errors=True)
            argv = ["export", "--db", str(db_path), "--format", fmt, "--since", "2000-01-01",
                    "--out", str(out), "--quiet"]
            t = time.perf_counter()
            with redirect_stdout(io.StringIO()) as so, redirect_stderr(io.StringIO()) as se:
                rc = main(argv)
            dt = time.perf_counter() - t
            if rc != 0:
                print(f"{fmt}: failed: {se.getvalue().strip()}")
                return 1
            files = [p for p in out.iterdir() if p.name != "export-manifest.json"]
            size = sum(p.stat().st_size for p in files)
            print(f"{fmt}: {so.getvalue().strip()} — {dt:.1f} s wall, {dt / args.sessions:.3f} s "
                  f"per session, {len(files)} files, {size / 1e6:.1f} MB")
            print(f"  command: ketmonitor {' '.join(argv)}")
        checks = time_checks(db_path)
        print(f"record check (signatures + every row vs the signed record), per 2-hour session: "
              f"median {statistics.median(checks):.3f} s (min {min(checks):.3f}, max "
              f"{max(checks):.3f}, {len(checks)} sessions)")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main_())
