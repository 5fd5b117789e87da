"""The headless demo ends by signing its record as the demo nurse and writing the record file.

Only in a database the demo itself created (its clinic is marked simulated): a demo never signs,
nor creates keys, in a real clinic's database.
"""

from __future__ import annotations

from pathlib import Path

from .demo_walkthrough import DEMO_CLINIC, DEMO_NURSE, DEMO_NURSE_PASSWORD, demo_user
from .errors import KetmonitorError
from .signing import current_key, enrol_key, seal_session, write_record
from .users import get_clinic


class _Direct:
    """The runner interface of users.Authenticator over a plain connection (the demo has stopped
    its writer thread, so nothing else writes now)."""

    def __init__(self, db):
        self.db = db

    def run(self, fn, timeout=None):
        with self.db.conn:
            self.db.conn.execute("BEGIN IMMEDIATE")
            return fn(self.db)

    def call(self, fn):  # pragma: no cover - not used by the calls made here
        raise NotImplementedError


def sign_demo_session(db, session_id: str, out_dir: Path, clock) -> Path:
    """Seal the ended demo session as the demo nurse; returns the record file's path."""
    runner = _Direct(db)
    demo_user(runner, clock)  # creates the simulated clinic and nurse on an empty database
    clinic = runner.run(get_clinic)
    if clinic is None or clinic.name != DEMO_CLINIC:
        raise KetmonitorError("record not signed: this database belongs to a clinic, and a demo "
                              "does not sign as one of its users")

    def seal(db):
        try:
            current_key(db, DEMO_NURSE.id)
        except KetmonitorError:
            enrol_key(db, DEMO_NURSE.id, DEMO_NURSE.full_name, DEMO_NURSE.role, DEMO_NURSE_PASSWORD)
        return seal_session(db, session_id, DEMO_NURSE.id, DEMO_NURSE_PASSWORD)

    record = runner.run(seal)
    out_dir.mkdir(parents=True, exist_ok=True)
    return write_record(db, record.record_id, out_dir / f"{session_id}.json")
