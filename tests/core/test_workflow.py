"""The session state machine on a real StoreWriter and SQLite file: order enforced, every
transition and entry recorded (events + audit), scheduled checks, amendments."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from ketmonitor.audit import verify_chain
from ketmonitor.clock import ManualClock
from ketmonitor.errors import DoseDeviationError, NotSupportedError, WorkflowError
from ketmonitor.patients import Patient
from ketmonitor.protocols import load_protocol
from ketmonitor.samples import Numeric
from ketmonitor.store import StoreWriter, open_db
from ketmonitor.users import Authenticator, Clinic
from ketmonitor.workflow import SessionWorkflow
from tests.core.test_users import cheap_hasher
from tests.waiting import wait_for

ESK = load_protocol("esketamine-intranasal")
IV = load_protocol("iv-infusion")


@pytest.fixture
def env(db_path):
    writer = StoreWriter(db_path, commit_interval=0.05).start()
    clock = ManualClock()
    auth = Authenticator(writer, clock=clock, hasher=cheap_hasher())
    admin = auth.first_start(Clinic("North clinic"), "admin", "Ada Admin", "Boss-key-2026x")
    nurse = auth.create_user(admin, "nina", "Nina Nurse", "nurse", "Nurse-pass-2026",
                             must_change=False)
    yield writer, clock, auth, admin, nurse
    writer.stop()


def patient(mrn="MRN-1") -> Patient:
    return Patient(mrn, "Pat Doe", "1980-02-03", "female", 70.0, benzodiazepines=False,
                   sedative_hypnotics=False, psychostimulants=False, maois=True, opioids=False)


def workflow(env, sid="s1", **kw) -> SessionWorkflow:
    writer, clock, auth, admin, nurse = env
    return SessionWorkflow(writer, sid, clock, user=nurse, **kw)


def all_true(items):
    return {i.id: True for i in items}


def ready_to_dose(wf, protocol=ESK, bp=(128, 80)):
    wf.check_in(patient(), protocol)
    wf.record_baseline(nibp_systolic=bp[0], nibp_diastolic=bp[1], spo2=98, pulse_rate=72)
    wf.confirm_checklist(all_true(protocol.pre_dose_checklist))


def read(writer, sql, params=()):
    return writer.run(lambda db: db.conn.execute(sql, params).fetchall())


def give_device(wf):
    return wf.give_dose(drug="esketamine", amount=28, unit="mg", route="intranasal",
                        lot_number="LOT-7")


def test_order_is_enforced(env):
    writer, clock, *_ = env
    wf = workflow(env)
    assert wf.state == "check_in"
    with pytest.raises(WorkflowError, match="cannot give a dose before check-in: check the patient"
                                            " in first"):
        give_device(wf)
    with pytest.raises(WorkflowError, match="check the patient in first"):
        wf.record_baseline(nibp_systolic=120, nibp_diastolic=80)
    wf.check_in(patient(), ESK)
    assert wf.state == "pre_dose"
    with pytest.raises(WorkflowError, match="already checked in|cannot check in"):
        wf.check_in(patient("MRN-2"), ESK)
    with pytest.raises(WorkflowError, match="nothing can be dosed before the baseline"):
        give_device(wf)
    wf.record_baseline(nibp_systolic=120, nibp_diastolic=80)
    with pytest.raises(WorkflowError, match="checklist is not confirmed"):
        give_device(wf)
    with pytest.raises(WorkflowError, match="checklist not complete: Patient enrolled in the REMS"):
        wf.confirm_checklist({**all_true(ESK.pre_dose_checklist), "rems_enrolled": False})
    wf.confirm_checklist(all_true(ESK.pre_dose_checklist))
    with pytest.raises(WorkflowError, match="cannot finish dosing now"):
        wf.finish_dosing()
    with pytest.raises(WorkflowError, match="cannot begin discharge now"):
        wf.begin_discharge()
    with pytest.raises(WorkflowError, match="cannot end the session now"):
        wf.end()
    give_device(wf)
    assert wf.state == "dosing"
    wf.finish_dosing()
    with pytest.raises(WorkflowError, match="cannot give a dose now: the session is at 'monitoring'"):
        give_device(wf)
    # nothing of the refused steps reached the database
    assert read(writer, "SELECT count(*) FROM doses")[0][0] == 1


def test_every_transition_is_recorded(env):
    writer, clock, *_ = env
    wf = workflow(env)
    ready_to_dose(wf)
    give_device(wf)
    clock.advance(300)
    give_device(wf)
    wf.finish_dosing()
    clock.advance(ESK.min_monitoring_min * 60)
    wf.begin_discharge()
    wf.record_bp(122, 78)
    wf.record_scale("cadss", {n: 0 for n in range(1, 24)})
    wf.discharge(all_true(ESK.discharge_criteria))
    wf.end()
    transitions = [(json.loads(d)["from"], json.loads(d)["to"]) for (d,) in read(
        writer, "SELECT data FROM events WHERE kind='workflow.state' ORDER BY id")]
    assert transitions == [("check_in", "pre_dose"), ("pre_dose", "dosing"),
                           ("dosing", "monitoring"), ("monitoring", "discharge"),
                           ("discharge", "ended")]
    audited = read(writer, "SELECT count(*) FROM audit_log WHERE action='workflow.workflow.state'"
                           " AND session_id='s1'")[0][0]
    assert audited == 5
    assert read(writer, "SELECT state, status, ended_utc IS NOT NULL FROM sessions")[0] == \
        ("ended", "ended", 1)
    # every entry attributed, UTC on disk
    rows = read(writer, "SELECT user_id, t_utc FROM events WHERE session_id='s1'")
    assert rows and all(u == "nina" and t.endswith("Z") for u, t in rows)
    writer.run(verify_chain)
    doses = read(writer, "SELECT device_index, lot_number, amount, unit, route FROM doses")
    assert doses == [(1, "LOT-7", 28.0, "mg", "intranasal"), (2, "LOT-7", 28.0, "mg", "intranasal")]
    assert read(writer, "SELECT minutes_to_ready FROM discharges")[0][0] == pytest.approx(125.0)


def test_high_baseline_bp_needs_a_recorded_reason(env):
    writer, clock, *_ = env
    wf = workflow(env)
    wf.check_in(patient(), ESK)
    assert wf.record_baseline(nibp_systolic=152, nibp_diastolic=88) is True
    wf.confirm_checklist(all_true(ESK.pre_dose_checklist))
    with pytest.raises(WorkflowError, match="above the protocol threshold: record a reason"):
        give_device(wf)
    with pytest.raises(WorkflowError, match="needs a reason"):
        wf.proceed_despite_baseline("  ")
    wf.proceed_despite_baseline("Repeat 146/86 after rest; physician agrees")
    give_device(wf)
    (data,) = read(writer, "SELECT data FROM events WHERE kind='baseline.proceed'")[0]
    assert json.loads(data)["reason"].startswith("Repeat 146/86")


def test_normal_baseline_needs_no_reason(env):
    wf = workflow(env)
    wf.check_in(patient(), ESK)
    assert wf.record_baseline(nibp_systolic=120, nibp_diastolic=70) is False
    with pytest.raises(WorkflowError, match="no reason needed"):
        wf.proceed_despite_baseline("just because")
    with pytest.raises(WorkflowError, match="diastolic must be below systolic"):
        wf.record_baseline(nibp_systolic=80, nibp_diastolic=90)


def test_tasks_due_and_overdue_on_the_monotonic_clock(env):
    writer, clock, *_ = env
    wf = workflow(env)
    ready_to_dose(wf)
    assert {t.id: t.state for t in wf.tasks()}["moaas@15"] == "waiting"
    assert {t.id: t.state for t in wf.tasks()}["cadss@pre"] == "due"
    dose_t = clock.monotonic()
    give_device(wf)

    def state(cid, at):
        return {t.id: t for t in wf.tasks(dose_t + at)}[cid]

    assert state("moaas@15", 12 * 60).state == "upcoming"
    assert state("moaas@15", 13 * 60).state == "due"  # 2 min lead
    assert state("moaas@15", 20 * 60).state == "due"  # 5 min tolerance
    assert state("moaas@15", 20 * 60 + 1).state == "overdue"
    assert state("moaas@15", 0).due_mono == dose_t + 900
    assert state("cadss@pre", 0).state == "overdue"  # missed before the dose
    assert state("bp@discharge", 0).state == "upcoming"
    clock.advance(21 * 60)
    wf.finish_dosing()
    _, score = wf.record_scale("moaas", {1: 4})
    assert score.total == 4
    assert state("moaas@15", 21 * 60).state == "done"
    (check_id, variant) = read(writer, "SELECT check_id, variant FROM scale_entries")[0]
    assert (check_id, variant) == ("moaas@15", "0-5")


def test_an_extra_reading_does_not_use_up_a_later_check(env):
    writer, clock, *_ = env
    wf = workflow(env)
    ready_to_dose(wf)
    give_device(wf)
    clock.advance(5 * 60)
    assert wf.record_bp(130, 82) is None  # bp@40 is far off
    clock.advance(34 * 60)
    assert wf.record_bp(142, 88) == "bp@40"


def test_nibp_is_requested_when_due_and_paused_during_a_restroom_break(env):
    writer, clock, *_ = env
    calls = []
    wf = workflow(env, protocol=IV, request_nibp=lambda: calls.append(clock.monotonic()))
    ready_to_dose(wf, IV)
    wf.start_infusion(drug="ketamine", amount=35, unit="mg", rate=52.5, rate_unit="mg/h")
    t0 = clock.monotonic()
    wf.poll(t0 + 9 * 60)
    assert calls == []  # due soon (reminder), but the cuff starts at the scheduled time
    clock.advance(10 * 60)
    wf.poll()
    wf.poll()
    assert len(calls) == 1
    wf.add_event("restroom")
    assert wf.snapshot.nibp_paused
    clock.advance(10 * 60)
    wf.poll()
    assert len(calls) == 1  # bp@20 not requested while the patient is away
    wf.add_event("restroom_end")
    wf.poll()
    assert len(calls) == 2
    writer.flush()
    requested = [json.loads(d)["check_id"] for (d,) in read(
        writer, "SELECT data FROM events WHERE kind='nibp.requested' ORDER BY id")]
    assert requested == ["bp@10", "bp@20"]
    with pytest.raises(WorkflowError, match="no restroom break"):
        wf.add_event("restroom_end")


def test_nibp_request_failure_is_recorded_and_left_to_the_nurse(env):
    writer, clock, *_ = env

    def cannot():
        raise NotSupportedError("oximeter cannot measure blood pressure")

    wf = workflow(env, request_nibp=cannot)
    ready_to_dose(wf)
    give_device(wf)
    clock.advance(40 * 60)
    tasks = wf.poll()
    assert {t.id: t.state for t in tasks}["bp@40"] == "due"
    writer.flush()
    (data,) = read(writer, "SELECT data FROM events WHERE kind='nibp.requested'")[0]
    assert json.loads(data) == {"check_id": "bp@40", "ok": False,
                                "message": "oximeter cannot measure blood pressure"}


def test_a_measured_nibp_fulfils_the_due_check(env):
    writer, clock, *_ = env
    wf = workflow(env)
    ready_to_dose(wf)
    give_device(wf)
    clock.advance(41 * 60)
    wf.on_sample(Numeric.of("spo2", 97, t_mono=clock.monotonic(), t_wall=clock.wall(),
                            source="oximeter"))
    wf.on_sample(Numeric.of("nibp_systolic", 141, t_mono=clock.monotonic(), t_wall=clock.wall(),
                            source="nibp"))
    wait_for(lambda: {t.id: t.state for t in wf.tasks()}["bp@40"] == "done")
    row = read(writer, "SELECT check_id, entry_table, data FROM check_results WHERE"
                       " check_id='bp@40'")[0]
    assert row[1] == "numerics" and json.loads(row[2]) == {"systolic": 141, "source": "nibp"}


def test_infusion_start_rate_stop(env):
    writer, clock, *_ = env
    wf = workflow(env, protocol=IV)
    ready_to_dose(wf, IV)
    with pytest.raises(WorkflowError, match="cannot stop the infusion now"):
        wf.stop_infusion()
    wf.start_infusion(drug="ketamine", amount=35, unit="mg", rate=52.5, rate_unit="mg/h",
                      lot_number="K-123")
    with pytest.raises(WorkflowError, match="already running"):
        wf.start_infusion(drug="ketamine", amount=35, unit="mg", rate=52.5, rate_unit="mg/h")
    clock.advance(600)
    wf.change_infusion_rate(40, "mg/h", reason="BP 165/95")
    with pytest.raises(WorkflowError, match="still running"):
        wf.finish_dosing()
    with pytest.raises(WorkflowError, match="rate unit"):
        wf.change_infusion_rate(40, "drops/min")
    clock.advance(1800)
    wf.stop_infusion(amount_given=33.5)
    wf.finish_dosing()
    rows = read(writer, "SELECT action, drug, rate, rate_unit, amount, lot_number FROM doses"
                        " ORDER BY id")
    assert rows == [("infusion_start", "ketamine", 52.5, "mg/h", 35.0, "K-123"),
                    ("infusion_rate", "ketamine", 40.0, "mg/h", None, None),
                    ("infusion_stop", "ketamine", None, None, 33.5, None)]
    assert wf.snapshot.first_dose_mono == 0.0


@pytest.mark.parametrize("kw, message", [
    (dict(amount=0), "must be a number above 0"),
    (dict(unit="tablets"), "dose unit"),
    (dict(route="rectal"), "route must be"),
    (dict(lot_number=""), "needs its lot number"),
    (dict(drug=" "), "needs a drug name"),
])
def test_bad_doses_are_refused(env, kw, message):
    wf = workflow(env)
    ready_to_dose(wf)
    args = dict(drug="esketamine", amount=28, unit="mg", route="intranasal", lot_number="L")
    with pytest.raises(WorkflowError, match=message):
        wf.give_dose(**{**args, **kw})
    assert wf.state == "pre_dose"


def test_only_clinical_users_make_entries_and_handover_is_recorded(env):
    writer, clock, auth, admin, nurse = env
    auditor = auth.create_user(admin, "audrey", "Audrey Auditor", "auditor", "Audit-key-2026")
    phil = auth.create_user(admin, "phil", "Phil Physician", "physician", "Phys-key-2026")
    wf = workflow(env)
    wf.check_in(patient(), ESK)
    wf.user = auditor
    with pytest.raises(WorkflowError, match="only a nurse or physician"):
        wf.add_note("hello")
    wf.user = None
    with pytest.raises(WorkflowError, match="nobody is logged in"):
        wf.add_note("hello")
    wf.user = nurse
    wf.set_user(phil, handover=True)
    wf.add_note("Took over from Nina")
    rows = read(writer, "SELECT kind, user_id, data FROM events WHERE kind IN ('handover', 'note')")
    assert rows[0][0] == "handover" and json.loads(rows[0][2]) == {"from": "nina", "to": "phil"}
    assert rows[1][:2] == ("note", "phil")


def test_quick_events_and_notes(env):
    writer, clock, *_ = env
    wf = workflow(env)
    ready_to_dose(wf)
    give_device(wf)
    for kind in ("nausea", "vomiting", "anxiety", "hypertension_treated", "oxygen",
                 "probe_repositioned"):
        wf.add_event(kind)
    wf.add_event("medication", text="ondansetron 4 mg IV")
    with pytest.raises(WorkflowError, match="needs the medication"):
        wf.add_event("medication")
    with pytest.raises(WorkflowError, match="unknown quick event"):
        wf.add_event("sneezing")
    with pytest.raises(WorkflowError, match="cannot be empty"):
        wf.add_note("   ")
    wf.add_note("Patient calm")
    types = [json.loads(d)["type"] for (d,) in read(writer, "SELECT data FROM events WHERE"
                                                             " kind='event' ORDER BY id")]
    assert types == ["nausea", "vomiting", "anxiety", "hypertension_treated", "oxygen",
                     "probe_repositioned", "medication"]


def test_amendments_never_overwrite(env):
    writer, clock, *_ = env
    wf = workflow(env)
    ready_to_dose(wf)
    entry_id, score = wf.record_scale("cadss", {n: 1 for n in range(1, 24)})
    assert score.total == 23
    amendment = wf.amend("scale_entries", entry_id, "item 3 misread from the form",
                         {"items": {"3": 4}})
    # the original row is unchanged; the amendment holds the re-scored values
    assert read(writer, "SELECT total, items FROM scale_entries WHERE id=?", (entry_id,))[0][0] == 23
    target, reason, changes = read(writer, "SELECT target_table || ':' || target_id, reason, changes"
                                           " FROM amendments WHERE id=?", (amendment,))[0]
    changes = json.loads(changes)
    assert target == f"scale_entries:{entry_id}" and reason == "item 3 misread from the form"
    assert changes["total"] == 26 and changes["items"]["3"] == 4
    assert changes["subscales"]["depersonalization"] == 10
    dose_id = give_device(wf)
    wf.amend("doses", dose_id, "lot number typo", {"lot_number": "LOT-8"})
    assert read(writer, "SELECT lot_number FROM doses")[0][0] == "LOT-7"
    was = [json.loads(d)["was"] for (d,) in read(writer, "SELECT data FROM events WHERE"
                                                          " kind='amendment' ORDER BY id")]
    assert was[1] == {"lot_number": "LOT-7"}
    with pytest.raises(WorkflowError, match="needs a reason"):
        wf.amend("doses", dose_id, " ", {"lot_number": "X"})
    with pytest.raises(WorkflowError, match="colour cannot be corrected"):
        wf.amend("doses", dose_id, "why", {"colour": "red"})
    with pytest.raises(WorkflowError, match="cannot amend users"):
        wf.amend("users", "nina", "why", {"role": "admin"})
    with pytest.raises(WorkflowError, match="outside 0..4"):
        wf.amend("scale_entries", entry_id, "why", {"items": {"3": 9}})
    other = workflow(env, sid="s2")
    other.check_in(patient("MRN-2"), ESK)
    with pytest.raises(WorkflowError, match="no doses entry"):
        other.amend("doses", dose_id, "wrong session", {"lot_number": "X"})
    # the database itself refuses edits of clinical entries
    with pytest.raises(Exception, match="append-only"):
        writer.run(lambda db: db.conn.execute("UPDATE doses SET lot_number='X'"))
    with pytest.raises(Exception, match="append-only"):
        writer.run(lambda db: db.conn.execute("DELETE FROM scale_entries"))


@pytest.mark.parametrize("field", ["user_id", "t_utc", "t_mono", "t_wall", "session_id", "id",
                                   "route", "action", "device_index"])
def test_who_when_where_and_ids_are_never_corrected(env, field):
    writer, clock, *_ = env
    wf = workflow(env)
    ready_to_dose(wf)
    dose_id = give_device(wf)
    with pytest.raises(WorkflowError, match=f"{field} cannot be corrected in a dose entry \\(dose\\)"
                                            " \\(correctable: drug, amount, unit, lot_number\\)"):
        wf.amend("doses", dose_id, "why", {field: "x"})
    note = wf.add_note("resting")
    with pytest.raises(WorkflowError, match=f"{field} cannot be corrected in a note event"):
        wf.amend("events", note, "why", {field: "x"})
    assert read(writer, "SELECT count(*) FROM amendments")[0][0] == 0


@pytest.mark.parametrize("table, changes, message", [
    ("doses", {"amount": -28}, "must be a number above 0"),
    ("doses", {"amount": "28"}, "must be a number above 0"),
    ("doses", {"unit": "grains"}, "dose unit must be one of"),
    ("doses", {"lot_number": " "}, "needs its lot number"),
    ("doses", {"drug": ""}, "needs a drug name"),
    ("bp", {"nibp_systolic": 400}, "NIBP sys 400 is not possible"),
    ("bp", {"nibp_diastolic": 130}, "diastolic must be below systolic"),
    ("note", {"text": "  "}, "a note cannot be empty"),
    ("scale", {"items": {"3": 9}}, "outside 0..4"),
    ("scale", {"items": {"99": 1}}, "has no item 99"),
    ("checkin", {"mrn": "MRN-9"}, "a checkin event cannot be corrected"),
])
def test_corrections_pass_the_original_entrys_checks(env, table, changes, message):
    writer, clock, *_ = env
    wf = workflow(env)
    ready_to_dose(wf)
    wf.record_bp(128, 80)
    ids = {"doses": give_device(wf),
           "bp": read(writer, "SELECT id FROM events WHERE kind='bp.manual'")[0][0],
           "note": wf.add_note("resting"),
           "scale": wf.record_scale("cadss", {n: 1 for n in range(1, 24)})[0],
           "checkin": read(writer, "SELECT id FROM events WHERE kind='checkin'")[0][0]}
    target = {"bp": "events", "note": "events", "scale": "scale_entries",
              "checkin": "events"}.get(table, table)
    with pytest.raises(WorkflowError, match=message):
        wf.amend(target, ids[table], "why", changes)
    assert read(writer, "SELECT count(*) FROM amendments")[0][0] == 0


def test_a_valid_correction_of_each_kind(env):
    writer, clock, *_ = env
    wf = workflow(env)
    ready_to_dose(wf)
    dose_id = give_device(wf)
    wf.record_bp(128, 80)
    bp_event = read(writer, "SELECT id FROM events WHERE kind='bp.manual'")[0][0]
    assert wf.correctable("events", bp_event) == ("nibp_systolic", "nibp_diastolic", "nibp_mean",
                                                  "nibp_pulse_rate")
    assert wf.correctable("doses", dose_id) == ("drug", "amount", "unit", "lot_number")
    wf.amend("doses", dose_id, "second device was 28 mg, typed 82", {"amount": 28, "unit": "mg"})
    wf.amend("events", bp_event, "read off the wrong line", {"nibp_systolic": 138})
    rows = read(writer, "SELECT target_table, changes FROM amendments ORDER BY id")
    assert [(t, json.loads(c)) for t, c in rows] == [
        ("doses", {"amount": 28.0, "unit": "mg"}), ("events", {"nibp_systolic": 138.0})]


def test_signed_session_takes_no_amendments(env):
    writer, clock, *_ = env
    wf = workflow(env)
    ready_to_dose(wf)
    note = wf.add_note("x")
    writer.run(lambda db: db.conn.execute("UPDATE sessions SET status='signed' WHERE id='s1'"))
    with pytest.raises(WorkflowError, match="signed: add an addendum"):
        wf.amend("events", note, "typo", {"text": "y"})


def test_discharge_rules(env):
    writer, clock, *_ = env
    wf = workflow(env)
    ready_to_dose(wf)
    give_device(wf)
    wf.finish_dosing()
    clock.advance(60 * 60)
    with pytest.raises(WorkflowError, match="only 60 of the 120 minutes"):
        wf.begin_discharge()
    wf.begin_discharge(early_reason="Transferred to the emergency department")
    with pytest.raises(WorkflowError, match="before discharge, do or skip: Blood pressure before"
                                            " discharge; CADSS before discharge"):
        wf.discharge(all_true(ESK.discharge_criteria))
    wf.record_bp(130, 80)
    with pytest.raises(WorkflowError, match="needs a reason"):
        wf.skip_check("cadss@discharge", "")
    wf.skip_check("cadss@discharge", "patient left with paramedics")
    with pytest.raises(WorkflowError, match="not answered: vitals_acceptable"):
        wf.discharge({k: True for k in all_true(ESK.discharge_criteria) if k != "vitals_acceptable"})
    crit = {**all_true(ESK.discharge_criteria), "clinician_ready": False}
    with pytest.raises(WorkflowError, match="not every discharge criterion is met: give a reason"):
        wf.discharge(crit)
    wf.discharge(crit, reason="transfer, not discharge home")
    with pytest.raises(WorkflowError, match="already recorded"):
        wf.discharge(crit, reason="again")
    wf.end()
    assert read(writer, "SELECT all_met, reason FROM discharges")[0] == \
        (0, "transfer, not discharge home")
    reason = json.loads(read(writer, "SELECT data FROM events WHERE kind='workflow.state' AND"
                                     " data LIKE '%discharge\"%' ORDER BY id")[0][0])
    assert reason == {"from": "monitoring", "to": "discharge",
                      "reason": "Transferred to the emergency department"}
    wf.add_note("Late note after the end")  # notes are still possible before signing



BAD_DISCHARGES = [  # (criteria changed from all met, reason, error): the entry and its correction
    ({"clinician_ready": 1}, None, "must be {criterion id: true or false}"),
    ({"walked_home": True}, None, "not a discharge criterion: walked_home"),
    ({"clinician_ready": False}, "  ", "not every discharge criterion is met: give a reason"),
    ({"clinician_ready": False}, 7, "the reason must be text"),
]


def test_a_discharge_and_its_correction_follow_the_same_rules(env):
    writer, clock, *_ = env
    wf = workflow(env)
    ready_to_dose(wf)
    give_device(wf)
    wf.finish_dosing()
    clock.advance(121 * 60)
    wf.begin_discharge()
    wf.record_bp(130, 80)
    wf.skip_check("cadss@discharge", "patient declined")
    good = all_true(ESK.discharge_criteria)
    for change, reason, match in BAD_DISCHARGES:
        with pytest.raises(WorkflowError, match=re.escape(match)):
            wf.discharge({**good, **change}, reason=reason)
    discharge_id = wf.discharge(good)
    for change, reason, match in BAD_DISCHARGES:
        with pytest.raises(WorkflowError, match=re.escape(match)):
            wf.amend("discharges", discharge_id, "typed the wrong box",
                     {"criteria": {**good, **change}, "reason": reason})
    assert read(writer, "SELECT count(*) FROM amendments")[0] == (0,)

def test_abandon_from_any_step(env):
    writer, clock, *_ = env
    wf = workflow(env)
    wf.check_in(patient(), ESK)
    with pytest.raises(WorkflowError, match="needs a reason"):
        wf.abandon("")
    wf.abandon("patient declined treatment")
    assert read(writer, "SELECT state, status FROM sessions")[0] == ("ended", "abandoned")
    with pytest.raises(WorkflowError, match="cannot end the session early now"):
        wf.abandon("again")


def test_patient_record_and_rems_flags(env):
    writer, clock, *_ = env
    wf = workflow(env)
    saved = wf.check_in(Patient("MRN-9", "Jo Bloggs", "1970-01-01", "male", 80.0, opioids=True), ESK)
    assert saved.id and wf.patient().opioids is True and wf.patient().maois is None
    assert "Benzodiazepines" in wf.patient().missing_rems
    row = read(writer, "SELECT mrn, weight_kg, opioids, maois FROM patients")[0]
    assert row == ("MRN-9", 80.0, 1, None)
    second = workflow(env, sid="s2")
    with pytest.raises(WorkflowError, match="birth date '1970-13-01' is not YYYY-MM-DD"):
        second.check_in(Patient("MRN-10", "X", "1970-13-01"), ESK)
    with pytest.raises(WorkflowError, match="already exists"):
        second.check_in(Patient("MRN-9", "Someone else"), ESK)
    assert second.state == "check_in"


def test_state_survives_a_restart(env, db_path):
    writer, clock, auth, admin, nurse = env
    wf = workflow(env)
    ready_to_dose(wf)
    give_device(wf)
    again = SessionWorkflow(writer, "s1", clock, user=nurse)  # e.g. after a crash
    assert again.state == "dosing" and again.protocol.name == ESK.name
    assert again.snapshot.first_dose_mono == wf.snapshot.first_dose_mono
    with pytest.raises(sqlite3.OperationalError):
        open_db(db_path, readonly=True).conn.execute("INSERT INTO doses DEFAULT VALUES")


def test_event_listeners_hear_committed_entries_only(env):
    writer, clock, *_ = env
    wf = workflow(env)
    heard = []
    wf.event_listeners.append(lambda kind, t, data: heard.append((kind, t, data.get("event_id"))))
    wf.check_in(patient(), ESK)
    with pytest.raises(WorkflowError):
        give_device(wf)  # refused: nothing heard
    clock.advance(10)
    wf.add_note("hello")
    assert [h[0] for h in heard] == ["checkin", "workflow.state", "note"]
    assert heard[-1][1] == 10.0
    ids = [r[0] for r in read(writer, "SELECT id FROM events ORDER BY id")]
    assert [h[2] for h in heard] == ids


def test_baseline_source_device_manual_or_mixed(env):
    writer, clock, *_ = env
    wf = workflow(env)
    wf.check_in(patient(), ESK)
    wf.record_baseline(nibp_systolic=128, nibp_diastolic=80, spo2=97, pulse_rate=70,
                       typed={"nibp_systolic", "nibp_diastolic"})
    (data,) = read(writer, "SELECT data FROM events WHERE kind='baseline'")[0]
    assert json.loads(data)["source"] == "mixed"
    manual = read(writer, "SELECT metric FROM numerics WHERE source='manual' ORDER BY metric")
    assert [m for (m,) in manual] == ["nibp_diastolic", "nibp_systolic"]  # SpO2 came from the device
    with pytest.raises(WorkflowError, match="'device' or 'manual'"):
        wf.record_baseline(nibp_systolic=128, nibp_diastolic=80, source="guess")


# -- sessions the monitor creates wait for check-in ----------------------------------------------
def test_a_monitor_session_awaits_check_in_and_refuses_clinical_entries(db_path):
    from ketmonitor.runtime import MonitorRuntime

    clock = ManualClock(0.0)
    rt = MonitorRuntime(db_path, [], clock=clock, t0=0.0, commit_interval=0.05)
    sid = rt.start()
    try:
        auth = Authenticator(rt.writer, clock=clock, hasher=cheap_hasher())
        admin = auth.first_start(Clinic("North clinic"), "admin", "Ada Admin", "Boss-key-2026x")
        nurse = auth.create_user(admin, "nina", "Nina Nurse", "nurse", "Nurse-pass-2026",
                                 must_change=False)
        state = rt.writer.run(lambda db: db.conn.execute(
            "SELECT state FROM sessions WHERE id = ?", (sid,)).fetchone()[0])
        assert state == "check_in"
        wf = SessionWorkflow(rt.writer, sid, clock, user=nurse, protocol=ESK)
        assert wf.state == "check_in" and not wf.snapshot.checked_in
        for attempt in (lambda: wf.record_bp(120, 80), lambda: wf.add_event("nausea"),
                        lambda: wf.add_note("early"),
                        lambda: wf.record_scale("moaas", {1: 5}),
                        lambda: wf.skip_check("bp@40", "not needed"),
                        lambda: wf.begin_discharge("left"), lambda: give_device(wf)):
            with pytest.raises(WorkflowError, match="before check-in: check the patient in first"):
                attempt()
        rt.publish(Numeric.of("spo2", 97, t_mono=1.0, t_wall=clock.wall(), source="ox"))
        rt.writer.flush()
        counts = rt.writer.run(lambda db: db.conn.execute(
            "SELECT (SELECT count(*) FROM numerics WHERE session_id = ?),"
            " (SELECT count(*) FROM events WHERE session_id = ? AND kind IN"
            " ('bp.manual', 'event', 'note', 'scale'))", (sid, sid)).fetchone())
        assert counts == (1, 0)  # vitals recorded, no clinical entry
        wf.check_in(patient(), ESK)
        assert wf.state == "pre_dose"
        wf.add_note("checked in")
    finally:
        rt.stop()


def test_a_session_left_at_monitoring_by_an_older_version_is_read_as_awaiting_check_in(env):
    writer, clock, *_ = env
    writer.run(lambda db: db["sessions"].insert({  # the old column default: 'monitoring'
        "id": "old", "created_utc": "2026-01-01T00:00:00Z", "started_utc": "2026-01-01T00:00:00Z",
        "wall_anchor": clock.wall(), "mono_anchor": 0.0}))
    assert read(writer, "SELECT state FROM sessions WHERE id='old'")[0][0] == "monitoring"
    wf = workflow(env, sid="old", protocol=ESK)
    assert wf.state == "check_in"
    with pytest.raises(WorkflowError, match="before check-in"):
        wf.begin_discharge()
    wf.check_in(patient(), ESK)
    assert wf.state == "pre_dose"


def test_discharge_without_a_dose_is_refused_not_a_crash(env):
    writer, clock, *_ = env
    wf = workflow(env)
    wf.check_in(patient(), ESK)
    # an inconsistent row (e.g. written by hand, or an older version): monitoring with no dose
    writer.run(lambda db: db.conn.execute("UPDATE sessions SET state='monitoring' WHERE id='s1'"))
    wf.refresh()
    with pytest.raises(WorkflowError, match="nothing has been dosed"):
        wf.begin_discharge("patient left")


# -- intranasal devices against the protocol ----------------------------------------------------
def test_intranasal_devices_follow_the_protocol_or_need_a_reason(env):
    writer, clock, *_ = env
    wf = workflow(env)
    ready_to_dose(wf)
    give_device(wf)
    clock.advance(10)
    with pytest.raises(DoseDeviationError, match="device 2 comes 0:10 after the previous one; the"
                                                 " protocol asks for at least 5 min") as err:
        give_device(wf)
    assert len(err.value.deviations) == 1
    assert read(writer, "SELECT count(*) FROM doses")[0][0] == 1
    second = wf.give_dose(drug="esketamine", amount=28, unit="mg", route="intranasal",
                          lot_number="LOT-7", deviation_reason="patient sneezed: repeat device")
    data = json.loads(read(writer, "SELECT data FROM events WHERE kind='dose' ORDER BY id DESC"
                                   " LIMIT 1")[0][0])
    assert data["dose_id"] == second and data["deviation_reason"] == "patient sneezed: repeat device"
    assert data["deviations"] == ["device 2 comes 0:10 after the previous one; the protocol asks"
                                  " for at least 5 min between devices"]
    audit = read(writer, "SELECT detail FROM audit_log WHERE action='workflow.dose' ORDER BY seq"
                         " DESC LIMIT 1")[0][0]
    assert "patient sneezed" in audit
    clock.advance(300)
    give_device(wf)  # 5 min later: within the protocol, no reason asked
    clock.advance(300)
    with pytest.raises(DoseDeviationError) as err:
        give_device(wf)
    assert err.value.deviations == ["device 4: the protocol allows at most 3 devices",
                                    "the total would be 112 mg; the protocol's maximum is 84 mg"]
    with pytest.raises(DoseDeviationError, match="device 4 is 56 mg; the protocol's devices are"
                                                 " 28 mg"):
        wf.give_dose(drug="esketamine", amount=56, unit="mg", route="intranasal",
                     lot_number="LOT-7")
    writer.run(verify_chain)


def test_minimum_monitoring_counts_from_the_last_device(env):
    writer, clock, *_ = env
    wf = workflow(env)
    ready_to_dose(wf)
    give_device(wf)
    first = clock.monotonic()
    clock.advance(300)
    give_device(wf)
    wf.finish_dosing()
    clock.set(first + 121 * 60)  # 2 h after the first device, 1h56 after the last
    assert round(wf.minutes_monitored()) == 116
    with pytest.raises(WorkflowError, match="only 116 of the 120 minutes of monitoring after the"
                                            " last dose"):
        wf.begin_discharge()
    clock.set(first + 125 * 60)
    wf.begin_discharge()
    assert wf.state == "discharge"


def test_an_infusion_protocol_may_count_from_the_first_dose(env):
    writer, clock, *_ = env
    wf = workflow(env)
    ready_to_dose(wf, IV)
    assert IV.min_monitoring_from == "first_dose"
    wf.start_infusion(drug="ketamine", amount=35, unit="mg", rate=52.5, rate_unit="mg/h")
    start = clock.monotonic()
    clock.advance(40 * 60)
    wf.stop_infusion(amount_given=35)
    wf.finish_dosing()
    clock.set(start + 81 * 60)
    wf.begin_discharge()
    assert wf.state == "discharge"
