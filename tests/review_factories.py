"""Sessions for the review tests, made by the real pipeline: simulated devices on a fast ScaledClock
feeding a MonitorRuntime (store writer, alarm engine), the demo walk-through making the clinical
entries, and the signing service sealing the record. Staff log in with known passwords; their
signing keys use cheap Argon2 parameters so the tests stay fast (the benchmark uses the defaults)."""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from ketmonitor.clock import ScaledClock
from ketmonitor.demo_walkthrough import DEMO_NURSE, demo_minutes, run_walkthrough
from ketmonitor.protocols import load_protocol
from ketmonitor.runtime import MonitorRuntime
from ketmonitor.signing import seal_session
from ketmonitor.simulation import simulated_sources
from ketmonitor.store import open_db
from ketmonitor.users import Authenticator, Clinic, InlineRunner, User

FAST_KDF = {"t": 1, "m": 1024, "p": 1}
FAST_HASHER = dict(time_cost=1, memory_cost=8192, parallelism=1)
PASSWORDS = {"admin1": "Admin-pass-0", DEMO_NURSE.id: "Nurse-pass-1", "doc1": "Doctor-pass-2",
             "aud1": "Auditor-pass-3", "doc2": "Doctor-pass-4"}
STAFF = {  # user id: (printed name, role, gets a signing key)
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


def authenticator(db, kdf: dict | None = FAST_KDF) -> Authenticator:
    return Authenticator(InlineRunner(db), hasher=PasswordHasher(**FAST_HASHER), key_kdf=kdf)


def setup_clinic(db_path, *, kdf: dict | None = FAST_KDF) -> Staff:
    """A clinic with an admin, a nurse (the demo nurse, so the walk-through's entries are hers), two
    physicians and an auditor; creating the clinical staff enrols their signing keys under their
    login password (``kdf``: the keys' Argon2id parameters, None for the production default)."""
    db = open_db(db_path)
    auth = authenticator(db, kdf)
    admin = auth.first_start(Clinic("Review test clinic", "1 Main St"), "admin1", "Ada Admin",
                             PASSWORDS["admin1"])
    users = {}
    for uid, (name, role, _key) in STAFF.items():
        users[uid] = auth.create_user(admin, uid, name, role, PASSWORDS[uid], must_change=False)
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


# The fixtures of the tests that use the world: imported by their modules (``from
# tests.review_factories import review_db_path, world``), which then ask for them by these names.
@pytest.fixture
def world(tmp_path_factory) -> ReviewWorld:
    return shared_world(tmp_path_factory)


@pytest.fixture
def review_db_path(world, tmp_path) -> Path:
    """A copy of the world's database, for one test to change."""
    return world.copy(tmp_path / "review.db")


# -- thousands of sessions for the browser's query ----------------------------------------------

def many_sessions(path, n=3000):
    """``n`` sessions, three hours apart, with 500 patients, events by seven nurses, alarms, signed
    records, co-signatures and addenda, inserted by SQL (no samples: the browser never reads them).
    Returns the database and, per filter, the ids it must find."""
    import uuid

    from ketmonitor.clock import utc_iso

    db = open_db(path)
    conn = db.conn
    t0 = 1_767_225_600.0
    conn.execute("BEGIN")
    conn.execute("INSERT INTO signing_keys (kid, user_id, printed_name, role, public_key, origin,"
                 " created_utc, valid_from_utc) VALUES ('k1', 'doc9', 'Doc Nine', 'physician',"
                 " x'00', 'imported', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')")
    protocols = ("iv-infusion", "im-injection", "esketamine-intranasal")
    statuses = ("ended", "signed", "cosigned", "open")
    expect = {"protocol": set(), "high": set(), "addendum": set(), "doc9": set(), "p7": set(),
              "nurse3": set(), "march": set(), "signed": set()}
    for i in range(n):
        sid = f"s{i:05d}"
        t = t0 + i * 3 * 3600
        started = utc_iso(t)
        pid = f"p{i % 500}"
        if i < 500:
            conn.execute("INSERT INTO patients (id, mrn, name, created_utc) VALUES (?,?,?,?)",
                         (pid, f"MRN{i % 500:04d}", f"Patient {i % 500}", started))
        status = statuses[i % 4]
        conn.execute("INSERT INTO sessions (id, created_utc, started_utc, ended_utc, status, protocol,"
                     " patient_id, wall_anchor, mono_anchor) VALUES (?,?,?,?,?,?,?,?,0)",
                     (sid, started, started, None if status == "open" else utc_iso(t + 7200),
                      status, protocols[i % 3], pid, t))
        user = f"nurse{i % 7}"
        for k in range(5):
            conn.execute("INSERT INTO events (session_id, kind, t_mono, t_wall, t_utc, user_id)"
                         " VALUES (?, 'note', ?, ?, ?, ?)", (sid, k, t + k, started, user))
        if i % 11 == 0:
            conn.execute("INSERT INTO alarm_log (session_id, alarm_id, condition, kind, priority,"
                         " start_mono, start_wall, start_utc) VALUES (?, ?, 'spo2_desat', 'limit',"
                         " ?, 0, ?, ?)", (sid, uuid.uuid4().hex, "high" if i % 2 else "medium",
                                          t, started))
            if i % 2:
                expect["high"].add(sid)
        if status in ("signed", "cosigned"):
            rid = f"r{i}"
            conn.execute("INSERT INTO session_records (record_id, session_id, kind, payload,"
                         " payload_sha256, created_utc) VALUES (?, ?, 'original', x'7b7d', ?, ?)",
                         (rid, sid, uuid.uuid4().hex, started))
            if status == "cosigned":
                conn.execute("INSERT INTO record_signatures (record_id, idx, protected, signature,"
                             " kid, signer_id, meaning, signed_utc) VALUES (?, 1, 'p', 's', 'k1',"
                             " 'doc9', 'review', ?)", (rid, started))
                expect["doc9"].add(sid)
            if i % 10 == 0:
                conn.execute("INSERT INTO session_records (record_id, session_id, kind,"
                             " amends_record_id, amends_record_hash, payload, payload_sha256,"
                             " created_utc) VALUES (?, ?, 'addendum', ?, 'h', x'7b7d', ?, ?)",
                             (rid + "a", sid, rid, uuid.uuid4().hex, started))
                expect["addendum"].add(sid)
        if protocols[i % 3] == "im-injection":
            expect["protocol"].add(sid)
        if pid == "p7":
            expect["p7"].add(sid)
        if user == "nurse3":
            expect["nurse3"].add(sid)
        if started.startswith("2026-03"):
            expect["march"].add(sid)
        if status == "signed":
            expect["signed"].add(sid)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    return db, expect
