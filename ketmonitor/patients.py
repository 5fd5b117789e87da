"""Patients: identifier (MRN), demographics, weight for mg/kg doses, and the concomitant-medication
flags of the esketamine REMS patient monitoring form.

Functions take a sqlite_utils Database inside a write transaction (run them through
``StoreWriter.run`` / ``InlineRunner.run``). Edits are audited with the earlier values.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import asdict, dataclass, fields
from datetime import date

from .audit import append_audit
from .clock import utc_iso
from .errors import WorkflowError

SEXES = ("female", "male", "other", "unknown")
# column -> label on the REMS form
REMS_FLAGS = {
    "benzodiazepines": "Benzodiazepines",
    "sedative_hypnotics": "Non-benzodiazepine sedative hypnotics",
    "psychostimulants": "Psychostimulants",
    "maois": "Monoamine oxidase inhibitors (MAOIs)",
    "opioids": "Opioids",
}


@dataclass(frozen=True)
class Patient:
    mrn: str
    name: str
    birth_date: str | None = None  # YYYY-MM-DD
    sex: str | None = None
    weight_kg: float | None = None
    notes: str = ""
    benzodiazepines: bool | None = None  # None: not asked yet
    sedative_hypnotics: bool | None = None
    psychostimulants: bool | None = None
    maois: bool | None = None
    opioids: bool | None = None
    id: str | None = None

    def validated(self) -> "Patient":
        if not self.mrn.strip():
            raise WorkflowError("the patient needs an identifier (MRN)")
        if not self.name.strip():
            raise WorkflowError("the patient needs a name")
        if self.birth_date is not None:
            try:
                born = date.fromisoformat(self.birth_date)
            except ValueError:
                raise WorkflowError(f"birth date {self.birth_date!r} is not YYYY-MM-DD") from None
            if born > date.today() or born.year < 1900:
                raise WorkflowError(f"birth date {self.birth_date} is not plausible")
        if self.sex is not None and self.sex not in SEXES:
            raise WorkflowError(f"sex must be one of {', '.join(SEXES)}")
        if self.weight_kg is not None and not (1 <= float(self.weight_kg) <= 400):
            raise WorkflowError(f"weight {self.weight_kg} kg is not plausible (1-400 kg)")
        return self

    @property
    def missing_rems(self) -> list[str]:
        return [label for key, label in REMS_FLAGS.items() if getattr(self, key) is None]


_COLUMNS = [f.name for f in fields(Patient) if f.name != "id"]


def _from_row(row: dict) -> Patient:
    data = {k: row[k] for k in _COLUMNS}
    for k in REMS_FLAGS:
        data[k] = None if data[k] is None else bool(data[k])
    return Patient(id=row["id"], **data)


def _db_values(p: Patient) -> list:
    return [int(v) if isinstance(v, bool) else v for v in (getattr(p, k) for k in _COLUMNS)]


def get_patient(db, patient_id: str) -> Patient | None:
    cur = db.conn.execute("SELECT * FROM patients WHERE id = ?", (patient_id,))
    row = cur.fetchone()
    return _from_row(dict(zip([c[0] for c in cur.description], row))) if row else None


def find_patients(db, text: str = "", limit: int = 50) -> list[Patient]:
    like = f"%{text.strip()}%"
    cur = db.conn.execute("SELECT * FROM patients WHERE mrn LIKE ? OR name LIKE ? ORDER BY name"
                          " LIMIT ?", (like, like, limit))
    cols = [c[0] for c in cur.description]
    return [_from_row(dict(zip(cols, r))) for r in cur.fetchall()]


def save_patient(db, patient: Patient, *, user_id: str, t_wall: float) -> Patient:
    """Insert (no id) or update (with id) a patient; returns it with its id. Audited."""
    patient = patient.validated()
    now = utc_iso(t_wall)
    if patient.id is None:
        if db.conn.execute("SELECT 1 FROM patients WHERE mrn = ?", (patient.mrn,)).fetchone():
            raise WorkflowError(f"a patient with identifier {patient.mrn} already exists")
        pid = uuid.uuid4().hex
        db.conn.execute(
            f"INSERT INTO patients (id, {', '.join(_COLUMNS)}, created_utc, created_by)"
            f" VALUES ({', '.join('?' * (len(_COLUMNS) + 3))})",
            [pid, *_db_values(patient), now, user_id])
        append_audit(db, "patient.create", user_id=user_id, entity="patient", entity_id=pid,
                     detail=asdict(patient) | {"id": pid}, t_wall=t_wall)
        return get_patient(db, pid)
    old = get_patient(db, patient.id)
    if old is None:
        raise WorkflowError(f"no patient {patient.id}")
    changed = {k: {"was": getattr(old, k), "now": getattr(patient, k)} for k in _COLUMNS
               if getattr(old, k) != getattr(patient, k)}
    if not changed:
        return old
    db.conn.execute(
        f"UPDATE patients SET {', '.join(f'{k} = ?' for k in _COLUMNS)}, updated_utc = ?,"
        " updated_by = ? WHERE id = ?", [*_db_values(patient), now, user_id, patient.id])
    append_audit(db, "patient.update", user_id=user_id, entity="patient", entity_id=patient.id,
                 detail={"changes": changed}, t_wall=t_wall)
    return get_patient(db, patient.id)


def age_on(birth_date: str | None, day: date) -> int | None:
    if not birth_date or not re.match(r"^\d{4}-\d{2}-\d{2}$", birth_date):
        return None
    born = date.fromisoformat(birth_date)
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))
