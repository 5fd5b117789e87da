"""The demo walk-through: every shipped protocol walked to its end, and the headless CLI demo."""

from __future__ import annotations

import json

import pytest

from ketmonitor.audit import verify_chain
from ketmonitor.cli import main
from ketmonitor.clock import ManualClock
from ketmonitor.demo_walkthrough import demo_minutes, demo_user, walk_through
from ketmonitor.protocols import load_protocols
from ketmonitor.store import open_db
from ketmonitor.users import InlineRunner
from ketmonitor.workflow import SessionWorkflow


class JumpingClock(ManualClock):
    """Simulated time that jumps to whatever time the walk-through waits for."""

    def sleep_until(self, t_mono, stop=None):
        self.set(t_mono)
        return not (stop and stop.is_set())


@pytest.mark.parametrize("name", sorted(load_protocols()))
def test_walk_through_every_protocol(db_path, name):
    db = open_db(db_path)
    runner, clock = InlineRunner(db), JumpingClock()
    protocol = load_protocols()[name]
    wf = SessionWorkflow(runner, "demo", clock, user=demo_user(runner, clock))
    report = walk_through(wf, protocol, clock)
    assert report.completed and wf.state == "ended"
    assert [t.id for t in wf.tasks() if t.state != "done"] == []
    kinds = {r[0] for r in db.conn.execute("SELECT kind FROM events")}
    assert {"checkin", "baseline", "checklist", "scale", "event", "note", "amendment",
            "discharge", "workflow.state"} <= kinds
    assert kinds & {"dose", "infusion.start"}
    lots = {r[0] for r in db.conn.execute("SELECT lot_number FROM doses WHERE action != "
                                          "'infusion_stop'")}
    assert lots == {"DEMO-LOT-0001"}
    # scheduled entries were made at their time, within the protocol's tolerance
    first = wf.snapshot.first_dose_mono
    for check_id, t_mono in db.conn.execute("SELECT check_id, t_mono FROM check_results"):
        check = protocol.check(check_id)
        if check.offset_s is not None:
            assert 0 <= t_mono - (first + check.offset_s) <= protocol.check_tolerance_min * 60
    # the demo created a clinic marked simulated and attributed everything to its nurse
    assert db.conn.execute("SELECT name FROM clinic").fetchone()[0] == "Demo clinic (simulated)"
    assert {r[0] for r in db.conn.execute("SELECT user_id FROM events")} == {"demo-nurse"}
    verify_chain(db)
    db.conn.close()


def test_stop_ends_the_walk_early(db_path):
    import threading

    db = open_db(db_path)
    runner, clock = InlineRunner(db), JumpingClock()
    protocol = load_protocols()["im-injection"]
    wf = SessionWorkflow(runner, "demo", clock, user=demo_user(runner, clock))
    stop = threading.Event()
    steps = []

    def on_step(text):
        steps.append(text)
        if text.startswith("baseline"):
            stop.set()

    report = walk_through(wf, protocol, clock, stop=stop, on_step=on_step)
    assert not report.completed and wf.state == "pre_dose"
    db.conn.close()


def test_headless_demo_walks_the_protocol(tmp_path, capsys):
    db_path = tmp_path / "demo.db"
    protocol = load_protocols()["im-injection"]
    rc = main(["demo", "--headless", "--protocol", "im-injection", "--speed", "1200",
               "--db", str(db_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "walked im-injection" in out and "session ended" in out
    assert f"{demo_minutes(protocol):g} simulated minutes" in out
    db = open_db(db_path)
    state, status = db.conn.execute("SELECT state, status FROM sessions").fetchone()
    assert (state, status) == ("ended", "signed")  # the demo signs its record at the end
    bp = [json.loads(d) for (d,) in db.conn.execute(
        "SELECT data FROM check_results WHERE check_id LIKE 'bp@%' ORDER BY id")]
    assert len(bp) == len([c for c in protocol.checks if c.kind == "bp"])
    verify_chain(db)
    db.conn.close()


def test_workflow_record_and_rems_summary(db_path):
    from ketmonitor.workflow_read import rems_summary, workflow_record

    db = open_db(db_path)
    runner, clock = InlineRunner(db), JumpingClock()
    protocol = load_protocols()["esketamine-intranasal"]
    wf = SessionWorkflow(runner, "demo", clock, user=demo_user(runner, clock))
    walk_through(wf, protocol, clock)
    rec = workflow_record(db, "demo")
    nausea = [e for e in rec["events"] if e["kind"] == "event"][0]
    assert nausea["data"]["text"] == "mild"  # the original stays
    assert nausea["effective"]["data"]["text"] == "mild, settled without treatment"
    assert len(nausea["amendments"]) == 1
    rems = rems_summary(db, "demo")
    assert rems["dose_mg"] == 56 and rems["devices"] == 2 and rems["lot_numbers"] == ["DEMO-LOT-0001"]
    assert rems["bp_before_dose"]["systolic"] == 124 and rems["bp_at_40"]["systolic"] is not None
    assert rems["bp_before_end"] is not None and rems["minutes_until_ready"] >= 120
    assert rems["minutes_first_dose_to_end"] >= rems["minutes_until_ready"]
    assert rems["concomitant"]["opioids"] is False and rems["site_name"].startswith("Demo clinic")
    assert "clinician_phone" in rems["missing"] and "bp_at_40" not in rems["missing"]
    db.conn.close()
