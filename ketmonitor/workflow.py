"""The clinical session, in enforced order:

    check_in -> pre_dose -> dosing -> monitoring -> discharge -> ended

``check_in`` is "awaiting check-in": the monitor records vitals and alarms in the session from its
start, but refuses every clinical entry until the patient is checked in. (Databases from before
sessions were created in this state hold open sessions at ``monitoring`` with no check-in; they are
read as awaiting check-in too.)

``SessionWorkflow`` holds a session id, a *runner* (the StoreWriter, or ``users.InlineRunner``) and
the session clock. Every method builds a function of a sqlite_utils Database and runs it through
``runner.run`` inside one transaction: it re-reads the session's state from the database, refuses
an out-of-order step with a WorkflowError that says what is missing, writes the entry, a row in
``events`` (the timeline) and an audit entry. The database is the authority; the object keeps a
snapshot of it for the task list (``tasks(now)``), which the UI recomputes every second.

Entries are timestamped (UTC on disk, monotonic beside) and attributed to the current user; they are
never edited: ``amend`` adds a correction with a reason that points at what it corrects.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from .amendments import AMENDABLE, correctable, corrected
from .audit import append_audit
from .clock import Clock, utc_iso
from .entry_rules import DOSE_UNITS, RATE_UNITS, ROUTES  # noqa: F401 - the UI imports them here
from .entry_rules import (check_discharge, check_dose, check_lot, check_rate, check_vitals,
                          dose_deviations)
from .errors import DoseDeviationError, KetmonitorError, WorkflowError
from .metrics import METRICS
from .patients import Patient, get_patient, save_patient
from .protocols import Protocol, load_protocol
from .samples import Numeric
from .scales import Scale, load_scales
from .users import User
from .workflow_tasks import DUE, OVERDUE, Task, compute_tasks, match_check

log = logging.getLogger(__name__)

STATES = ("check_in", "pre_dose", "dosing", "monitoring", "discharge", "ended")
ACTIVE = ("pre_dose", "dosing", "monitoring", "discharge")
QUICK_EVENTS = {
    "nausea": "Nausea",
    "vomiting": "Vomiting",
    "anxiety": "Anxiety or agitation",
    "hypertension_treated": "Hypertension treated",
    "oxygen": "Oxygen applied",
    "medication": "Medication given",
    "restroom": "Restroom break (NIBP paused)",
    "restroom_end": "Back from restroom (NIBP resumed)",
    "probe_repositioned": "Probe repositioned",
}
SIGNED_STATUSES = ("signed", "cosigned")


@dataclass(frozen=True)
class Snapshot:
    """What the database says about the session's workflow, read inside a transaction."""

    state: str
    status: str
    patient_id: str | None
    protocol: str | None
    checked_in: bool
    baseline: dict | None
    baseline_reason: str | None
    checklist: dict | None
    first_dose_mono: float | None
    doses: int
    infusion_running: bool
    nibp_paused: bool
    discharged: bool
    results: dict = field(default_factory=dict)  # check id -> check_results row
    last_dose_mono: float | None = None

    @property
    def baseline_bp_high(self) -> bool:
        return bool(self.baseline and self.baseline.get("bp_high"))

    def monitoring_start(self, protocol: Protocol) -> float | None:
        """Where the protocol's minimum monitoring time counts from: the last dose (REMS: at
        least 2 hours after each dose) or, if the protocol says so, the first."""
        if protocol.min_monitoring_from == "first_dose":
            return self.first_dose_mono
        return self.last_dose_mono


def _rows(db, sql, params=()) -> list[dict]:
    cur = db.conn.execute(sql, params)
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def _last_event(db, sid, kind) -> dict | None:
    row = db.conn.execute("SELECT data FROM events WHERE session_id = ? AND kind = ?"
                          " ORDER BY id DESC LIMIT 1", (sid, kind)).fetchone()
    return json.loads(row[0]) if row else None


def read_snapshot(db, session_id: str) -> Snapshot:
    row = db.conn.execute("SELECT state, status, patient_id, protocol FROM sessions WHERE id = ?",
                          (session_id,)).fetchone()
    if row is None:
        raise WorkflowError(f"no session {session_id}")
    state, status, patient_id, protocol = row
    checked_in = _last_event(db, session_id, "checkin") is not None
    if state == "monitoring" and not checked_in:
        state = "check_in"  # created by a monitor before sessions started awaiting check-in
    first = db.conn.execute("SELECT min(t_mono), count(*), max(t_mono) FROM doses WHERE"
                            " session_id = ? AND action IN ('dose', 'infusion_start')",
                            (session_id,)).fetchone()
    last_inf = db.conn.execute("SELECT action FROM doses WHERE session_id = ? AND action LIKE"
                               " 'infusion%' ORDER BY id DESC LIMIT 1", (session_id,)).fetchone()
    breaks = db.conn.execute("SELECT json_extract(data, '$.type') FROM events WHERE session_id = ?"
                             " AND kind = 'event' AND json_extract(data, '$.type') IN"
                             " ('restroom', 'restroom_end') ORDER BY id DESC LIMIT 1",
                             (session_id,)).fetchone()
    results = {r["check_id"]: r for r in _rows(
        db, "SELECT * FROM check_results WHERE session_id = ? ORDER BY id", (session_id,))}
    reason = _last_event(db, session_id, "baseline.proceed")
    discharged = db.conn.execute("SELECT 1 FROM discharges WHERE session_id = ?",
                                 (session_id,)).fetchone() is not None
    return Snapshot(
        state=state, status=status, patient_id=patient_id, protocol=protocol,
        checked_in=checked_in,
        baseline=_last_event(db, session_id, "baseline"),
        baseline_reason=reason["reason"] if reason else None,
        checklist=_last_event(db, session_id, "checklist"),
        first_dose_mono=first[0], doses=first[1],
        infusion_running=bool(last_inf and last_inf[0] != "infusion_stop"),
        nibp_paused=bool(breaks and breaks[0] == "restroom"), discharged=discharged,
        results=results, last_dose_mono=first[2])


def ensure_session(db, session_id: str, clock: Clock, *, workstation: str | None = None) -> None:
    """Create the session row if the runtime has not (a workflow-only session, e.g. in tests)."""
    if db.conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone():
        return
    now = utc_iso(clock.wall())
    db.conn.execute("INSERT INTO sessions (id, created_utc, started_utc, status, state, wall_anchor,"
                    " mono_anchor, workstation) VALUES (?, ?, ?, 'open', 'check_in', ?, ?, ?)",
                    (session_id, now, now, clock.wall(), clock.monotonic(), workstation))


class SessionWorkflow:
    """One session's clinical workflow. Thread-safe; methods block until the write is committed.

    ``request_nibp``: called (with no arguments) when a scheduled blood pressure becomes due, unless
    NIBP is paused (restroom break); raising NotSupportedError means the device cannot, and the
    nurse takes it by hand. ``on_change``: called after every successful write (UI refresh).
    ``alarms``: the monitor's AlarmEngine; check-in applies the protocol's alarm limits to it, a
    limit change recorded with who checked in and the reason 'protocol NAME'.
    """

    def __init__(self, runner, session_id: str, clock: Clock, *, user: User | None = None,
                 protocol: Protocol | None = None, scales: dict[str, Scale] | None = None,
                 request_nibp: Callable[[], None] | None = None,
                 on_change: Callable[[], None] | None = None, clinic_dir=None, alarms=None):
        self.runner = runner
        self.alarms = alarms
        self.session_id = session_id
        self.clock = clock
        self.user = user
        self.protocol = protocol
        self.scales = scales if scales is not None else load_scales()
        self.request_nibp = request_nibp
        self.on_change = on_change
        self._clinic_dir = clinic_dir
        self._lock = threading.RLock()
        self._requested: set[str] = set()
        self._snap: Snapshot | None = None
        self._collect: list | None = None  # events written by the transaction running now
        # called after commit with (kind, t_mono, data) of every event the write recorded:
        # the UI puts doses, scales and events on the trend timeline
        self.event_listeners: list[Callable[[str, float, dict], None]] = []
        self.runner.run(lambda db: ensure_session(db, session_id, clock))
        self.refresh()

    # -- reading -------------------------------------------------------------------------------
    def refresh(self) -> Snapshot:
        snap = self.runner.run(lambda db: read_snapshot(db, self.session_id))
        self._set(snap)
        return snap

    def _set(self, snap: Snapshot) -> None:
        with self._lock:
            self._snap = snap
            if self.protocol is None and snap.protocol:
                self.protocol = load_protocol(snap.protocol, self._clinic_dir)

    @property
    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._snap

    @property
    def state(self) -> str:
        return self.snapshot.state

    def tasks(self, now: float | None = None) -> list[Task]:
        snap = self.snapshot
        if self.protocol is None:
            return []
        now = self.clock.monotonic() if now is None else now
        return compute_tasks(self.protocol, snap.state, snap.first_dose_mono, snap.results, now)

    def minutes_since_dose(self, now: float | None = None) -> float | None:
        first = self.snapshot.first_dose_mono
        now = self.clock.monotonic() if now is None else now
        return None if first is None else (now - first) / 60

    def minutes_monitored(self, now: float | None = None) -> float | None:
        """Minutes counted towards the protocol's minimum monitoring time (from the last dose
        unless the protocol counts from the first); None before any dose."""
        start = self.snapshot.monitoring_start(self.protocol) if self.protocol else None
        now = self.clock.monotonic() if now is None else now
        return None if start is None else (now - start) / 60

    # -- plumbing ------------------------------------------------------------------------------
    def set_user(self, user: User, *, handover: bool = False) -> None:
        """Change the user entries are attributed to; a handover is recorded in the session."""
        previous, self.user = self.user, user
        if handover and previous is not None and previous.id != user.id:
            self._write("handover", lambda db, snap, t: self._event(
                db, "handover", t, {"from": previous.id, "to": user.id}), need_states=None)

    def _times(self, at_mono: float | None = None) -> tuple[float, float]:
        now_mono, now_wall = self.clock.monotonic(), self.clock.wall()
        if at_mono is None:
            return now_mono, now_wall
        if at_mono > now_mono + 1.0:
            raise WorkflowError("an entry cannot be timed in the future")
        return at_mono, now_wall - (now_mono - at_mono)

    def _user_id(self) -> str:
        if self.user is None:
            raise WorkflowError("nobody is logged in: log in before making entries")
        if not self.user.clinical:
            raise WorkflowError(f"{self.user.id} is {self.user.role}: only a nurse or physician"
                                " may make session entries")
        return self.user.id

    def _event(self, db, kind: str, t: tuple[float, float], data: dict, *,
               entity: str | None = None, entity_id=None) -> int:
        uid = self.user.id if self.user else None
        cur = db.conn.execute(
            "INSERT INTO events (session_id, kind, t_mono, t_wall, t_utc, user_id, data)"
            " VALUES (?,?,?,?,?,?,?)",
            (self.session_id, kind, t[0], t[1], utc_iso(t[1]), uid,
             json.dumps(data, sort_keys=True, default=str)))
        event_id = cur.lastrowid
        if self._collect is not None:
            self._collect.append((kind, t[0], {**data, "event_id": event_id}))
        append_audit(db, f"workflow.{kind}", user_id=uid, session_id=self.session_id,
                     entity=entity or "event", entity_id=str(entity_id or event_id),
                     detail={**data, "event_id": event_id}, t_wall=t[1])
        return event_id

    def _transition(self, db, snap: Snapshot, to: str, t, reason: str | None = None) -> None:
        data = {"from": snap.state, "to": to}
        if reason:
            data["reason"] = reason
        status = None
        if to == "ended":
            status = "abandoned" if snap.state != "discharge" else "ended"
            data["status"] = status
            db.conn.execute("UPDATE sessions SET state = ?, status = ?, ended_utc = ? WHERE id = ?",
                            (to, status, utc_iso(t[1]), self.session_id))
        else:
            db.conn.execute("UPDATE sessions SET state = ? WHERE id = ?", (to, self.session_id))
        self._event(db, "workflow.state", t, data, entity="session", entity_id=self.session_id)

    def _write(self, what: str, body, *, need_states=ACTIVE, at_mono: float | None = None,
               user_required: bool = True):
        """Run ``body(db, snap, t)`` in one transaction after checking the state, then refresh."""
        if user_required:
            self._user_id()
        t = self._times(at_mono)

        def fn(db):
            snap = read_snapshot(db, self.session_id)
            if need_states is not None and snap.state not in need_states:
                if snap.state == "check_in":
                    raise WorkflowError(f"cannot {what} before check-in: check the patient in first"
                                        " (vitals and alarms are recorded meanwhile)")
                raise WorkflowError(f"cannot {what} now: the session is at {snap.state!r}"
                                    f" (allowed at {', '.join(need_states)})")
            self._collect = []
            try:
                result = body(db, snap, t)
                events = self._collect
            finally:
                self._collect = None
            return result, events, read_snapshot(db, self.session_id)

        result, events, snap = self.runner.run(fn)
        self._set(snap)
        for listener in list(self.event_listeners):
            for kind, t_mono, data in events:
                try:
                    listener(kind, t_mono, data)
                except Exception:  # noqa: BLE001 - a display must not undo a committed entry
                    log.exception("workflow event listener failed")
        if self.on_change:
            try:
                self.on_change()
            except Exception:  # noqa: BLE001 - a UI refresh must not undo a committed entry
                log.exception("workflow on_change failed")
        return result

    # -- check-in and pre-dose -----------------------------------------------------------------
    def check_in(self, patient: Patient, protocol: Protocol | str | None = None) -> Patient:
        """Register (or update) the patient and the protocol; the session moves to pre-dose and the
        protocol's alarm limits are applied to the monitor (``alarms``).

        The limits are checked inside the check-in's transaction (a clinic's range that refuses
        them rolls the check-in back) but applied only once it has committed: a check-in the
        database undoes (disk full) leaves the monitor on the limits it had."""
        if isinstance(protocol, str):
            protocol = load_protocol(protocol, self._clinic_dir)
        protocol = protocol or self.protocol
        if protocol is None:
            raise WorkflowError("check-in needs a protocol")
        uid = self._user_id()
        self._check_protocol_limits(protocol)

        def body(db, snap, t):
            if snap.checked_in:
                raise WorkflowError("the patient is already checked in to this session")
            if snap.status != "open":
                raise WorkflowError(f"the session is {snap.status}")
            self._check_protocol_limits(protocol)  # again: a limit may have changed meanwhile
            saved = save_patient(db, patient, user_id=uid, t_wall=t[1])
            db.conn.execute("UPDATE sessions SET patient_id = ?, protocol = ? WHERE id = ?",
                            (saved.id, protocol.name, self.session_id))
            self._event(db, "checkin", t, {"patient_id": saved.id, "mrn": saved.mrn,
                                           "protocol": protocol.name,
                                           "protocol_version": protocol.version,
                                           "protocol_source": protocol.source,
                                           # the definition in force, kept with the session: a
                                           # record signed later carries it (signing/rules.py)
                                           "protocol_definition": protocol.raw or None},
                        entity="patient", entity_id=saved.id)
            self._transition(db, snap, "pre_dose", t)
            return saved
        previous, self.protocol = self.protocol, protocol
        try:
            saved = self._write("check in", body, need_states=("check_in",))
        except BaseException:
            self.protocol = previous
            raise
        # committed: now the monitor's limits; the alarm log listener records each change (events
        # and audit) in the writer's next transaction, at the time it took effect
        try:
            self.apply_protocol_limits(protocol)
        except WorkflowError as exc:  # changed between the check and now: say so, keep the check-in
            log.error("checked in, but %s", exc)
            raise WorkflowError(f"the patient is checked in, but {exc}: set the limits in the"
                                " limits dialog") from None
        return saved

    def _check_protocol_limits(self, protocol: Protocol) -> None:
        if self.alarms is None:
            return
        try:
            self.alarms.check_limits(protocol.alarm_limit_keys)
        except KetmonitorError as exc:
            raise WorkflowError(f"the alarm limits of protocol {protocol.name} cannot be applied"
                                f" with this clinic's alarm settings: {exc}") from None

    def apply_protocol_limits(self, protocol: Protocol | None = None, *, note: str = "",
                              at_mono: float | None = None) -> dict:
        """Put the protocol's alarm limits in force on the monitor; returns what changed.
        Also used when a checked-in session is resumed after a restart (``note``)."""
        protocol = protocol or self.protocol
        if self.alarms is None or protocol is None or not protocol.alarm_limits:
            return {}
        user = self.user
        reason = f"protocol {protocol.name}" + (f" ({note})" if note else "")
        try:
            return self.alarms.apply_limits(protocol.alarm_limit_keys,
                                            user_id=user.id if user else None,
                                            role=user.role if user else None, reason=reason,
                                            now=at_mono)
        except KetmonitorError as exc:
            raise WorkflowError(f"the alarm limits of protocol {protocol.name} cannot be applied"
                                f" with this clinic's alarm settings: {exc}") from None

    def patient(self) -> Patient | None:
        pid = self.snapshot.patient_id
        return None if pid is None else self.runner.run(lambda db: get_patient(db, pid))

    def record_baseline(self, *, nibp_systolic: float | None, nibp_diastolic: float | None,
                        spo2: float | None = None, pulse_rate: float | None = None,
                        nibp_mean: float | None = None, respiratory_rate: float | None = None,
                        source: str = "manual", typed: set[str] | None = None,
                        at_mono: float | None = None) -> bool:
        """Baseline vitals before the dose. Returns True when the BP is above the protocol's
        threshold: dosing then needs ``proceed_despite_baseline(reason)``.

        ``source`` "device": all values read from the monitor (already in ``numerics``);
        "manual": all typed; with ``typed`` (metric names) only those were typed ("mixed")."""
        values = {"nibp_systolic": nibp_systolic, "nibp_diastolic": nibp_diastolic,
                  "nibp_mean": nibp_mean, "spo2": spo2, "pulse_rate": pulse_rate}
        if nibp_systolic is None or nibp_diastolic is None:
            raise WorkflowError("the baseline needs a blood pressure (systolic and diastolic)")
        check_vitals(values, "baseline")
        high = self._protocol().baseline_bp_high(nibp_systolic, nibp_diastolic)
        if typed is not None:
            typed = {k for k in typed if values.get(k) is not None}
            present = {k for k, v in values.items() if v is not None}
            source = "device" if not typed else "manual" if typed >= present else "mixed"
        elif source not in ("device", "manual"):
            raise WorkflowError("baseline source must be 'device' or 'manual'")

        def body(db, snap, t):
            data = {**{k: v for k, v in values.items() if v is not None}, "source": source,
                    "bp_high": high, "threshold": self.protocol.baseline_bp}
            if respiratory_rate is not None:
                data["respiratory_rate"] = respiratory_rate
            if source != "device":
                self._manual_numerics(db, t, {k: v for k, v in values.items()
                                              if typed is None or k in typed})
            if typed:
                data["typed"] = sorted(typed)
            event_id = self._event(db, "baseline", t, data)
            self._complete(db, snap, "bp@pre", t, "events", event_id,
                           {"systolic": nibp_systolic, "diastolic": nibp_diastolic,
                            "source": source})
            return high
        return self._write("record the baseline", body, need_states=("pre_dose",), at_mono=at_mono)

    def proceed_despite_baseline(self, reason: str) -> None:
        if not reason or not reason.strip():
            raise WorkflowError("proceeding with a high baseline BP needs a reason")

        def body(db, snap, t):
            if not snap.baseline_bp_high:
                raise WorkflowError("the baseline BP is not above the threshold: no reason needed")
            self._event(db, "baseline.proceed", t, {"reason": reason.strip(),
                                                    "baseline": snap.baseline})
        self._write("record the reason", body, need_states=("pre_dose",))

    def confirm_checklist(self, answers: dict[str, bool], note: str = "") -> None:
        """The pre-dose checklist: every item of the protocol answered, all True to go on."""
        items = {i.id for i in self._protocol().pre_dose_checklist}
        unknown = set(answers) - items
        if unknown:
            raise WorkflowError(f"not on the pre-dose checklist: {', '.join(sorted(unknown))}")
        missing = [i.label for i in self.protocol.pre_dose_checklist if not answers.get(i.id)]
        if missing:
            raise WorkflowError("pre-dose checklist not complete: " + "; ".join(missing))

        def body(db, snap, t):
            self._event(db, "checklist", t, {"items": {k: bool(v) for k, v in answers.items()},
                                             "note": note})
        self._write("confirm the checklist", body, need_states=("pre_dose",))

    def _protocol(self) -> Protocol:
        if self.protocol is None:
            raise WorkflowError("no protocol: check the patient in first")
        return self.protocol

    # -- dosing --------------------------------------------------------------------------------
    def _ready_to_dose(self, snap: Snapshot) -> None:
        if snap.state == "pre_dose":
            if snap.baseline is None:
                raise WorkflowError("nothing can be dosed before the baseline vitals are recorded")
            if snap.checklist is None:
                raise WorkflowError("the pre-dose checklist is not confirmed")
            if snap.baseline_bp_high and not snap.baseline_reason:
                raise WorkflowError("the baseline BP is above the protocol threshold: record a"
                                    " reason to proceed")

    def _insert_dose(self, db, snap, t, action: str, *, extra: dict | None = None, **cols) -> int:
        uid = self._user_id()
        self._ready_to_dose(snap)
        cols = {k: v for k, v in cols.items() if v is not None}
        cur = db.conn.execute(
            f"INSERT INTO doses (session_id, action, t_mono, t_wall, t_utc, user_id,"
            f" {', '.join(cols)}) VALUES (?,?,?,?,?,?{',?' * len(cols)})",
            (self.session_id, action, t[0], t[1], utc_iso(t[1]), uid, *cols.values()))
        dose_id = cur.lastrowid
        kind = "dose" if action == "dose" else action.replace("_", ".")
        self._event(db, kind, t, {"dose_id": dose_id, "action": action, **cols, **(extra or {})},
                    entity="dose", entity_id=dose_id)
        if snap.state == "pre_dose":
            self._transition(db, snap, "dosing", t)
        return dose_id

    def give_dose(self, *, drug: str, amount: float, unit: str, route: str,
                  lot_number: str | None, device_index: int | None = None,
                  at_mono: float | None = None, deviation_reason: str | None = None) -> int:
        """A bolus, injection, intranasal device or oral/sublingual dose. Returns the dose id.

        A dose outside the protocol's ``dose`` (a device of another size, sooner than
        ``interval_min`` after the previous one, more than ``max_doses``, a total above
        ``max_total``) raises DoseDeviationError unless ``deviation_reason`` says why; the
        deviations and the reason are recorded with the dose (like a high baseline BP)."""
        self._check_dose(drug, amount, unit, route)
        check_lot(route, lot_number or "")
        protocol = self.protocol
        reason = (deviation_reason or "").strip()

        def body(db, snap, t):
            previous = [(a, u, tm) for a, u, tm in db.conn.execute(
                "SELECT amount, unit, t_mono FROM doses WHERE session_id = ? AND action = 'dose'"
                " ORDER BY t_mono", (self.session_id,))]
            weight = None
            if snap.patient_id:
                p = get_patient(db, snap.patient_id)
                weight = p.weight_kg if p else None
            deviations = dose_deviations(protocol, previous, float(amount), unit, t[0], weight) \
                if protocol is not None else []
            if deviations and not reason:
                raise DoseDeviationError(
                    "outside the protocol: " + "; ".join(deviations) +
                    ". Giving it needs a recorded reason.", deviations)
            index = device_index
            if route == "intranasal" and index is None:
                index = db.conn.execute("SELECT count(*) FROM doses WHERE session_id = ? AND"
                                        " action = 'dose' AND route = 'intranasal'",
                                        (self.session_id,)).fetchone()[0] + 1
            extra = {"deviations": deviations, "deviation_reason": reason} if deviations else {}
            return self._insert_dose(db, snap, t, "dose", extra=extra, drug=drug.strip(),
                                     amount=float(amount), unit=unit, route=route,
                                     lot_number=(lot_number or "").strip() or None,
                                     device_index=index)
        return self._write("give a dose", body, need_states=("pre_dose", "dosing"), at_mono=at_mono)

    def start_infusion(self, *, drug: str, amount: float, unit: str, rate: float, rate_unit: str,
                       lot_number: str | None = None, at_mono: float | None = None) -> int:
        self._check_dose(drug, amount, unit, "iv")
        self._check_rate(rate, rate_unit)

        def body(db, snap, t):
            if snap.infusion_running:
                raise WorkflowError("an infusion is already running: stop it first")
            return self._insert_dose(db, snap, t, "infusion_start", drug=drug.strip(),
                                     amount=float(amount), unit=unit, route="iv",
                                     lot_number=(lot_number or "").strip() or None,
                                     rate=float(rate), rate_unit=rate_unit)
        return self._write("start an infusion", body, need_states=("pre_dose", "dosing"),
                           at_mono=at_mono)

    def change_infusion_rate(self, rate: float, rate_unit: str, *, reason: str = "",
                             at_mono: float | None = None) -> int:
        self._check_rate(rate, rate_unit, allow_zero=True)

        def body(db, snap, t):
            drug = self._running_drug(db, snap)
            dose_id = self._insert_dose(db, snap, t, "infusion_rate", drug=drug, route="iv",
                                        rate=float(rate), rate_unit=rate_unit)
            if reason:
                self._event(db, "note", t, {"text": f"Rate change: {reason}", "dose_id": dose_id})
            return dose_id
        return self._write("change the infusion rate", body, need_states=("dosing",),
                           at_mono=at_mono)

    def stop_infusion(self, *, amount_given: float | None = None, reason: str = "",
                      at_mono: float | None = None) -> int:
        def body(db, snap, t):
            drug = self._running_drug(db, snap)
            dose_id = self._insert_dose(db, snap, t, "infusion_stop", drug=drug, route="iv",
                                        amount=amount_given, unit="mg" if amount_given else None)
            if reason:
                self._event(db, "note", t, {"text": f"Infusion stopped: {reason}",
                                            "dose_id": dose_id})
            return dose_id
        return self._write("stop the infusion", body, need_states=("dosing",), at_mono=at_mono)

    def _running_drug(self, db, snap) -> str:
        if not snap.infusion_running:
            raise WorkflowError("no infusion is running")
        return db.conn.execute("SELECT drug FROM doses WHERE session_id = ? AND action ="
                               " 'infusion_start' ORDER BY id DESC LIMIT 1",
                               (self.session_id,)).fetchone()[0]

    _check_dose = staticmethod(check_dose)
    _check_rate = staticmethod(check_rate)

    def finish_dosing(self) -> None:
        """All devices given / infusion stopped: the session moves to monitoring."""
        def body(db, snap, t):
            if snap.doses == 0:
                raise WorkflowError("nothing has been dosed")
            if snap.infusion_running:
                raise WorkflowError("the infusion is still running: stop it first")
            self._transition(db, snap, "monitoring", t)
        self._write("finish dosing", body, need_states=("dosing",))

    # -- monitoring ----------------------------------------------------------------------------
    def _complete(self, db, snap, check_id: str | None, t, table, entry_id, data=None):
        """Record a check as done (if it is a check of this protocol and still open)."""
        if check_id is None or check_id in snap.results:
            return None
        if self.protocol is None or check_id not in {c.id for c in self.protocol.checks}:
            return None
        cur = db.conn.execute(
            "INSERT INTO check_results (session_id, check_id, status, entry_table, entry_id, data,"
            " t_mono, t_wall, t_utc, user_id) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (self.session_id, check_id, "done", table, entry_id, json.dumps(data or {}), t[0], t[1],
             utc_iso(t[1]), self.user.id if self.user else None))
        return cur.lastrowid

    def _match(self, snap: Snapshot, kind: str, scale: str | None, now: float) -> str | None:
        if self.protocol is None:
            return None
        tasks = compute_tasks(self.protocol, snap.state, snap.first_dose_mono, snap.results, now)
        task = match_check(tasks, kind, scale, snap.state, now)
        return task.id if task else None

    def _manual_numerics(self, db, t, values: dict) -> None:
        rows = [(self.session_id, "manual", k, t[0], t[1], utc_iso(t[1]), float(v),
                 METRICS[k].unit) for k, v in values.items() if v is not None]
        db.conn.executemany("INSERT INTO numerics (session_id, source, metric, t_mono, t_wall, t_utc,"
                            " value, unit) VALUES (?,?,?,?,?,?,?,?)", rows)

    def record_bp(self, systolic: float, diastolic: float, *, mean: float | None = None,
                  pulse: float | None = None, check_id: str | None = None,
                  at_mono: float | None = None) -> str | None:
        """A blood pressure taken by hand; returns the check it fulfilled (or None)."""
        values = {"nibp_systolic": systolic, "nibp_diastolic": diastolic, "nibp_mean": mean,
                  "nibp_pulse_rate": pulse}
        if systolic is None or diastolic is None:
            raise WorkflowError("a blood pressure needs the systolic and the diastolic")
        check_vitals(values)

        def body(db, snap, t):
            self._manual_numerics(db, t, values)
            cid = check_id or self._match(snap, "bp", None, t[0])
            event_id = self._event(db, "bp.manual", t, {k: v for k, v in values.items()
                                                        if v is not None} | {"check_id": cid})
            self._complete(db, snap, cid, t, "events", event_id,
                           {"systolic": systolic, "diastolic": diastolic, "source": "manual"})
            return cid
        return self._write("record a blood pressure", body, at_mono=at_mono)

    def on_sample(self, sample) -> None:
        """Dispatcher listener: a measured NIBP fulfils the due BP check (written without blocking)."""
        if not (isinstance(sample, Numeric) and sample.metric == "nibp_systolic"
                and sample.value is not None):
            return
        snap = self.snapshot
        if snap is None or snap.state not in ACTIVE or snap.state == "pre_dose":
            return
        cid = self._match(snap, "bp", None, sample.t_mono)
        if cid is None:
            return
        t = (sample.t_mono, sample.t_wall)

        def fn(db):
            fresh = read_snapshot(db, self.session_id)
            self._complete(db, fresh, cid, t, "numerics", None,
                           {"systolic": sample.value, "source": sample.source})
            return read_snapshot(db, self.session_id)

        fut = self.runner.call(fn)
        fut.add_done_callback(lambda f: f.exception() is None and self._set(f.result()))

    def record_scale(self, scale_id: str, values: dict, *, variant: str | None = None,
                     check_id: str | None = None, at_mono: float | None = None):
        """Score and store a rating scale entry; returns (entry id, ScaleScore)."""
        try:
            scale = self.scales[scale_id]
        except KeyError:
            raise WorkflowError(f"unknown scale {scale_id!r}; known: "
                                f"{', '.join(sorted(self.scales))}") from None
        score = scale.score(values, variant)
        if not score.items:
            raise WorkflowError(f"{scale.short}: no item was scored")

        def body(db, snap, t):
            cid = check_id or (self._match(snap, "scale", scale_id, t[0]) if score.complete
                               else None)
            cur = db.conn.execute(
                "INSERT INTO scale_entries (session_id, scale, scale_version, variant, items, total,"
                " subscales, complete, check_id, t_mono, t_wall, t_utc, user_id)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (self.session_id, scale.id, scale.version, score.variant, json.dumps(score.items),
                 score.total, json.dumps(score.subscales, sort_keys=True), int(score.complete),
                 cid, t[0], t[1], utc_iso(t[1]), self.user.id))
            entry_id = cur.lastrowid
            self._event(db, "scale", t, {"entry_id": entry_id, "scale": scale.id,
                                         "short": scale.short, "variant": score.variant,
                                         "total": score.total, "subscales": score.subscales,
                                         "complete": score.complete, "check_id": cid},
                        entity="scale_entry", entity_id=entry_id)
            if score.complete:
                self._complete(db, snap, cid, t, "scale_entries", entry_id,
                               {"total": score.total})
            return entry_id, score
        return self._write(f"record {scale.short}", body, at_mono=at_mono)

    def skip_check(self, check_id: str, reason: str) -> None:
        if not reason or not reason.strip():
            raise WorkflowError("skipping a scheduled check needs a reason")
        self._protocol().check(check_id)

        def body(db, snap, t):
            if check_id in snap.results:
                raise WorkflowError(f"check {check_id} is already {snap.results[check_id]['status']}")
            db.conn.execute(
                "INSERT INTO check_results (session_id, check_id, status, reason, t_mono, t_wall,"
                " t_utc, user_id) VALUES (?,?,?,?,?,?,?,?)",
                (self.session_id, check_id, "skipped", reason.strip(), t[0], t[1], utc_iso(t[1]),
                 self.user.id))
            self._event(db, "check.skipped", t, {"check_id": check_id, "reason": reason.strip()})
        self._write("skip a check", body)

    def poll(self, now: float | None = None) -> list[Task]:
        """Called on a timer by the UI/runtime: returns the tasks and, when a scheduled BP has just
        become due, asks the device for a measurement (once per check)."""
        now = self.clock.monotonic() if now is None else now
        tasks = self.tasks(now)
        snap = self.snapshot
        if self.request_nibp is None or snap.nibp_paused or snap.state not in ("dosing",
                                                                               "monitoring"):
            return tasks
        for task in tasks:
            if (task.check.kind == "bp" and task.state in (DUE, OVERDUE) and task.due_mono is not None
                    and now >= task.due_mono):
                with self._lock:  # poll may run on the UI timer and a walk-through thread
                    if task.id in self._requested:
                        continue
                    self._requested.add(task.id)
                ok, message = True, ""
                try:
                    self.request_nibp()
                except KetmonitorError as exc:
                    ok, message = False, str(exc)
                except Exception as exc:  # noqa: BLE001 - a device failure must not stop the list
                    ok, message = False, f"{type(exc).__name__}: {exc}"
                t = self._times()
                self.runner.call(lambda db, cid=task.id, ok=ok, message=message, t=t: self._event(
                    db, "nibp.requested", t, {"check_id": cid, "ok": ok, "message": message}))
        return tasks

    # -- events and notes ----------------------------------------------------------------------
    def add_event(self, kind: str, *, text: str = "", detail: dict | None = None,
                  at_mono: float | None = None) -> int:
        """A quick event (QUICK_EVENTS). A restroom break pauses automatic NIBP until it ends."""
        if kind not in QUICK_EVENTS:
            raise WorkflowError(f"unknown quick event {kind!r}; known: {', '.join(QUICK_EVENTS)}")
        if kind == "medication" and not (text.strip() or detail):
            raise WorkflowError("'medication given' needs the medication (text or detail)")

        def body(db, snap, t):
            if kind == "restroom" and snap.nibp_paused:
                raise WorkflowError("a restroom break is already under way")
            if kind == "restroom_end" and not snap.nibp_paused:
                raise WorkflowError("no restroom break is under way")
            return self._event(db, "event", t, {"type": kind, "label": QUICK_EVENTS[kind],
                                                "text": text.strip(), "detail": detail or {}})
        return self._write(f"record {QUICK_EVENTS[kind].lower()}", body, at_mono=at_mono)

    def add_note(self, text: str, *, at_mono: float | None = None) -> int:
        if not text or not text.strip():
            raise WorkflowError("a note cannot be empty")

        def body(db, snap, t):
            if snap.status in SIGNED_STATUSES:  # a row added now would not be in the record
                raise WorkflowError("the session is signed: add an addendum instead")
            return self._event(db, "note", t, {"text": text.strip()})
        return self._write("add a note", body, need_states=ACTIVE + ("ended",), at_mono=at_mono)

    def amend(self, target_table: str, target_id: int | str, reason: str, changes: dict) -> int:
        """Correct an entry without overwriting it: the amendment holds the corrected values and
        the reason, and points at the row it corrects. Only the entry's correctable fields
        (``amendments.correctable``) may change, never who, when, the session or an id, and the
        corrected entry must pass the original entry's checks; scale items are re-scored."""
        if target_table not in AMENDABLE:
            raise WorkflowError(f"cannot amend {target_table}; amendable: {', '.join(AMENDABLE)}")
        if not reason or not reason.strip():
            raise WorkflowError("an amendment needs a reason")
        if not changes:
            raise WorkflowError("an amendment needs the corrected values")

        def body(db, snap, t):
            if snap.status in SIGNED_STATUSES:
                raise WorkflowError("the session is signed: add an addendum instead")
            rows = _rows(db, f"SELECT * FROM {target_table} WHERE id = ?", (target_id,))
            if not rows or rows[0].get("session_id") != self.session_id:
                raise WorkflowError(f"no {target_table} entry {target_id} in this session")
            row = rows[0]
            fixed = corrected(target_table, row, changes, scales=self.scales,
                              protocol=self.protocol)
            cur = db.conn.execute(
                "INSERT INTO amendments (session_id, target_table, target_id, reason, changes,"
                " t_mono, t_wall, t_utc, user_id) VALUES (?,?,?,?,?,?,?,?,?)",
                (self.session_id, target_table, str(target_id), reason.strip(),
                 json.dumps(fixed, sort_keys=True, default=str), t[0], t[1], utc_iso(t[1]),
                 self.user.id))
            amendment_id = cur.lastrowid
            old = json.loads(row["data"]) if target_table == "events" else row
            was = {k: old.get(k) for k in fixed if k in old}
            self._event(db, "amendment", t, {"amendment_id": amendment_id,
                                             "target_table": target_table,
                                             "target_id": str(target_id), "reason": reason.strip(),
                                             "changes": fixed, "was": was},
                        entity="amendment", entity_id=amendment_id)
            return amendment_id
        return self._write("amend an entry", body, need_states=ACTIVE + ("ended",))

    def correctable(self, target_table: str, target_id: int | str) -> tuple[str, ...]:
        """The fields of an entry a correction may change (for the form's hint)."""
        if target_table not in AMENDABLE:
            return ()
        rows = self.runner.run(lambda db: _rows(db, f"SELECT * FROM {target_table} WHERE id = ?",
                                                 (target_id,)))
        return correctable(target_table, rows[0]) if rows else ()

    def recent_entries(self, limit: int = 30) -> list[tuple[str, int, str]]:
        """(table, id, one-line description) of the latest correctable entries, newest first."""
        sid = self.session_id

        def read(db):
            out = []
            for r in _rows(db, "SELECT id, t_utc, action, drug, amount, unit, lot_number FROM doses"
                               " WHERE session_id = ?", (sid,)):
                what = f"{r['drug']} {r['amount'] or 0:g} {r['unit'] or ''} lot {r['lot_number']}" \
                    if r["action"] == "dose" else f"{r['action'].replace('_', ' ')} {r['drug']}"
                out.append((r["t_utc"], "doses", r["id"], what))
            for r in _rows(db, "SELECT id, t_utc, scale, total FROM scale_entries WHERE"
                               " session_id = ?", (sid,)):
                total = "incomplete" if r["total"] is None else f"total {r['total']:g}"
                out.append((r["t_utc"], "scale_entries", r["id"], f"{r['scale']} {total}"))
            for r in _rows(db, "SELECT id, t_utc, kind, data FROM events WHERE session_id = ? AND"
                               " kind IN ('event', 'note', 'bp.manual')", (sid,)):
                d = json.loads(r["data"])
                what = {"event": f"{d.get('label')} {d.get('text', '')}".strip(),
                        "note": f"note: {d.get('text', '')[:40]}",
                        "bp.manual": f"BP {d.get('nibp_systolic', 0):g}/"
                                     f"{d.get('nibp_diastolic', 0):g}"}[r["kind"]]
                out.append((r["t_utc"], "events", r["id"], what))
            out.sort(key=lambda e: (e[0], e[2]), reverse=True)
            return [(table, rid, f"{t[11:19]} {what}") for t, table, rid, what in out[:limit]]
        return self.runner.run(read)

    # -- discharge and end ---------------------------------------------------------------------
    def begin_discharge(self, early_reason: str | None = None) -> None:
        """Monitoring -> discharge. Before the protocol's minimum monitoring time (from the last
        dose, or the first if the protocol says so) only with a reason."""
        protocol = self._protocol()

        def body(db, snap, t):
            start = snap.monitoring_start(protocol)
            if start is None:
                raise WorkflowError("nothing has been dosed, so there is no monitoring time to"
                                    " count: end the session early with a reason instead")
            minutes = (t[0] - start) / 60
            since = "first" if protocol.min_monitoring_from == "first_dose" else "last"
            if minutes < protocol.min_monitoring_min and not (early_reason or "").strip():
                raise WorkflowError(
                    f"only {minutes:.0f} of the {protocol.min_monitoring_min:g} minutes of"
                    f" monitoring after the {since} dose have passed: discharge earlier needs a"
                    " reason")
            self._transition(db, snap, "discharge", t,
                             early_reason.strip() if minutes < protocol.min_monitoring_min
                             else None)
        self._write("begin discharge", body, need_states=("monitoring",))

    def discharge(self, criteria: dict[str, bool], *, ready_at_mono: float | None = None,
                  reason: str | None = None) -> int:
        """The discharge criteria checklist and when the patient was ready to leave.

        Every criterion must be answered; any not met needs a reason. Before-discharge checks must
        be done or skipped (with a reason) first."""
        protocol = self._protocol()
        all_met = check_discharge(criteria, reason, protocol)
        ready = self._times(ready_at_mono)

        def body(db, snap, t):
            if snap.discharged:
                raise WorkflowError("the discharge is already recorded (amend it to correct it)")
            open_checks = [tk.label for tk in compute_tasks(protocol, snap.state,
                                                            snap.first_dose_mono, snap.results,
                                                            t[0])
                           if tk.check.phase == "discharge" and tk.open]
            if open_checks:
                raise WorkflowError("before discharge, do or skip: " + "; ".join(open_checks))
            if snap.first_dose_mono is None:
                raise WorkflowError("nothing has been dosed: end the session early with a reason")
            minutes = (ready[0] - snap.first_dose_mono) / 60
            cur = db.conn.execute(
                "INSERT INTO discharges (session_id, criteria, all_met, reason, ready_t_mono,"
                " ready_utc, minutes_to_ready, t_mono, t_wall, t_utc, user_id)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (self.session_id, json.dumps(criteria, sort_keys=True), int(all_met),
                 (reason or "").strip() or None, ready[0], utc_iso(ready[1]), round(minutes, 1),
                 t[0], t[1], utc_iso(t[1]), self.user.id))
            discharge_id = cur.lastrowid
            self._event(db, "discharge", t, {"discharge_id": discharge_id, "criteria": criteria,
                                             "all_met": all_met, "reason": reason,
                                             "ready_utc": utc_iso(ready[1]),
                                             "minutes_to_ready": round(minutes, 1)},
                        entity="discharge", entity_id=discharge_id)
            return discharge_id
        return self._write("record the discharge", body, need_states=("discharge",))

    def end(self) -> None:
        """Discharge recorded -> ended (status 'ended', ready for signing)."""
        def body(db, snap, t):
            if not snap.discharged:
                raise WorkflowError("record the discharge criteria before ending the session")
            self._transition(db, snap, "ended", t)
        self._write("end the session", body, need_states=("discharge",))

    def abandon(self, reason: str) -> None:
        """End the session early from any step (patient left, transferred): status 'abandoned'."""
        if not reason or not reason.strip():
            raise WorkflowError("ending a session early needs a reason")
        self._write("end the session early", lambda db, snap, t: self._transition(
            db, snap, "ended", t, reason.strip()), need_states=("check_in", "monitoring") + ACTIVE)


def new_session_id() -> str:
    return uuid.uuid4().hex
