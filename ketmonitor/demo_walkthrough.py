"""A whole simulated session's clinical entries, made at the right simulated times.

Used by ``ketmonitor demo --headless --protocol NAME`` (and the GUI demo's walk-through): check-in,
baseline, checklist, pre-dose scales, the dose with its lot number (devices 5 minutes apart, an
infusion with start and stop, or one injection), the scheduled BP and scale entries, a few quick
events, a note and an amendment, discharge and end. Scheduled blood pressures are requested from the
NIBP device through ``workflow.poll`` when it has one; one still missing 90 s after its time is
entered by hand, as a nurse would.
"""

from __future__ import annotations

import math
import random
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from argon2 import PasswordHasher

from .clock import Clock
from .patients import Patient
from .protocols import Check, Protocol
from .users import Authenticator, Clinic, User
from .workflow import SessionWorkflow

DEMO_NURSE = User("demo-nurse", "Demo Nurse (simulated)", "nurse")
# The demo nurse exists only in a database the demo itself created (a clinic marked simulated); her
# password is published (README) so a person can sign in to a demo database and sign as her.
DEMO_NURSE_PASSWORD = "Ketamine-Demo-2026"
DEMO_CLINIC = "Demo clinic (simulated)"
DEMO_LOT = "DEMO-LOT-0001"
POLL_S = 10.0  # simulated seconds between polls of the task list
MANUAL_BP_AFTER_S = 90.0


@dataclass
class WalkReport:
    session_id: str
    protocol: str
    steps: list[str] = field(default_factory=list)
    completed: bool = False


def dosing_span_s(protocol: Protocol) -> float:
    """Seconds from the first to the last dose the walk-through gives (intranasal devices)."""
    if protocol.route != "intranasal":
        return 0.0
    devices = (protocol.dose.get("devices") or [2])[0]
    return (devices - 1) * protocol.dose.get("interval_min", 5) * 60.0


def demo_minutes(protocol: Protocol, dose_at: float = 300.0) -> float:
    """Simulated minutes a demo needs to walk this protocol to its end."""
    last_check = max((c.offset_s for c in protocol.checks if c.offset_s is not None), default=0)
    monitoring = protocol.min_monitoring_min * 60
    if protocol.min_monitoring_from == "last_dose":
        monitoring += dosing_span_s(protocol)
    span = max(monitoring, last_check) + 8 * 60
    return math.ceil((dose_at + span) / 60)


def demo_user(runner, clock: Clock) -> User:
    """The demo's nurse. On an empty database the demo creates a clinic marked simulated, its admin
    and the nurse (random passwords nobody knows); otherwise the existing demo nurse, or an
    unregistered demo identity, so a demo never adds accounts to a real clinic's database."""
    # The demo nurse's password is published: costly hashing or key derivation protects nothing.
    auth = Authenticator(runner, clock=clock,
                         hasher=PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1),
                         key_kdf={"t": 1, "m": 8192, "p": 1})
    existing = auth.get_user(DEMO_NURSE.id)
    if existing is not None:
        return existing
    if auth.needs_first_start():
        password = secrets.token_urlsafe(18) + "aA1"
        admin = auth.first_start(Clinic(DEMO_CLINIC), "demo-admin",
                                 "Demo Administrator (simulated)", password)
        return auth.create_user(admin, DEMO_NURSE.id, DEMO_NURSE.full_name, "nurse",
                                DEMO_NURSE_PASSWORD, must_change=False)
    return DEMO_NURSE


def demo_patient(seed: int = 1) -> Patient:
    rng = random.Random(seed)
    return Patient(mrn=f"DEMO-{seed:04d}", name="Demo Patient (simulated)", birth_date="1980-05-17",
                   sex="female", weight_kg=float(rng.choice((62, 70, 78))),
                   notes="Simulated patient for the demo walk-through.", benzodiazepines=False,
                   sedative_hypnotics=False, psychostimulants=False, maois=False, opioids=False)


def _scale_values(workflow: SessionWorkflow, scale_id: str, minutes: float | None,
                  rng: random.Random) -> tuple[dict, str | None]:
    """Plausible scores: dissociation and sedation peak near 40 min after the dose."""
    scale = workflow.scales[scale_id]
    variant = scale.variant()
    effect = 0.0 if minutes is None else math.exp(-((minutes - 40) / 30) ** 2)
    if scale_id == "moaas":
        return {1: 5 if effect < 0.5 else 4}, variant.name
    if scale_id == "rass":
        return {1: 0 if effect < 0.5 else -1}, variant.name
    values = {}
    for item in scale.items:
        p = 0.15 + 0.6 * effect
        values[item.n] = variant.min + (min(variant.max, 1 + int(rng.random() * 2 * effect))
                                        if rng.random() < p and effect > 0.05 else 0)
    return values, variant.name


def walk_through(workflow: SessionWorkflow, protocol: Protocol, clock: Clock, *, t0: float = 0.0,
                 dose_at: float = 300.0, seed: int = 1, stop: threading.Event | None = None,
                 patient: Patient | None = None,
                 on_step: Callable[[str], None] | None = None) -> WalkReport:
    """Make every entry of a session on ``protocol``; blocks until the session has ended (or
    ``stop`` is set). ``dose_at`` is seconds after ``t0`` (match the simulated patient's dose)."""
    rng = random.Random(seed)
    report = WalkReport(workflow.session_id, protocol.name)

    def step(text: str) -> None:
        report.steps.append(text)
        if on_step:
            on_step(text)

    def wait_until(t: float) -> bool:
        if not clock.reachable(t):  # the simulation ends before then: the walk stops here
            return False
        while clock.monotonic() < t:
            if not clock.sleep_until(min(t, clock.monotonic() + POLL_S), stop):
                return False
            workflow.poll()
        return not (stop and stop.is_set())

    def bp_by_hand(check: Check) -> None:
        sys_ = round(rng.gauss(128, 6))
        if check.phase == "post":
            minutes = check.offset_s / 60
            sys_ += round(18 * math.exp(-((minutes - 40) / 35) ** 2))
        workflow.record_bp(sys_, round(sys_ * 0.62), pulse=round(rng.gauss(76, 4)),
                           check_id=check.id)
        step(f"blood pressure {sys_}/{round(sys_ * 0.62)} entered by hand ({check.label})")

    def scale(check: Check, minutes: float | None) -> None:
        values, variant = _scale_values(workflow, check.scale, minutes, rng)
        _, score = workflow.record_scale(check.scale, values, variant=variant, check_id=check.id)
        step(f"{workflow.scales[check.scale].short} total {score.total:g} ({check.label})")

    # -- check-in and pre-dose
    if not wait_until(t0 + 30):
        return report
    patient = workflow.check_in(patient or demo_patient(seed), protocol)
    step(f"checked in {patient.mrn} on {protocol.name}")
    if not wait_until(t0 + 60):
        return report
    if workflow.record_baseline(nibp_systolic=124, nibp_diastolic=78, spo2=98, pulse_rate=74):
        workflow.proceed_despite_baseline("Demo: reviewed by the physician, proceed")
    step("baseline vitals 124/78, SpO2 98 %, pulse 74")
    workflow.confirm_checklist({i.id: True for i in protocol.pre_dose_checklist})
    step("pre-dose checklist confirmed")
    if not wait_until(t0 + 120):
        return report
    for check in protocol.checks_in("pre"):
        if check.kind == "scale":
            scale(check, None)

    # -- dosing
    if not wait_until(t0 + dose_at):
        return report
    dose, drug, weight = protocol.dose, protocol.drug, patient.weight_kg or 70.0
    infusion = None
    if protocol.route == "intranasal":
        devices = (dose.get("devices") or [2])[0]
        for i in range(devices):
            planned = t0 + dose_at + i * dose.get("interval_min", 5) * 60
            if not wait_until(planned):
                return report
            # timed as planned: a fast simulation may reach this a few simulated minutes late,
            # which would put the devices closer together than the protocol allows
            workflow.give_dose(drug=drug, amount=dose.get("amount") or 28, unit="mg",
                               route="intranasal", lot_number=DEMO_LOT, at_mono=planned)
            step(f"device {i + 1}: {drug} {dose.get('amount') or 28:g} mg, lot {DEMO_LOT}")
    elif dose.get("infusion_min"):
        per_kg = dose.get("amount") or 0.5
        total = round(per_kg * weight, 1) if dose.get("unit") == "mg/kg" else per_kg
        minutes = dose["infusion_min"]
        workflow.start_infusion(drug=drug, amount=total, unit="mg",
                                rate=round(total * 60 / minutes, 1), rate_unit="mg/h",
                                lot_number=DEMO_LOT)
        step(f"infusion started: {total:g} mg over {minutes:g} min, lot {DEMO_LOT}")
        infusion = (minutes, total)
    else:
        amount = dose.get("amount") or 100.0
        unit = dose.get("unit") or "mg"
        if unit == "mg/kg":
            amount, unit = round(amount * weight, 1), "mg"
        workflow.give_dose(drug=drug, amount=amount, unit=unit, route=protocol.route,
                           lot_number=DEMO_LOT)
        step(f"{drug} {amount:g} {unit} {protocol.route}, lot {DEMO_LOT}")
    first = workflow.snapshot.first_dose_mono
    actions: list[tuple[float, int, Callable[[], None]]] = []
    if infusion is None:
        workflow.finish_dosing()
    else:
        def stop_infusion(total=infusion[1]):
            workflow.stop_infusion(amount_given=total)
            workflow.finish_dosing()
            step("infusion stopped, dosing finished")
        actions.append((first + infusion[0] * 60, 0, stop_infusion))

    # -- monitoring: scheduled checks, events, a note and an amendment, in time order
    for check in protocol.checks_in("post"):
        due = first + check.offset_s
        if check.kind == "bp":
            def late_bp(check=check):
                if any(t.id == check.id and t.open for t in workflow.tasks()):
                    bp_by_hand(check)
                else:
                    step(f"blood pressure from the monitor ({check.label})")
            actions.append((due + MANUAL_BP_AFTER_S, 1, late_bp))
        else:
            actions.append((due, 1, lambda check=check: scale(check, check.offset_s / 60)))

    def nausea():
        event_id = workflow.add_event("nausea", text="mild")
        step("event: nausea")
        workflow.amend("events", event_id, "detail added after reassessment",
                       {"text": "mild, settled without treatment"})
        step("amendment: nausea event detail")

    actions += [
        (first + 20 * 60, 0, nausea),
        (first + 35 * 60, 0, lambda: (workflow.add_event("probe_repositioned"),
                                      step("event: probe repositioned"))),
        (first + 50 * 60, 0, lambda: (workflow.add_note("Patient resting, calm, eyes closed."),
                                      step("note added"))),
    ]
    for t, _, action in sorted(actions, key=lambda a: (a[0], a[1])):
        if not wait_until(t):
            return report
        action()

    # -- discharge: the minimum monitoring time counts from the last dose (or the first)
    ready = workflow.snapshot.monitoring_start(protocol) + protocol.min_monitoring_min * 60 + 60
    if not wait_until(ready):
        return report
    workflow.begin_discharge()
    step("discharge begun")
    for check in protocol.checks_in("discharge"):
        if check.kind == "bp":
            if workflow.request_nibp is not None:
                try:
                    workflow.request_nibp()
                except Exception:  # noqa: BLE001 - no device: by hand below
                    pass
                end = clock.monotonic() + MANUAL_BP_AFTER_S
                while clock.monotonic() < end and any(
                        t.id == check.id and t.open for t in workflow.tasks()):
                    if not clock.reachable(clock.monotonic() + 5):
                        break  # the simulation's time ends first: taken by hand below
                    if not clock.sleep_until(clock.monotonic() + 5, stop):
                        return report  # the result arrives through workflow.on_sample
            if any(t.id == check.id and t.open for t in workflow.tasks()):
                bp_by_hand(check)
            else:
                step(f"blood pressure from the monitor ({check.label})")
        else:
            scale(check, None)
    workflow.discharge({c.id: True for c in protocol.discharge_criteria}, ready_at_mono=ready)
    step("discharge criteria met, patient ready to leave")
    workflow.end()
    step("session ended")
    report.completed = True
    return report


def run_walkthrough(runtime, protocol: Protocol, clock: Clock, *, seed: int = 1,
                    dose_at: float = 300.0, stop: threading.Event | None = None,
                    on_step: Callable[[str], None] | None = None) -> WalkReport:
    """Walk ``protocol`` on a started MonitorRuntime: entries through its writer, scheduled BPs
    requested from its NIBP device, device BPs matched to their checks."""
    user = demo_user(runtime.writer, clock)
    workflow = SessionWorkflow(runtime.writer, runtime.session_id, clock, user=user,
                               protocol=protocol, request_nibp=runtime.request_nibp,
                               alarms=getattr(runtime, "alarms", None))
    runtime.add_listener(workflow.on_sample)
    return walk_through(workflow, protocol, clock, t0=runtime.t0 or 0.0, dose_at=dose_at,
                        seed=seed, stop=stop, on_step=on_step)
