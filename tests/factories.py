"""Reusable builders of real sessions for export, review and benchmark code (no fixtures here).

- ``monitored_session``: the real pipeline, as ``ketmonitor demo --headless --protocol`` runs it —
  simulated oximeter and NIBP on a ScaledClock, the MonitorRuntime (store writer, alarm engine,
  alarm log) and the demo walk-through making every clinical entry at its simulated time.
- ``walked_session``: the walk-through alone on a jumping clock (no devices, instant), optionally
  with scheduled checks skipped by the nurse (e.g. the 40-minute BP).
- ``sign_session``: enrol the physician's signing key (cheap Argon2id parameters; the demo nurse's
  comes with her account), seal the record as the nurse, co-sign it as the physician (review) and
  add a signed addendum.
"""

from __future__ import annotations

from dataclasses import dataclass

from ketmonitor.clock import ManualClock, ScaledClock
from ketmonitor.demo_walkthrough import (DEMO_NURSE, DEMO_NURSE_PASSWORD, demo_minutes, demo_user,
                                         run_walkthrough, walk_through)
from ketmonitor.protocols import load_protocol
from ketmonitor.runtime import MonitorRuntime
from ketmonitor.signing import add_addendum, cosign, enrol_key, list_keys, seal_session
from ketmonitor.simulation import simulated_sources
from ketmonitor.store import open_db
from ketmonitor.users import InlineRunner
from ketmonitor.workflow import SessionWorkflow

FAST_KDF = {"t": 1, "m": 1024, "p": 1}
# The demo nurse's key comes with her account (demo_user), under her published password.
NURSE = (DEMO_NURSE.id, DEMO_NURSE.full_name, "nurse", DEMO_NURSE_PASSWORD)
PHYSICIAN = ("dr-rivera", "Dr. Ana Rivera, MD", "physician", "physician-signing-pw-2")


class JumpingClock(ManualClock):
    """Simulated time that jumps to whatever time the walk-through waits for."""

    def sleep_until(self, t_mono, stop=None):
        self.set(t_mono)
        return not (stop and stop.is_set())


def monitored_session(db_path, *, protocol: str = "esketamine-intranasal",
                      scenario: str = "hypertensive-surge", seed: int = 1,
                      speed: float = 2000.0) -> str:
    """One whole session through the real runtime; returns its id (the session has ended).

    The demo accounts are made before the simulated clock starts (password hashing would otherwise
    cost simulated minutes at this speed)."""
    proto = load_protocol(protocol)
    minutes = demo_minutes(proto)
    db = open_db(db_path)
    try:
        demo_user(InlineRunner(db), ManualClock())
    finally:
        db.conn.close()
    clock = ScaledClock(speed)
    sources = simulated_sources(scenario=scenario, seed=seed, clock=clock, t0=0.0,
                                until=minutes * 60.0)
    runtime = MonitorRuntime(db_path, sources, clock=clock, scenario=scenario, seed=seed,
                             protocol=protocol, t0=0.0)
    sid = runtime.start()
    try:
        walk = run_walkthrough(runtime, proto, clock, seed=seed)
        assert walk.completed, walk.steps
        for source in sources:
            source.wait_stopped()
    finally:
        runtime.stop()
    return sid


class SkippingWorkflow(SessionWorkflow):
    """The nurse skips the named scheduled blood pressures instead of taking them."""

    skip: tuple[str, ...] = ()

    def record_bp(self, systolic, diastolic, *, check_id=None, **kw):
        if check_id in self.skip:
            self.skip_check(check_id, "patient asleep, cuff not inflated")
            return None
        return super().record_bp(systolic, diastolic, check_id=check_id, **kw)


def walked_session(db, session_id: str, *, protocol: str = "esketamine-intranasal",
                   skip: tuple[str, ...] = (), wall_anchor: float = 1_767_225_600.0,
                   seed: int = 1) -> str:
    """A workflow-only session (no devices) made instantly on an open database."""
    runner, clock = InlineRunner(db), JumpingClock(wall_anchor=wall_anchor)
    wf = SkippingWorkflow(runner, session_id, clock, user=demo_user(runner, clock))
    wf.skip = tuple(skip)
    report = walk_through(wf, load_protocol(protocol), clock, seed=seed)
    assert report.completed, report.steps
    return session_id


def enrol_signers(db) -> None:
    have = {k.user_id for k in list_keys(db)}
    for uid, name, role, pw in (NURSE, PHYSICIAN):
        if uid not in have:
            enrol_key(db, uid, name, role, pw, kdf_params=FAST_KDF)


@dataclass(frozen=True)
class Signed:
    session_id: str
    record_id: str
    addendum_id: str | None


def sign_session(db, session_id: str, *, protocol: str | None = None, cosign_it: bool = True,
                 addendum: str | None = "Reviewed: blood pressure rise expected, no action.") \
        -> Signed:
    enrol_signers(db)
    raw = load_protocol(protocol).raw if protocol else None
    rec = seal_session(db, session_id, NURSE[0], NURSE[3], protocol=raw)
    if cosign_it:
        cosign(db, rec.record_id, PHYSICIAN[0], PHYSICIAN[3], "review")
    add = add_addendum(db, rec.record_id, PHYSICIAN[0], PHYSICIAN[3], addendum) if addendum else None
    return Signed(session_id, rec.record_id, add.record_id if add else None)


def export_world(db_path) -> dict:
    """A database with five sessions: a monitored (hypertensive surge), signed, co-signed session
    with an addendum; a monitored IM-injection session with a desaturation, signed by the nurse
    alone; an unsigned monitored IM-injection session whose probe came off; a walked, signed session whose 40-minute BP was
    skipped; and an unsigned walked session on another protocol."""
    monitored = monitored_session(db_path)
    desat = monitored_session(db_path, protocol="im-injection", scenario="desaturation", seed=2)
    probe_off = monitored_session(db_path, protocol="im-injection", scenario="probe-off", seed=5)
    db = open_db(db_path)
    try:
        signed = sign_session(db, monitored, protocol="esketamine-intranasal")
        sign_session(db, desat, cosign_it=False, addendum=None)
        walked_session(db, "walk-no-bp40", skip=("bp@40",), seed=4)
        sign_session(db, "walk-no-bp40", cosign_it=False, addendum=None)
        walked_session(db, "walk-unsigned", protocol="im-injection",
                       wall_anchor=1_767_225_600.0 + 86400, seed=3)
    finally:
        db.conn.close()
    return {"monitored": monitored, "desaturation": desat, "probe_off": probe_off, "record_id": signed.record_id,
            "addendum_id": signed.addendum_id, "no_bp40": "walk-no-bp40",
            "unsigned": "walk-unsigned"}
