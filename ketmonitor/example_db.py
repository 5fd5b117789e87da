"""Build ``sessions.db.example``: realistic, signed sessions made by the real pipeline.

    python -m ketmonitor.example_db OUT [--speed N] [--max-minutes M]

Every session is produced the way a clinic's would be: simulated devices on a fast ScaledClock feed
a MonitorRuntime (store writer, alarm engine, alarm log), the demo walk-through makes the clinical
entries of the protocol at the right simulated times as the example nurse, alarms are acknowledged
by that nurse on the alarm engine, the ended session is sealed with the nurse's Ed25519 key, a
physician co-signs one record and adds a signed addendum to another. Nothing is written by hand.

The simulated data follow fixed seeds and every session starts at a fixed date, so vitals, entries
and alarm times are the same at every run; key material and record ids are random by nature.

The example users and their passwords are in EXAMPLE_USERS (and docs/example-db.md). The example
clinic's password policy lets passwords never expire, so the documented passwords keep working.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from .clock import ManualClock, ScaledClock
from .errors import ConfigError, KetmonitorError, WorkflowError

DOSE_AT = 120.0  # simulated seconds from session start to the first dose
CLINIC_CREATED = 1_772_352_000.0  # 2026-03-01T08:00:00Z
DAY = 86_400.0


@dataclass(frozen=True)
class ExampleUser:
    id: str
    full_name: str
    role: str
    password: str


EXAMPLE_USERS = (
    ExampleUser("admin", "Alex Admin", "admin", "Setup-Clinic-2026"),
    ExampleUser("nurse", "Nora Nurse, RN", "nurse", "Ward-Round-2026"),
    ExampleUser("physician", "Dr Paul Physician, MD", "physician", "Clinic-Review-2026"),
    ExampleUser("auditor", "Ada Auditor", "auditor", "Audit-Trail-2026"),
)
USERS = {u.id: u for u in EXAMPLE_USERS}


@dataclass(frozen=True)
class ExampleSession:
    kind: str            # what the session shows (tests look for each kind)
    title: str
    protocol: str
    scenario: str
    seed: int
    day: int             # days after the clinic was set up; sessions start at 08:30Z that day
    acknowledge_alarms: bool = False
    cosign: str | None = None        # meaning of the physician's co-signature
    addendum: str | None = None      # text of the physician's signed addendum
    notes: tuple[str, ...] = field(default_factory=tuple)


SESSIONS = (
    ExampleSession("uneventful-iv", "Uneventful IV ketamine infusion", "iv-infusion",
                   "uneventful", seed=11, day=1),
    ExampleSession("hypertensive-surge", "Intranasal esketamine with a hypertensive surge",
                   "esketamine-intranasal", "hypertensive-surge", seed=12, day=2,
                   notes=("Blood pressure rose after the second device; patient asymptomatic, "
                          "physician informed, observed until it settled.",)),
    ExampleSession("desaturation", "Desaturation with alarms acknowledged", "im-injection",
                   "desaturation", seed=13, day=3, acknowledge_alarms=True,
                   notes=("SpO2 fell to the low 80s about 15 minutes after the injection; "
                          "stimulated, chin lift, recovered without oxygen.",)),
    ExampleSession("cosigned", "Session co-signed by the physician", "sublingual-oral",
                   "uneventful", seed=14, day=4, cosign="approval"),
    ExampleSession("addendum", "Session with a signed addendum", "im-injection",
                   "uneventful", seed=15, day=5,
                   addendum="Addendum (physician): patient telephoned the next morning, slept well, "
                            "no dissociative symptoms remaining. No change to the treatment plan."),
)
KINDS = tuple(s.kind for s in SESSIONS)
ACK_AFTER_S = 20.0  # the nurse acknowledges an alarm this long (simulated) after it is shown


@dataclass
class BuiltSession:
    spec: ExampleSession
    session_id: str
    record_id: str
    steps: int
    alarms_acknowledged: int
    minutes: float


def _setup_clinic(path: Path) -> None:
    from .store import open_db
    from .users import Authenticator, Clinic, InlineRunner, PasswordPolicy

    db = open_db(path)
    try:
        clock = ManualClock(0.0, wall_anchor=CLINIC_CREATED)
        auth = Authenticator(InlineRunner(db), clock=clock)
        admin_u = USERS["admin"]
        admin = auth.first_start(Clinic("Example Clinic (simulated data)", "1 Example Street",
                                        "+1 555 0100", "clinic@example.org"),
                                 admin_u.id, admin_u.full_name, admin_u.password)
        clock.advance(60)
        # example database only: passwords never expire, so the documented ones keep working
        auth.set_policy(admin, PasswordPolicy(max_age_days=0))
        for u in EXAMPLE_USERS:  # the nurse's and the physician's signing keys come with them
            if u.role == "admin":
                continue
            clock.advance(60)
            auth.create_user(admin, u.id, u.full_name, u.role, u.password, must_change=False,
                             email=f"{u.id}@example.org")
    finally:
        db.conn.close()


def _acknowledger(runtime, user: ExampleUser):
    """A ticker: the nurse acknowledges each alarm ACK_AFTER_S after it is shown."""
    count = [0]

    def tick(now: float) -> None:
        snap = runtime.alarms.snapshot(now)
        if any(not a.acknowledged and now - a.started_mono >= ACK_AFTER_S for a in snap.alarms):
            count[0] += len(runtime.alarms.acknowledge(user.id, user.role, now=now))
    return tick, count


SHORTENED = ("Example database: session shortened to {:g} minutes to keep the file small "
             "(not a clinical decision)")


def _end_early(workflow, protocol, reason: str) -> None:
    """Close a session cut short: the workflow's early-discharge path, every open check skipped
    with the reason, all discharge criteria answered, session ended."""
    state = workflow.state
    if state in ("check_in", "pre_dose"):
        workflow.abandon(reason)
        return
    if state == "dosing":
        if workflow.snapshot.infusion_running:
            workflow.stop_infusion(reason=reason)
        workflow.finish_dosing()
    if workflow.state == "monitoring":
        workflow.begin_discharge(early_reason=reason)
    for task in workflow.tasks():
        if task.open:
            try:
                workflow.skip_check(task.id, reason)
            except WorkflowError:  # done meanwhile: a requested cuff reading has just come in
                if any(t.id == task.id and t.open for t in workflow.tasks()):
                    raise
    workflow.discharge({c.id: True for c in protocol.discharge_criteria})
    workflow.end()


def _run_session(path: Path, spec: ExampleSession, speed: float,
                 max_minutes: float | None = None) -> BuiltSession:
    from .demo_walkthrough import demo_minutes, demo_patient, walk_through
    from .protocols import load_protocol
    from .runtime import MonitorRuntime
    from .simulation import simulated_sources
    from .users import User
    from .workflow import SessionWorkflow

    nurse_u = USERS["nurse"]
    nurse = User(nurse_u.id, nurse_u.full_name, nurse_u.role)
    protocol = load_protocol(spec.protocol)
    minutes = demo_minutes(protocol, DOSE_AT)
    if max_minutes is not None:
        minutes = min(minutes, max_minutes + 1)  # the devices run a minute past the cut
    start_wall = CLINIC_CREATED + spec.day * DAY + 1800.0
    clock = ScaledClock(speed, wall_anchor=start_wall)
    sources = simulated_sources(scenario=spec.scenario, seed=spec.seed, clock=clock, t0=0.0,
                                until=minutes * 60.0, dose_at=DOSE_AT)
    runtime = MonitorRuntime(path, sources, clock=clock, protocol=protocol.name,
                             scenario=spec.scenario, seed=spec.seed, user_id=nurse.id, t0=0.0)
    acked = [0]
    stop = threading.Event()
    if max_minutes is not None:
        runtime.add_ticker(lambda now: stop.set() if now >= max_minutes * 60 else None, 1.0)
    if spec.acknowledge_alarms:
        tick, acked = _acknowledger(runtime, nurse_u)
        runtime.add_ticker(tick, 1.0)
    session_id = runtime.start()
    try:
        workflow = SessionWorkflow(runtime.writer, session_id, clock, user=nurse, protocol=protocol,
                                   request_nibp=runtime.request_nibp, alarms=runtime.alarms)
        runtime.add_listener(workflow.on_sample)
        patient = replace(demo_patient(spec.seed), name=f"Example Patient {spec.day} (simulated)")
        notes = list(spec.notes)

        def on_step(text: str) -> None:
            if text == "note added" and notes:
                workflow.add_note(notes.pop(0))
        report = walk_through(workflow, protocol, clock, t0=0.0, dose_at=DOSE_AT, seed=spec.seed,
                              patient=patient, on_step=on_step, stop=stop)
        if not report.completed and stop.is_set():
            _end_early(workflow, protocol, SHORTENED.format(max_minutes))
        elif not report.completed:
            raise KetmonitorError(f"example session {spec.kind}: the walk-through did not finish")
        ended_at = clock.monotonic()
    finally:
        runtime.stop()
    return BuiltSession(spec, session_id, "", len(report.steps), acked[0], ended_at / 60)


def _sign(path: Path, built: BuiltSession) -> None:
    from .protocols import load_protocol
    from .signing import add_addendum, cosign, seal_session
    from .store import open_db

    spec = built.spec
    db = open_db(path)
    try:
        ended = db.conn.execute("SELECT ended_utc FROM sessions WHERE id = ?",
                                (built.session_id,)).fetchone()[0]
        from .clock import parse_utc
        t = parse_utc(ended)
        nurse, doctor = USERS["nurse"], USERS["physician"]
        record = seal_session(db, built.session_id, nurse.id, nurse.password, t_wall=t + 180,
                              protocol=load_protocol(spec.protocol).raw)
        built.record_id = record.record_id
        if spec.cosign:
            cosign(db, record.record_id, doctor.id, doctor.password, spec.cosign, t_wall=t + 3600)
        if spec.addendum:
            add_addendum(db, record.record_id, doctor.id, doctor.password, spec.addendum,
                         t_wall=t + DAY)
    finally:
        db.conn.close()


def _finish(work: Path, out: Path) -> None:
    """One self-contained, compact file: VACUUM INTO, rollback journal (no -wal beside it)."""
    tmp = out.with_name(out.name + ".tmp")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(str(work))
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("VACUUM INTO ?", (str(tmp),))
    finally:
        conn.close()
    conn = sqlite3.connect(str(tmp))
    try:
        conn.execute("PRAGMA journal_mode=DELETE")
    finally:
        conn.close()
    os.replace(tmp, out)


def build(out: str | os.PathLike, *, speed: float = 600.0,
          sessions: tuple[ExampleSession, ...] = SESSIONS, max_minutes: float | None = None,
          log=print) -> list[BuiltSession]:
    """Write the example database to ``out`` (replacing it only once it is complete).

    ``max_minutes``: cut every session at that many minutes after its start, through the
    workflow's early-discharge path with a stated reason (a much smaller file; the default runs
    each protocol's full monitoring time)."""
    from .signing import verify_db
    from .store import open_db

    out = Path(out)
    if not out.parent.is_dir():
        raise ConfigError(f"cannot write {out}: folder {out.parent} does not exist")
    if max_minutes is not None and max_minutes * 60 < DOSE_AT + 600:
        raise ConfigError(f"--max-minutes must leave at least 10 minutes after the dose "
                          f"(at least {(DOSE_AT + 600) / 60:g})")
    built = []
    with tempfile.TemporaryDirectory(prefix="ketmonitor-example-") as tmpdir:
        work = Path(tmpdir) / "sessions.db"
        _setup_clinic(work)
        for spec in sessions:
            t = time.monotonic()
            b = _run_session(work, spec, speed, max_minutes)
            _sign(work, b)
            built.append(b)
            log(f"{spec.kind:<20} {spec.protocol:<22} {spec.scenario:<19} {b.minutes:5.0f} min "
                f"{b.steps:3d} entries {b.alarms_acknowledged:2d} acks  session {b.session_id} "
                f"({time.monotonic() - t:.0f} s)")
        db = open_db(work)
        try:
            report = verify_db(db)
        finally:
            db.conn.close()
        log(report.describe())
        _finish(work, out)
    log(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {len(built)} sessions)")
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ketmonitor.example_db",
                                     description="Build the example database from simulations.")
    parser.add_argument("out", metavar="OUT", help="file to write (e.g. sessions.db.example)")
    parser.add_argument("--speed", type=float, default=600.0,
                        help="simulated seconds per real second (default 600)")
    parser.add_argument("--max-minutes", type=float, default=None, metavar="M",
                        help="cut every session after M minutes with an early discharge (a much "
                             "smaller file; default: each protocol's full monitoring time)")
    args = parser.parse_args(argv)
    try:
        build(args.out, speed=args.speed, max_minutes=args.max_minutes)
    except KetmonitorError as exc:
        print(f"example_db: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
