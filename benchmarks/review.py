"""Opening a 2-hour session in the review screen, and the session browser on thousands of sessions.

    .venv/bin/python benchmarks/review.py [--repeat 5] [--speed 600]

The session is made by the real pipeline (simulated oximeter and NIBP on a ScaledClock feeding the
MonitorRuntime, the demo walk-through of the esketamine protocol: 2 h 13 min of monitoring) and
sealed by the nurse. Reported, in seconds (median of ``--repeat`` runs, each on a fresh window):

- open: ``ReviewWindow(...)`` until the session is shown with its record check and painted once
  (the window's executor loads and audits the timeline and compares the session with its signed
  record; the Qt thread then builds every plot and the entry list);
- the longest the Qt thread was busy at a stretch meanwhile (a 5 ms timer's largest gap): what a
  monitor beside the review window would freeze for;
- of which the core load (``load_timeline``) alone;
- zooming to a 10-minute window: reading that range of pleth chunks and drawing it;
- the browser's first page (filters: protocol + high alarms, and none) on 3000 sessions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _session(folder: Path, speed: float):
    from tests.review_factories import record_session, seal, setup_clinic

    path = folder / "review-bench.db"
    staff = setup_clinic(path)
    t = time.perf_counter()
    sid = record_session(path, protocol="esketamine-intranasal", scenario="hypertensive-surge",
                         seed=7, speed=speed)
    made = time.perf_counter() - t
    seal(path, sid)
    return path, sid, staff, made


def measure(repeat: int = 5, speed: float = 600.0) -> dict:
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtTest import QTest

    from ketmonitor import review
    from ketmonitor.review import SessionFilter, list_sessions
    from ketmonitor.store import open_db
    from tests.review_factories import many_sessions
    from benchmarks.ui import _app
    from ui.review import ReviewWindow

    _app()  # the QApplication the windows need
    out = {k: [] for k in ("open", "stall", "load", "zoom", "browse", "browse_filtered")}
    with tempfile.TemporaryDirectory() as tmp:
        path, sid, staff, made = _session(Path(tmp), speed)
        db = open_db(path)
        info = {"numerics": db.conn.execute("SELECT count(*) FROM numerics WHERE session_id = ?",
                                            (sid,)).fetchone()[0],
                "chunks": db.conn.execute("SELECT count(*) FROM waveform_chunks WHERE session_id"
                                          " = ?", (sid,)).fetchone()[0],
                "made_s": made}
        for _ in range(repeat):
            t = time.perf_counter()
            tl = review.load_timeline(db, sid, viewer_id=staff.doctor.id)
            out["load"].append(time.perf_counter() - t)
            info["minutes"] = tl.duration_s / 60
            ticks = [time.perf_counter()]
            timer = QTimer()
            timer.setInterval(5)
            timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
            timer.start()
            t = time.perf_counter()
            w = ReviewWindow(db, sid, staff.doctor)
            w.resize(1700, 1000)
            w.show()
            # wait as the application does, in an event loop (QTest.qWait would hold the GIL and
            # slow the window's executor several times over)
            loop = QEventLoop()
            done = QTimer()
            done.setInterval(1)
            done.timeout.connect(lambda: w.ready() and loop.quit())
            done.start()
            loop.exec()
            done.stop()
            if not w.ready():  # exec() returned early: a quit() left pending by another suite
                raise RuntimeError("the event loop ended before the review window was ready")
            if w.load_error:
                raise RuntimeError(f"the review window could not open the session: {w.load_error}")
            w.grab()  # one full paint
            out["open"].append(time.perf_counter() - t)
            ticks.append(time.perf_counter())
            timer.stop()
            out["stall"].append(max(b - a for a, b in zip(ticks, ticks[1:])))
            t = time.perf_counter()
            w.plot.show_range(3000.0, 3600.0)
            w.plot.update_waveform()  # what the debounce timer runs
            w.plot.grab()
            out["zoom"].append(time.perf_counter() - t)
            info["zoom_samples"] = w.plot.visible_samples()
            w.close()
            QTest.qWait(10)
        db.conn.close()
        many, _expect = many_sessions(Path(tmp) / "many.db", 3000)
        f = SessionFilter(protocol="im-injection", high_alarms=True)
        for _ in range(repeat):
            t = time.perf_counter()
            list_sessions(many, SessionFilter(), limit=200)
            out["browse"].append(time.perf_counter() - t)
            t = time.perf_counter()
            list_sessions(many, f, limit=200)
            out["browse_filtered"].append(time.perf_counter() - t)
        many.conn.close()
    out["info"] = info
    return out


def figures(quick: bool = False) -> list:
    from benchmarks.harness import Figure

    m = measure(repeat=2 if quick else 5, speed=1500.0 if quick else 600.0)
    from benchmarks.ui import settle_qt

    settle_qt()  # review windows are destroyed here, on the main thread
    i = m["info"]
    size = (f"{i['minutes']:.0f}-minute session from the real pipeline: {i['numerics']:,} numeric "
            f"rows, {i['chunks']:,} pleth chunks")
    ms = lambda xs: [x * 1000 for x in xs]  # noqa: E731
    return [
        Figure("review.open_2h", "Open a 2-hour session in the review screen", "s", m["open"],
               "< 1", size + "; ReviewWindow constructed until the session is shown with its "
               "record check and painted once (on the window's executor: timeline loaded and "
               "audited, signatures verified, every row compared with the signed record; on the "
               "Qt thread: plots and entry list built)"),
        Figure("review.open_2h_stall", "  longest Qt-thread stall while opening", "ms",
               ms(m["stall"]), "", "largest gap of a 5 ms QTimer on the Qt thread: what the "
               "bedside monitor beside the review window would freeze for (building the plots)"),
        Figure("review.load_2h", "  of which: load_timeline (core)", "s", m["load"]),
        Figure("review.zoom_10min", "Zoom to 10 minutes: load and draw that pleth", "ms",
               ms(m["zoom"]), "< 500", f"{i['zoom_samples']:,} samples read from the chunks of "
               "the visible range only"),
        Figure("review.browse_3000", "Session browser first page, 3000 sessions", "ms",
               ms(m["browse"]), "< 200", "list_sessions, no filter, 200 rows"),
        Figure("review.browse_3000_filtered", "  filtered (protocol + high alarms)", "ms",
               ms(m["browse_filtered"]), "< 200"),
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--speed", type=float, default=600.0,
                    help="simulated seconds per real second while making the session")
    args = ap.parse_args()
    m = measure(args.repeat, args.speed)
    i = m["info"]
    print(f"session: {i['minutes']:.0f} min, {i['numerics']:,} numerics, {i['chunks']:,} pleth "
          f"chunks (made in {i['made_s']:.1f} s at speed {args.speed:g})")
    for key, label, scale, unit in (
            ("open", "open in the review screen", 1, "s"),
            ("stall", "  longest Qt-thread stall", 1000, "ms"),
            ("load", "  of which load_timeline", 1, "s"),
            ("zoom", "zoom to 10 min (pleth read + draw)", 1000, "ms"),
            ("browse", "browser page, 3000 sessions", 1000, "ms"),
            ("browse_filtered", "  filtered", 1000, "ms")):
        xs = [x * scale for x in m[key]]
        print(f"{label:<38} median {statistics.median(xs):8.3f} {unit}   "
              f"(min {min(xs):.3f}, max {max(xs):.3f}, {len(xs)} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
