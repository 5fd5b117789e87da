"""Sessions for the review tests, made by the real pipeline: simulated devices on a fast ScaledClock
feeding a MonitorRuntime (store writer, alarm engine), the demo walk-through making the clinical
entries, and the signing service sealing the record. Staff log in with known passwords; their
signing keys use cheap Argon2 parameters so the tests stay fast (the benchmark uses the defaults)."""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher

from ketmonitor.clock import ScaledClock
from ketmonitor.demo_walkthrough import DEMO_NURSE, demo_minutes, run_walkthrough
from ketmonitor.protocols import load_protocol
from ketmonitor.runtime import MonitorRuntime
from ketmonitor.signing import enrol_key, seal_session
from ketmonitor.simulation import simulated_sources
from ketmonitor.store import open_db
from ketmonitor.users import Authenticator, Clinic, InlineRunner, User

FAST_KDF = {"t": 1, "m": 1024, "p": 1}
FAST_HASHER = dict(time_cost=1, memory_cost=8192, parallelism=1)
PASSWORDS = {"admin1": "Admin-pass-0", DEMO_NURSE.id: "Nurse-pass-1", "doc1": "Doctor-pass-2",
             "aud1": "Auditor-pass-3", "doc2": "Doctor-pass-4"}
STAFF = {  # user id: (printed name, role, enrol a signing key)
    DEMO_NURSE.id: ("Nora Nurse, RN", "nurse", True),
    "doc1": ("Dana Doctor, MD", "physician", True),
    "doc2": ("Sam Second, MD", "physician", True),
    "aud1": ("Audrey Auditor", "auditor", False),
}


@dataclass(frozen=True)
class Staff:
    nurse: User
    doctor: User
    doctor2: User
    auditor: User


def authenticator(db) -> Authenticator:
    return Authenticator(InlineRunner(db), hasher=PasswordHasher(**FAST_HASHER))


def setup_clinic(db_path, *, kdf: dict | None = FAST_KDF) -> Staff:
    """A clinic with an admin, a nurse (the demo nurse, so the walk-through's entries are hers), two
    physicians and an auditor; clinical staff get signing keys under their login password."""
    db = open_db(db_path)
    auth = authenticator(db)
    admin = auth.first_start(Clinic("Review test clinic", "1 Main St"), "admin1", "Ada Admin",
                             PASSWORDS["admin1"])
    users = {}
    for uid, (name, role, key) in STAFF.items():
        users[uid] = auth.create_user(admin, uid, name, role, PASSWORDS[uid], must_change=False)
        if key:
            enrol_key(db, uid, name, role, PASSWORDS[uid], kdf_params=kdf)
    db.conn.close()
    return Staff(users[DEMO_NURSE.id], users["doc1"], users["doc2"], users["aud1"])


def record_session(db_path, *, protocol: str = "im-injection", scenario: str = "uneventful",
                   seed: int = 1, speed: float = 1500.0, end: bool = True,
                   wall_anchor: float | None = None, minutes: float | None = None) -> str:
    """One whole session through the runtime and the walk-through; returns its id.

    ``end=False`` leaves it open (as after a crash: the runtime stops without ending it) and makes
    no clinical entries; ``wall_anchor`` (epoch seconds) dates the session."""
    proto = load_protocol(protocol)
    minutes = minutes or demo_minutes(proto)
    clock = ScaledClock(speed, wall_anchor)
    sources = simulated_sources(scenario=scenario, seed=seed, clock=clock, t0=0.0,
                                until=minutes * 60.0)
    rt = MonitorRuntime(db_path, sources, clock=clock, scenario=scenario, seed=seed,
                        protocol=proto.name, t0=0.0)
    sid = rt.start()
    try:
        walk = run_walkthrough(rt, proto, clock, seed=seed) if end else None
        for s in sources:
            s.wait_stopped()
    finally:
        rt.stop(end=end)
    if walk is not None and not walk.completed:
        raise AssertionError(f"the walk-through of {protocol} did not finish")
    return sid


def seal(db_path, session_id: str, user_id: str = DEMO_NURSE.id) -> str:
    db = open_db(db_path)
    try:
        return seal_session(db, session_id, user_id, PASSWORDS[user_id]).record_id
    finally:
        db.conn.close()


def copy_db(src, dst) -> Path:
    """A consistent copy of a database (WAL included) through SQLite's backup API."""
    dst = Path(dst)
    with sqlite3.connect(str(src)) as a, sqlite3.connect(str(dst)) as b:
        a.backup(b)
    a.close()
    b.close()
    return dst


__all__ = ["FAST_KDF", "PASSWORDS", "STAFF", "Staff", "setup_clinic", "record_session", "seal",
           "copy_db", "authenticator", "shutil"]


# -- one shared set of sessions for the review tests -----------------------------------------------

@dataclass(frozen=True)
class ReviewWorld:
    """A clinic database with four sessions on different days:

    - ``desat``: im-injection, desaturation scenario (a high-priority SpO2 alarm), signed by the nurse
    - ``cosigned``: sublingual-oral, signed, co-signed by doc2 (approval), with doc2's addendum
    - ``ended``: im-injection, ended but not signed
    - ``open``: a few minutes of vitals, never ended (no patient checked in)
    """

    path: Path
    staff: Staff
    desat: str
    cosigned: str
    ended: str
    open: str
    days: dict  # session id -> local date (datetime.date) of its start

    def copy(self, dst) -> Path:
        return copy_db(self.path, dst)


_WORLD: dict = {}


def _local_epoch(y, m, d, hour=9) -> float:
    from datetime import datetime

    return datetime(y, m, d, hour).timestamp()


def build_world(folder: Path, *, speed: float = 2500.0) -> ReviewWorld:
    from datetime import date

    from ketmonitor.signing import add_addendum, cosign, original_record_id

    path = Path(folder) / "world.db"
    staff = setup_clinic(path)
    desat = record_session(path, scenario="desaturation", seed=2, speed=speed,
                           wall_anchor=_local_epoch(2026, 3, 2))
    cos = record_session(path, protocol="sublingual-oral", seed=3, speed=speed,
                         wall_anchor=_local_epoch(2026, 3, 5))
    ended = record_session(path, seed=4, speed=speed, wall_anchor=_local_epoch(2026, 3, 9))
    opened = record_session(path, seed=5, speed=speed, end=False, minutes=3,
                            wall_anchor=_local_epoch(2026, 3, 10))
    seal(path, desat)
    seal(path, cos)
    db = open_db(path)
    rid = original_record_id(db, cos)
    cosign(db, rid, "doc2", PASSWORDS["doc2"], "approval")
    add_addendum(db, rid, "doc2", PASSWORDS["doc2"], "Reviewed by phone with the patient next day.")
    db.conn.close()
    days = {desat: date(2026, 3, 2), cos: date(2026, 3, 5), ended: date(2026, 3, 9),
            opened: date(2026, 3, 10)}
    return ReviewWorld(path, staff, desat, cos, ended, opened, days)


def shared_world(tmp_path_factory) -> ReviewWorld:
    """Built once per test run (a few seconds of simulated sessions); tests work on copies."""
    if "world" not in _WORLD:
        _WORLD["world"] = build_world(tmp_path_factory.mktemp("review_world"))
    return _WORLD["world"]
