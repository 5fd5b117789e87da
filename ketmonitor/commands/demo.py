"""``ketmonitor demo``: a whole simulated session, on screen or headless."""

from __future__ import annotations

import importlib
import time
from pathlib import Path

from ..clock import ScaledClock
from ..errors import ConfigError
from ..paths import default_db, has_display

NAME = "demo"
HELP = "run a simulated ketamine session (GUI, or --headless without Qt)"
SCENARIOS = ("uneventful", "hypertensive-surge", "desaturation", "probe-off", "device-disconnect")


def add_arguments(p) -> None:
    p.add_argument("--headless", action="store_true", help="no GUI: run, store, print a summary")
    p.add_argument("--minutes", type=float, default=None,
                   help="simulated minutes to run (headless default 60)")
    p.add_argument("--speed", type=float, default=None,
                   help="simulated seconds per real second (headless default 600, GUI default 1)")
    p.add_argument("--scenario", choices=SCENARIOS, default="uneventful")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--protocol", default=None, help="protocol template to walk through")
    p.add_argument("--screenshot", metavar="FILE.png",
                   help="run the GUI offscreen for --minutes, save the window, exit")
    p.add_argument("--db", dest="demo_db", metavar="PATH", help="session database")


def _db_path(args) -> Path:
    path = args.demo_db or getattr(args, "db", None) or default_db()
    return Path(path).expanduser()


def run(args) -> int:
    if args.minutes is not None and args.minutes <= 0:
        raise ConfigError("--minutes must be positive")
    if args.speed is not None and args.speed <= 0:
        raise ConfigError("--speed must be positive")
    if args.headless:
        return run_headless(args)
    if args.screenshot is None and not has_display():
        raise ConfigError("no display found; run 'ketmonitor demo --headless' to simulate without a "
                          "screen (or set DISPLAY)")
    ui_app = importlib.import_module("ui.app")  # Qt only on this path
    return ui_app.run_demo(args, _db_path(args))


def run_headless(args) -> int:
    from ..runtime import MonitorRuntime
    from ..sessions import summarise, unfinished_sessions
    from ..simulation import simulated_sources
    from ..store import open_db

    db_path = _db_path(args)
    protocol = None
    if args.protocol:  # walk the clinical workflow of this protocol (ketmonitor/demo_walkthrough.py)
        from ..demo_walkthrough import demo_minutes
        from ..protocols import load_protocol
        protocol = load_protocol(args.protocol)
    minutes = args.minutes or (demo_minutes(protocol) if protocol else 60.0)
    # Simulated time is anchored so the session ends as the demo starts: it is over when the record
    # is signed, and every time in it is in the past, in its true order.
    end_wall = time.time()
    clock = ScaledClock(args.speed or 600.0, wall_anchor=end_wall - minutes * 60.0,
                        stop_at=minutes * 60.0)
    sources = simulated_sources(scenario=args.scenario, seed=args.seed, clock=clock, t0=0.0,
                                until=minutes * 60.0)
    runtime = MonitorRuntime(db_path, sources, clock=clock, scenario=args.scenario, seed=args.seed,
                             protocol=args.protocol, t0=0.0)
    session_id = runtime.start()
    try:
        if protocol is not None:
            from ..demo_walkthrough import run_walkthrough
            walk = run_walkthrough(runtime, protocol, clock, seed=args.seed)
            print(f"walked {protocol.name}: {len(walk.steps)} entries"
                  f"{', session ended' if walk.completed else ', stopped before the end'}")
        # the simulated devices stop by themselves at the end, having sent every sample up to it
        for source in sources:
            source.wait_stopped()
    finally:
        runtime.stop(t_wall=min(clock.wall(), end_wall))
    db = open_db(db_path)
    s = summarise(db, session_id)
    print(f"session {session_id}")
    print(f"database {db_path}")
    print(f"scenario {args.scenario}, seed {args.seed}, {minutes:g} simulated minutes at speed "
          f"{clock.speed:g}")
    print(f"stored {s['numerics']} numerics, {s['waveform_chunks']} waveform chunks "
          f"({s['waveform_samples']} samples), {s['events']} events")
    print(f"{'metric':<18}{'n':>6}{'missing':>9}{'min':>9}{'median':>9}{'max':>9}")
    for m in s["metrics"]:
        def f(v):
            return "-" if v is None else f"{v:.1f}"
        print(f"{m.metric:<18}{m.count:>6}{m.missing:>9}{f(m.minimum):>9}{f(m.median):>9}"
              f"{f(m.maximum):>9}")
    from ..alarms import summarise_alarms
    alarms = summarise_alarms(db, session_id)
    print(f"alarms raised: {len(alarms)}")
    for line in alarms:
        print(f"  {line}")
    from ..demo_signing import sign_demo_session
    from ..errors import KetmonitorError
    try:
        path = sign_demo_session(db, session_id, db_path.parent / "records", clock)
        print(f"record {path}  (signed by the demo nurse; check with 'ketmonitor verify {path} "
              f"--db {db_path}')")
    except KetmonitorError as exc:
        print(f"note: {exc}")
    others = [u for u in unfinished_sessions(db) if u["id"] != session_id]
    if others:
        print(f"note: {len(others)} unfinished session(s) in this database "
              f"(a crash?): see 'ketmonitor sessions --db {db_path}'")
    db.conn.close()
    return 0
