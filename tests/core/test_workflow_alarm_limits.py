"""Check-in puts the protocol's alarm limits in force on the monitor's alarm engine, as an audited
limit change; limits the clinic's settings refuse stop the check-in, not the monitor. Real writer,
real SQLite file, the engine wired to the alarm log as the runtime wires it."""

from __future__ import annotations

import json
import sqlite3

import pytest

from ketmonitor.alarms import AlarmConfig, AlarmEngine, alarm_log_listener
from ketmonitor.audit import verify_chain
from ketmonitor.clock import ManualClock
from ketmonitor.dispatch import Dispatcher
from ketmonitor.errors import WorkflowError
from ketmonitor.protocols import BUILTIN_DIR, load_protocols
from ketmonitor.store import open_db
from ketmonitor.users import Authenticator, Clinic, InlineRunner
from ketmonitor.workflow import SessionWorkflow
from tests.core.test_users import cheap_hasher
from tests.core.test_workflow import env, patient  # noqa: F401 - fixture

SID = "s1"


def strict_protocol(tmp_path, **spo2):
    data = json.loads((BUILTIN_DIR / "esketamine-intranasal.json").read_text())
    data.update(name="esk-strict")
    data["alarm_limits"]["spo2"] = spo2
    data["alarm_limits"]["pulse_rate"] = {"low": 55, "high": 120}
    (tmp_path / "strict.json").write_text(json.dumps(data))
    return load_protocols(tmp_path)["esk-strict"]


def wired(env, config=None, clinic_dir=None):  # noqa: F811
    writer, clock, auth, admin, nurse = env
    d = Dispatcher()
    engine = AlarmEngine(AlarmConfig.from_dict(config), clock=clock, emit=d.publish)
    d.add_listener(writer.listener(SID))
    d.add_listener(alarm_log_listener(writer, SID))
    wf = SessionWorkflow(writer, SID, clock, user=nurse, alarms=engine, clinic_dir=clinic_dir)
    return wf, engine


def test_check_in_applies_the_protocol_limits_as_an_audited_change(env, tmp_path):  # noqa: F811
    writer, clock, *_ = env
    protocol = strict_protocol(tmp_path, low=92, desat=88)
    wf, engine = wired(env)
    engine.set_limit("spo2_low", user_id="nina", role="nurse", limit=89)  # before check-in
    wf.check_in(patient(), protocol)
    assert wf.state == "pre_dose"
    assert (engine.spec("spo2_low").limit, engine.spec("spo2_desat").limit,
            engine.spec("pulse_rate_low").limit) == (92, 88, 55)
    assert engine.changed_limits() == ()  # the protocol's limits are now the defaults
    writer.flush()
    rows = writer.run(lambda db: db.conn.execute(
        "SELECT user_id, entity_id, detail, t_utc FROM audit_log WHERE action ="
        " 'alarm.limits_changed' ORDER BY seq").fetchall())
    changes = [(u, e, json.loads(d)) for u, e, d, _t in rows]
    assert changes[0] == ("nina", "spo2_low", {"field": "limit", "old": 90, "new": 89,
                                               "role": "nurse"})
    assert [(u, e, d["old"], d["new"], d["reason"]) for u, e, d in changes[1:]] == [
        ("nina", "spo2_desat", 85, 88, "protocol esk-strict"),
        ("nina", "spo2_low", 89, 92, "protocol esk-strict"),
        ("nina", "pulse_rate_low", 50, 55, "protocol esk-strict")]
    assert all(t.endswith("Z") for *_x, t in rows)
    events = writer.run(lambda db: db.conn.execute(
        "SELECT data FROM events WHERE session_id = ? AND kind = 'alarm.limits_changed'",
        (SID,)).fetchall())
    assert len(events) == 4
    writer.run(verify_chain)


def test_limits_the_clinic_refuses_stop_the_check_in(env, tmp_path):  # noqa: F811
    writer, *_ = env
    protocol = strict_protocol(tmp_path, low=90, desat=80)  # valid by the default ranges
    wf, engine = wired(env, {"conditions": {"spo2_desat": {"limit_min": 83, "limit": 85}}})
    with pytest.raises(WorkflowError, match="protocol esk-strict cannot be applied with this "
                                            "clinic's alarm settings: .*lowest this clinic allows"):
        wf.check_in(patient(), protocol)
    assert wf.state == "check_in" and not wf.snapshot.checked_in
    assert engine.spec("spo2_desat").limit == 85 and engine.spec("pulse_rate_low").limit == 50


def test_a_resumed_session_gets_its_protocols_limits_again(env, tmp_path):  # noqa: F811
    writer, clock, auth, admin, nurse = env
    protocol = strict_protocol(tmp_path, low=93)
    wf, _ = wired(env)
    wf.check_in(patient(), protocol)
    # after a restart: a new engine on the clinic defaults, the same session
    again, engine = wired(env, clinic_dir=tmp_path)
    assert again.protocol == protocol
    assert engine.spec("spo2_low").limit == 90
    assert again.apply_protocol_limits(note="session resumed") == {"spo2_low": (90, 93),
                                                                  "pulse_rate_low": (50, 55)}
    writer.flush()
    reasons = writer.run(lambda db: [json.loads(d).get("reason") for (d,) in db.conn.execute(
        "SELECT detail FROM audit_log WHERE action = 'alarm.limits_changed' ORDER BY seq")])
    assert reasons[-1] == "protocol esk-strict (session resumed)"


class DoomedCommits(InlineRunner):
    """Real transactions on a real file. Armed, the next one's COMMIT fails as SQLite fails it: a
    deferred foreign-key violation is found only at COMMIT, after everything else has run."""

    doom_next = False

    def run(self, fn, timeout=None):
        if not self.doom_next:
            return super().run(fn)
        self.doom_next = False

        def doomed(db):
            result = fn(db)
            db.conn.execute("PRAGMA defer_foreign_keys = ON")
            db.conn.execute("INSERT INTO events (session_id, kind, t_mono, t_wall, t_utc)"
                            " VALUES ('no-such-session', 'orphan', 0, 0, '')")
            return result
        return super().run(doomed)


def test_a_check_in_that_does_not_commit_leaves_the_limits(db_path, tmp_path):
    protocol = strict_protocol(tmp_path, low=92, desat=88)
    db = open_db(db_path)
    runner = DoomedCommits(db)
    clock = ManualClock(0.0)
    auth = Authenticator(runner, clock=clock, hasher=cheap_hasher())
    admin = auth.first_start(Clinic("North clinic"), "admin", "Ada Admin", "Boss-key-2026x")
    nurse = auth.create_user(admin, "nina", "Nina Nurse", "nurse", "Nurse-pass-2026",
                             must_change=False)
    events = []
    engine = AlarmEngine(AlarmConfig(), clock=clock, emit=events.append)
    wf = SessionWorkflow(runner, SID, clock, user=nurse, alarms=engine)

    runner.doom_next = True
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        wf.check_in(patient(), protocol)
    assert (engine.spec("spo2_low").limit, engine.spec("spo2_desat").limit) == (90, 85)
    assert events == []  # no limit change happened, so none is recorded
    assert not db.conn.in_transaction  # rolled back, not left open
    assert wf.refresh().state == "check_in" and wf.protocol is None
    assert db.conn.execute("SELECT count(*) FROM patients").fetchone() == (0,)

    clock.advance(30)
    wf.check_in(patient(), protocol)  # the next attempt commits: now the limits follow
    assert (engine.spec("spo2_low").limit, engine.spec("spo2_desat").limit) == (92, 88)
    changes = [(e.data["condition"], e.data["reason"], e.t_mono) for e in events
               if e.kind == "alarm.limits_changed"]
    assert changes == [(key, "protocol esk-strict", 30)
                       for key in ("spo2_desat", "spo2_low", "pulse_rate_low")]
    db.conn.close()
