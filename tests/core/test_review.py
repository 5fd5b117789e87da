"""Review core: the browser's filters (each narrows correctly, each through an index on thousands of
sessions), one session's timeline from the real pipeline, lazy waveform windows, the audit of every
view, and co-signing / addenda behind the role checks."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pytest

from ketmonitor import review
from ketmonitor.errors import AuthError, WorkflowError
from ketmonitor.review import SessionFilter, count_sessions, list_sessions, query_plan
from ketmonitor.samples import WaveformChunk
from ketmonitor.signing import verify_db
from ketmonitor.store import open_db
from ketmonitor.users import PermissionDenied
from tests.review_factories import many_sessions, PASSWORDS, world  # noqa: F401 - fixtures


@pytest.fixture
def db(world, tmp_path):
    d = open_db(world.copy(tmp_path / "review.db"))
    yield d
    d.conn.close()


def ids(db, **kw) -> set[str]:
    f = SessionFilter(**kw)
    rows = list_sessions(db, f)
    assert count_sessions(db, f) == len(rows)
    return {r.id for r in rows}


def local_day(y, m, d) -> float:
    return datetime(y, m, d).timestamp()


# -- filters ---------------------------------------------------------------------------------------

def test_no_filter_lists_every_session_newest_first(db, world):
    rows = list_sessions(db)
    assert [r.id for r in rows] == [world.open, world.ended, world.cosigned, world.desat]
    by_id = {r.id: r for r in rows}
    assert by_id[world.cosigned].status_text == "co-signed + addendum"
    assert by_id[world.cosigned].signatures == 3  # nurse, doc2's approval, doc2's addendum
    assert by_id[world.desat].high_alarms >= 1 and by_id[world.ended].high_alarms == 0
    assert by_id[world.open].duration_s is None and by_id[world.open].patient_name is None
    assert by_id[world.desat].mrn == "DEMO-0002"


def test_each_filter_narrows_correctly(db, world):
    w = world
    everything = {w.desat, w.cosigned, w.ended, w.open}
    assert ids(db) == everything
    # date range (local days, end exclusive of the next day)
    assert ids(db, since=local_day(2026, 3, 4), until=local_day(2026, 3, 6)) == {w.cosigned}
    assert ids(db, since=local_day(2026, 3, 9)) == {w.ended, w.open}
    assert ids(db, until=local_day(2026, 3, 3)) == {w.desat}
    # patient: MRN exactly, or part of the name (case-insensitive); LIKE wildcards are literal
    assert ids(db, patient="DEMO-0002") == {w.desat}
    assert ids(db, patient="demo-0003") == {w.cosigned}
    assert ids(db, patient="patient (sim") == {w.desat, w.cosigned, w.ended}
    assert ids(db, patient="DEMO_000%") == set()
    # clinician: made an entry or signed
    assert ids(db, clinician="doc2") == {w.cosigned}
    assert ids(db, clinician="demo-nurse") == {w.desat, w.cosigned, w.ended}
    assert ids(db, clinician="doc1") == set()
    # protocol
    assert ids(db, protocol="sublingual-oral") == {w.cosigned}
    assert ids(db, protocol="im-injection") == {w.desat, w.ended, w.open}
    # status
    assert ids(db, status="open") == {w.open}
    assert ids(db, status="ended") == {w.ended}
    assert ids(db, status="signed") == {w.desat}
    assert ids(db, status="co-signed") == {w.cosigned}
    assert ids(db, status="addendum") == {w.cosigned}
    assert ids(db, status="abandoned") == set()
    # high-priority alarms, alone and combined
    assert ids(db, high_alarms=True) == {w.desat}
    assert ids(db, high_alarms=True, protocol="sublingual-oral") == set()
    assert ids(db, protocol="im-injection", status="ended") == {w.ended}


def test_bad_filters_are_refused_clearly():
    with pytest.raises(WorkflowError, match="unknown status"):
        SessionFilter(status="cosigned-ish")
    with pytest.raises(WorkflowError, match="end of the date range"):
        SessionFilter(since=100.0, until=50.0)


def test_searching_is_audited(db):
    f = SessionFilter(protocol="im-injection")
    review.audit_search(db, "aud1", f, count_sessions(db, f))
    row = db.conn.execute("SELECT user_id, detail FROM audit_log WHERE action = 'sessions.searched'"
                          " ORDER BY seq DESC").fetchone()
    assert row[0] == "aud1"
    assert json.loads(row[1]) == {"filters": {"protocol": "im-injection"}, "found": 3}


def test_paging_returns_every_session_once(db, world):
    pages = [list_sessions(db, limit=3, offset=0), list_sessions(db, limit=3, offset=3)]
    assert [len(p) for p in pages] == [3, 1]
    assert {r.id for p in pages for r in p} == {world.desat, world.cosigned, world.ended, world.open}


# -- thousands of sessions: every filter through an index ------------------------------------------

def _full_scans(plan: list[str]) -> list[str]:
    return [p for p in plan if p.startswith("SCAN") and "USING" not in p]


def test_filters_on_thousands_of_sessions_use_indexes(tmp_path):
    db, expect = many_sessions(tmp_path / "many.db")
    from ketmonitor.clock import parse_utc

    cases = [
        (SessionFilter(), None, None),
        (SessionFilter(protocol="im-injection"), "sessions_protocol", expect["protocol"]),
        (SessionFilter(patient="MRN0007"), "sessions_patient", expect["p7"]),
        (SessionFilter(clinician="nurse3"), "events_user", expect["nurse3"]),
        (SessionFilter(clinician="doc9"), "record_signatures_signer", expect["doc9"]),
        (SessionFilter(status="signed"), "sessions_status", expect["signed"]),
        (SessionFilter(status="addendum"), "session_records_kind", expect["addendum"]),
        (SessionFilter(high_alarms=True), "alarm_log_priority", expect["high"]),
        (SessionFilter(since=parse_utc("2026-03-01T00:00:00Z"),
                       until=parse_utc("2026-04-01T00:00:00Z")), "sessions_started",
         expect["march"]),
    ]
    for f, index, expected in cases:
        plan = query_plan(db, f)
        scans = _full_scans(plan)
        allowed = ["SCAN patients"] if f.patient else []  # the name part: a substring search
        assert scans == allowed, (f, plan)
        if index:
            assert any(index in p for p in plan), (f, plan)
        if expected is not None:
            assert expected, f  # the data makes every filter match something
            assert count_sessions(db, f) == len(expected)
            got = {r.id for r in list_sessions(db, f, limit=5000)}
            assert got == expected, f
    # the per-row columns are indexed lookups too
    plan = query_plan(db, SessionFilter())
    assert any(p.startswith("SEARCH a USING") for p in plan)  # high alarms per row
    assert any(p.startswith("SEARCH g USING") for p in plan)  # signatures per row
    assert plan[0] == "SCAN s USING INDEX sessions_started"  # newest first, from the index
    db.conn.close()


# -- the timeline ----------------------------------------------------------------------------------

def test_timeline_holds_the_whole_session(db, world):
    before = db.conn.execute("SELECT count(*) FROM audit_log WHERE action = 'session.viewed'"
                             ).fetchone()[0]
    tl = review.load_timeline(db, world.desat, viewer_id="doc1")
    q = db.conn.execute
    # the view is in the audit trail, and the trail still verifies
    row = q("SELECT user_id, session_id, detail FROM audit_log WHERE action = 'session.viewed'"
            " ORDER BY seq DESC").fetchone()
    assert row[:2] == ("doc1", world.desat)
    assert json.loads(row[2]) == {"purpose": "review", "record_check": "matches"}
    assert tl.record_check.matches
    assert q("SELECT count(*) FROM audit_log WHERE action = 'session.viewed'").fetchone()[0] == \
        before + 1
    verify_db(db, world.desat)
    # trends: every stored value, in time order, missing values as NaN
    t, v = tl.series["spo2"]
    n = q("SELECT count(*) FROM numerics WHERE session_id = ? AND metric = 'spo2'",
          (world.desat,)).fetchone()[0]
    assert len(t) == n > 1000 and np.all(np.diff(t) >= 0)
    assert np.nanmin(v) < 90  # the desaturation
    # NIBP readings: one per measurement (device or by hand), none lost
    sys_rows = q("SELECT count(*) FROM numerics WHERE session_id = ? AND metric = 'nibp_systolic'",
                 (world.desat,)).fetchone()[0]
    readings = [r for r in tl.nibp if r.systolic is not None]
    assert len(readings) == sys_rows
    assert any(r.source == "manual" for r in readings)
    assert all(r.diastolic < r.systolic for r in readings)
    # clinical entries, alarms and corrections
    assert len(tl.doses) == q("SELECT count(*) FROM doses WHERE session_id = ?",
                              (world.desat,)).fetchone()[0] >= 1
    assert len(tl.scales) == q("SELECT count(*) FROM scale_entries WHERE session_id = ?",
                               (world.desat,)).fetchone()[0] >= 3
    assert any(a["priority"] == "high" for a in tl.alarms)
    assert len(tl.amendments) == 1
    nausea = next(e for e in tl.events if e["kind"] == "event"
                  and e["data"].get("type") == "nausea")
    assert nausea["effective"]["data"]["text"] == "mild, settled without treatment"
    assert nausea["data"]["text"] == "mild"  # the original is never hidden
    # signatures: printed name, time, meaning; verified
    (rec,) = tl.records
    assert rec.verified and rec.record.kind == "original"
    (sig,) = rec.record.signatures
    assert (sig.printed_name, sig.meaning, sig.role) == ("Nora Nurse, RN", "authorship", "nurse")
    assert tl.waveforms == {"pleth": 75.0}
    assert 60 * 60 < tl.duration_s < 3 * 3600


def test_timeline_entries_in_time_order_with_every_kind(db, world):
    tl = review.load_timeline(db, world.desat, viewer_id="aud1", purpose="audit")
    entries = tl.entries()
    assert [e.t for e in entries] == sorted(e.t for e in entries)
    kinds = {e.kind for e in entries}
    assert {"dose", "scale", "event", "nibp", "alarm", "amendment", "signature"} <= kinds
    high = [e for e in entries if e.kind == "alarm" and e.priority == "high"]
    assert high and high[0].text.startswith("HIGH alarm:")
    amended = [e for e in entries if e.amended]
    assert any("Nausea" in e.text for e in amended)
    sig = next(e for e in entries if e.kind == "signature")
    assert "Nora Nurse, RN" in sig.text and "authorship" in sig.text
    dose = next(e for e in entries if e.kind == "dose")
    assert "lot DEMO-LOT-0001" in dose.text


def test_unknown_session_is_a_clear_error_and_not_audited(db):
    before = db.conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    with pytest.raises(WorkflowError, match="no session nope"):
        review.load_timeline(db, "nope", viewer_id="doc1")
    assert db.conn.execute("SELECT count(*) FROM audit_log").fetchone()[0] == before


def test_a_view_that_cannot_be_audited_is_refused(world, tmp_path):
    from ketmonitor.errors import StoreError

    path = world.copy(tmp_path / "ro.db")
    ro = open_db(path, readonly=True)
    with pytest.raises(StoreError, match="audit trail"):
        review.load_timeline(ro, world.desat, viewer_id="aud1")
    ro.conn.close()


def test_waveform_window_reads_only_the_range(db, world):
    tl = review.load_timeline(db, world.desat, viewer_id="doc1")
    t, y = review.waveform_window(db, world.desat, tl.t0_wall, 600.0, 610.0)
    assert 10 * 75 - 2 <= len(t) <= 10 * 75 + 2
    assert t[0] >= 600.0 and t[-1] <= 610.0 and np.all(np.diff(t) > 0)
    assert np.allclose(np.diff(t), 1 / 75, atol=1e-6)
    # the values are the stored samples
    t_wall, blob = db.conn.execute(
        "SELECT t_wall, samples FROM waveform_chunks WHERE session_id = ? AND t_wall >= ?"
        " ORDER BY t_wall LIMIT 1", (world.desat, tl.t0_wall + 601)).fetchone()
    stored = np.frombuffer(blob, dtype="<i4")
    i = int(np.argmin(np.abs(t - (t_wall - tl.t0_wall))))
    assert np.array_equal(y[i:i + len(stored)], stored)
    # a single sample's width
    t1, _ = review.waveform_window(db, world.desat, tl.t0_wall, 600.0, 600.02)
    assert 1 <= len(t1) <= 2
    assert review.waveform_window(db, world.desat, tl.t0_wall, 10.0, 5.0)[0].size == 0


def test_waveform_gaps_are_not_joined(tmp_path):
    from ketmonitor.sessions import create_session
    from ketmonitor.store.writer import StoreWriter

    db = open_db(tmp_path / "gap.db")
    db.conn.execute("BEGIN IMMEDIATE")
    create_session(db, wall_anchor=1000.0, mono_anchor=0.0, session_id="g")
    StoreWriter._write_samples(db.conn, [
        ("g", WaveformChunk("pleth", 10.0, 0.0, 1000.0, tuple(range(10)), "sim")),
        ("g", WaveformChunk("pleth", 10.0, 1.0, 1001.0, tuple(range(10, 20)), "sim")),
        ("g", WaveformChunk("pleth", 10.0, 5.0, 1005.0, tuple(range(20, 30)), "sim")),
    ])
    db.conn.execute("COMMIT")
    t, y = review.waveform_window(db, "g", 1000.0, 0.0, 10.0)
    assert np.isnan(y).sum() == 1  # one break, between 2 s and 5 s
    k = int(np.flatnonzero(np.isnan(y))[0])
    assert y[k - 1] == 19 and y[k + 1] == 20 and 1.9 < t[k] < 5.0
    assert list(y[:20]) == list(range(20))
    db.conn.close()


# -- signing from review ---------------------------------------------------------------------------

def _sig_rows(db):
    return db.conn.execute("SELECT count(*) FROM record_signatures").fetchone()[0]


def test_physician_cosigns_with_the_password(db, world):
    sig = review.cosign_session(db, world.desat, "doc1", PASSWORDS["doc1"], "review")
    assert (sig.printed_name, sig.role, sig.meaning) == ("Dana Doctor, MD", "physician", "review")
    assert db.conn.execute("SELECT status FROM sessions WHERE id = ?",
                           (world.desat,)).fetchone()[0] == "cosigned"
    report = verify_db(db, world.desat)
    (rec,) = report.records
    assert [(s.signer_id, s.meaning) for s in rec.signatures] == [
        ("demo-nurse", "authorship"), ("doc1", "review")]
    tl = review.load_timeline(db, world.desat, viewer_id="doc1")
    assert tl.original_record.verified
    assert any(e.kind == "signature" and "Dana Doctor, MD" in e.text for e in tl.entries())


def test_wrong_password_signs_nothing_and_is_audited(db, world):
    before = _sig_rows(db)
    with pytest.raises(AuthError, match="wrong password"):
        review.cosign_session(db, world.desat, "doc1", "not-the-password", "review")
    assert _sig_rows(db) == before
    assert db.conn.execute("SELECT user_id FROM audit_log WHERE action = 'signing.auth_failed'"
                           " ORDER BY seq DESC").fetchone()[0] == "doc1"
    assert db.conn.execute("SELECT status FROM sessions WHERE id = ?",
                           (world.desat,)).fetchone()[0] == "signed"


@pytest.mark.parametrize("user", ["demo-nurse", "aud1", "admin1", "nobody"])
def test_only_a_physician_cosigns(db, world, user):
    before = _sig_rows(db)
    with pytest.raises(PermissionDenied):
        review.cosign_session(db, world.desat, user, PASSWORDS.get(user, "x"), "review")
    assert _sig_rows(db) == before


def test_cosign_needs_a_signed_record_and_a_cosign_meaning(db, world):
    with pytest.raises(WorkflowError, match="no signed record"):
        review.cosign_session(db, world.ended, "doc1", PASSWORDS["doc1"], "review")
    with pytest.raises(WorkflowError, match="co-signature means"):
        review.cosign_session(db, world.desat, "doc1", PASSWORDS["doc1"], "authorship")
    with pytest.raises(WorkflowError, match="already signed"):
        review.cosign_session(db, world.cosigned, "doc2", PASSWORDS["doc2"], "approval")


def test_addenda_by_clinicians_not_auditors(db, world):
    rec = review.addendum_session(db, world.desat, "doc1", PASSWORDS["doc1"],
                                  "  SpO2 dip discussed with the nurse; no action needed.  ")
    assert rec.kind == "addendum"
    tl = review.load_timeline(db, world.desat, viewer_id="doc1")
    add = next(r for r in tl.records if r.record.kind == "addendum")
    assert add.verified and add.addendum == {"text": "SpO2 dip discussed with the nurse; no action"
                                                     " needed."}
    nurse = review.addendum_session(db, world.desat, "demo-nurse", PASSWORDS["demo-nurse"],
                                    "Late entry: patient reported mild headache at discharge.")
    assert nurse.signatures[0].meaning == "authorship"
    with pytest.raises(PermissionDenied):
        review.addendum_session(db, world.desat, "aud1", PASSWORDS["aud1"], "auditors only read")
    with pytest.raises(WorkflowError, match="needs text"):
        review.addendum_session(db, world.desat, "doc1", PASSWORDS["doc1"], "   ")
    assert ids(db, status="addendum") == {world.desat, world.cosigned}
    verify_db(db)


def _tamper_dose(db, session_id) -> int:
    """What someone with the file and the sqlite3 shell can do: drop the triggers, edit a dose."""
    for trigger in ("doses_no_update", "doses_sealed_no_update"):
        db.conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    dose_id = db.conn.execute("SELECT min(id) FROM doses WHERE session_id = ?",
                              (session_id,)).fetchone()[0]
    db.conn.execute("UPDATE doses SET amount = 84, lot_number = 'FAKE-LOT' WHERE id = ?", (dose_id,))
    return dose_id


def test_altered_rows_are_shown_as_not_matching_and_the_view_audit_says_so(db, world):
    dose_id = _tamper_dose(db, world.desat)
    tl = review.load_timeline(db, world.desat, viewer_id="doc1")
    check = tl.record_check
    assert check.flagged and check.status == "DOES NOT MATCH ITS SIGNED RECORD"
    assert f"doses row (id={dose_id}" in check.problems[0] and "'FAKE-LOT'" in check.problems[0]
    (rec,) = tl.records
    assert not rec.verified and rec.data_differs and rec.label == "DATA DIFFERS"
    assert rec.problem.startswith("DOES NOT MATCH ITS SIGNED RECORD: doses row")
    detail = json.loads(db.conn.execute("SELECT detail FROM audit_log WHERE action ="
                                        " 'session.viewed' ORDER BY seq DESC").fetchone()[0])
    assert detail["record_check"] == "DOES NOT MATCH ITS SIGNED RECORD"
    assert "FAKE-LOT" in detail["problems"][0]
    perm = review.permissions("physician", True, check)
    assert not perm.cosign and not perm.addendum and "refused" in perm.reason


def test_nobody_cosigns_or_adds_an_addendum_to_altered_data(db, world):
    _tamper_dose(db, world.desat)
    before = _sig_rows(db)
    records = db.conn.execute("SELECT count(*) FROM session_records").fetchone()[0]
    with pytest.raises(WorkflowError, match="DOES NOT MATCH ITS SIGNED RECORD: doses row"):
        review.cosign_session(db, world.desat, "doc1", PASSWORDS["doc1"], "review")
    with pytest.raises(WorkflowError, match="refused"):
        review.addendum_session(db, world.desat, "demo-nurse", PASSWORDS["demo-nurse"],
                                "Late entry: the dose was 84 mg.")
    assert _sig_rows(db) == before
    assert db.conn.execute("SELECT count(*) FROM session_records").fetchone()[0] == records
    refused = [json.loads(d)["what"] for (d,) in db.conn.execute(
        "SELECT detail FROM audit_log WHERE action = 'signing.refused' ORDER BY seq")]
    assert refused == ["co-sign", "addendum"]
    # an untouched session of the same database is signed as before
    review.addendum_session(db, world.cosigned, "doc2", PASSWORDS["doc2"], "Follow-up call done.")


def test_permissions_by_role():
    P = review.permissions
    assert P("physician", True) == review.Permissions(True, True)
    assert P("nurse", True).cosign is False and P("nurse", True).addendum is True
    for role in ("auditor", "admin", None):
        p = P(role, True)
        assert not p.cosign and not p.addendum and "read-only" in p.reason
    assert not P("physician", False).cosign and "not signed yet" in P("physician", False).reason


def test_local_time_shows_date_time_and_zone():
    text = review.local_time("2026-03-02T08:59:59.993Z")
    day = datetime.fromtimestamp(review.parse_utc("2026-03-02T08:59:59.993Z")).strftime("%Y-%m-%d")
    assert text.startswith(day) and len(text.split(" ")) >= 2
    assert review.local_time(None) == "-"


def test_alarm_acknowledgements_are_on_the_timeline(db, world):
    from ketmonitor.alarms.log import record_alarm_event
    from ketmonitor.samples import SessionEvent

    alarm_id, start = db.conn.execute(
        "SELECT alarm_id, start_wall FROM alarm_log WHERE session_id = ? AND priority = 'high'",
        (world.desat,)).fetchone()
    t0 = db.conn.execute("SELECT wall_anchor FROM sessions WHERE id = ?", (world.desat,)).fetchone()[0]
    db.conn.execute("BEGIN IMMEDIATE")  # as the alarm log listener writes it, 12 s after the start
    record_alarm_event(db, world.desat, SessionEvent(
        "alarm.acknowledged", start - t0 + 12, start + 12,
        {"alarm_ids": [alarm_id], "role": "nurse"}, "demo-nurse"))
    db.conn.execute("COMMIT")
    tl = review.load_timeline(db, world.desat, viewer_id="doc1")
    (high,) = [a for a in tl.alarms if a["alarm_id"] == alarm_id]
    assert [(a["action"], a["user_id"]) for a in high["actions"]] == [("acknowledged", "demo-nurse")]
    acks = [e for e in tl.entries() if e.kind == "alarm action"]
    assert len(acks) == 1 and acks[0].user == "demo-nurse" and acks[0].priority == "high"
    assert acks[0].text.startswith("acknowledged: SpO2")
    assert abs(acks[0].t - (start - t0 + 12)) < 1e-6
