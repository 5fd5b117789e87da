"""verify_db: everything a sealed record commits to, recomputed from the database; the triggers
that seal it. An attacker is simulated by dropping a trigger with raw SQL, then tampering."""

from __future__ import annotations

import sqlite3

import pytest

from ketmonitor.audit import _entry_hash, _fields, verify_chain
from ketmonitor.signing import (AuditChainError, AuditLinkError, ChunkDigestError,
                                PayloadDigestError, RowMismatchError, VerificationError, cosign,
                                verify_db)
from ketmonitor.signing import verification
from ketmonitor.signing.matching import check_session
from ketmonitor.store.writer import pack_samples
from tests.core.test_signing_support import (DOCTOR_PW, drop_trigger, make_session,
                                             world)  # noqa: F401 - fixture


def test_an_untouched_database_verifies_and_the_check_is_audited(world):
    report = verify_db(world.db, world.session_id)
    assert [r.record_id for r in report.records] == [world.record_id]
    assert report.chunks == 20 and report.rows > 80
    assert world.db.conn.execute(
        "SELECT detail FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()[0].count('"ok":true')


@pytest.mark.parametrize("sql", [
    "UPDATE numerics SET value = 99 WHERE session_id = 's1' AND metric = 'spo2'",
    "DELETE FROM numerics WHERE session_id = 's1'",
    "UPDATE waveform_chunks SET samples = x'00000000' WHERE session_id = 's1'",
    "DELETE FROM waveform_chunks WHERE session_id = 's1'",
    "UPDATE events SET data = '{}' WHERE session_id = 's1'",
    "DELETE FROM events WHERE session_id = 's1'",
    "UPDATE device_status SET connected = 0 WHERE session_id = 's1'",
    "DELETE FROM device_status WHERE session_id = 's1'",
    "UPDATE alarm_log SET trigger_value = 95 WHERE session_id = 's1'",
    "DELETE FROM alarm_log WHERE session_id = 's1'",
    "UPDATE sessions SET ended_utc = '2026-01-02T00:00:00.000Z' WHERE id = 's1'",
    "UPDATE sessions SET patient_id = 'p2' WHERE id = 's1'",
    "DELETE FROM sessions WHERE id = 's1'",
    "UPDATE session_records SET created_utc = 'x'",
    "DELETE FROM session_records",
    "UPDATE record_signatures SET meaning = 'approval'",
    "DELETE FROM record_signatures",
    "UPDATE audit_log SET detail = '{}' WHERE seq = 1",
    "DELETE FROM audit_log WHERE seq = 1",
])
def test_triggers_refuse_changes_to_a_signed_session(world, sql):
    with pytest.raises(sqlite3.IntegrityError):
        world.db.conn.execute(sql)
    verify_db(world.db)  # and nothing changed


def test_unsealed_sessions_and_workflow_status_stay_writable(world):
    make_session(world.db, "s2", seconds=2)
    world.db.conn.execute("UPDATE alarm_log SET end_utc = NULL WHERE session_id = 's2'")
    world.db.conn.execute("UPDATE numerics SET value = 90 WHERE session_id = 's2'")
    world.db.conn.execute("DELETE FROM waveform_chunks WHERE session_id = 's2'")
    world.db.conn.execute("UPDATE sessions SET status = 'cosigned', last_seen_utc = 'now'"
                          " WHERE id = 's1'")
    verify_db(world.db, "s1")


def _count_slow_comparisons(monkeypatch) -> list:
    """Every value the row-by-row (multiset) comparison converts: it runs only when the table's
    rows are not equal, in order, to the signed ones at C speed (the real function still runs)."""
    seen = []
    real = verification._as_stored

    def counting(v):
        seen.append(v)
        return real(v)
    monkeypatch.setattr(verification, "_as_stored", counting)
    return seen


def test_an_untouched_session_is_compared_on_the_fast_path_and_a_changed_row_is_not(world,
                                                                                  monkeypatch):
    seen = _count_slow_comparisons(monkeypatch)
    report = verify_db(world.db, "s1")
    assert report.rows > 80 and seen == []  # every table equal as a whole: no row converted
    assert check_session(world.db, "s1").matches and seen == []
    drop_trigger(world.db, "numerics_sealed_no_update")
    world.db.conn.execute("UPDATE numerics SET value = 99 WHERE session_id = 's1' AND metric ="
                          " 'spo2' AND t_mono = 4")
    with pytest.raises(RowMismatchError, match="value 99.0 .signed record: 97"):
        verify_db(world.db, "s1")
    (n_rows,) = world.db.conn.execute("SELECT count(*) FROM numerics WHERE session_id = 's1'"
                                      ).fetchone()
    n_cols = len(world.db.conn.execute("SELECT * FROM numerics LIMIT 1").fetchone()) - 1
    assert len(seen) == n_rows * n_cols  # the numerics table went row by row, no other table


def test_an_edited_numeric_row_is_named(world):
    drop_trigger(world.db, "numerics_sealed_no_update")
    world.db.conn.execute("UPDATE numerics SET value = 99 WHERE session_id = 's1' AND metric = 'spo2'"
                          " AND t_mono = 4")
    with pytest.raises(RowMismatchError) as err:
        verify_db(world.db, "s1")
    msg = str(err.value)
    assert err.value.table == "numerics" and err.value.record_id == world.record_id
    assert "metric=spo2" in msg and "t_utc=2026-01-01T00:00:04.000Z" in msg
    assert "value 99.0 (signed record: 97)" in msg


def test_a_deleted_and_an_added_row_are_named(world):
    drop_trigger(world.db, "events_sealed_no_delete")
    world.db.conn.execute("DELETE FROM events WHERE session_id = 's1' AND kind = 'note'")
    world.db.conn.execute("INSERT INTO doses (session_id, action, drug, amount, unit, route, t_mono,"
                          " t_wall, t_utc) VALUES ('s1', 'dose', 'esketamine', 28, 'mg', 'intranasal',"
                          " 9, 1, '2026-01-01T00:00:09.000Z')")
    with pytest.raises(RowMismatchError) as err:
        verify_db(world.db, "s1")
    texts = [str(f) for f in err.value.failures]
    assert any("events row" in t and "kind=note" in t and "missing from the database" in t
               for t in texts)
    assert any("doses row" in t and "not in the signed record" in t for t in texts)


def test_a_replaced_waveform_chunk_is_named_by_id(world):
    drop_trigger(world.db, "waveform_chunks_sealed_no_update")
    cid = world.db.conn.execute("SELECT id FROM waveform_chunks WHERE session_id = 's1'"
                                " ORDER BY id LIMIT 1 OFFSET 7").fetchone()[0]
    forged = pack_samples([100] * 75)
    import hashlib
    # A careful attacker also rewrites the digest column: the signed record still catches it.
    world.db.conn.execute("UPDATE waveform_chunks SET samples = ?, sha256 = ? WHERE id = ?",
                          (forged, hashlib.sha256(forged).hexdigest(), cid))
    with pytest.raises(ChunkDigestError) as err:
        verify_db(world.db)
    assert err.value.chunk_id == cid and len(err.value.failures) == 1
    assert f"waveform chunk {cid} (pleth at 2026-01-01T00:00:07.000Z)" in str(err.value)
    assert "sha256 column was changed too" in str(err.value)


def test_a_chunk_blob_changed_without_its_digest_is_named(world):
    drop_trigger(world.db, "waveform_chunks_sealed_no_update")
    world.db.conn.execute("UPDATE waveform_chunks SET samples = ? WHERE id = 1",
                          (pack_samples([0] * 75),))
    with pytest.raises(ChunkDigestError) as err:
        verify_db(world.db)
    assert err.value.chunk_id == 1


@pytest.mark.parametrize("value", ["not samples", 42])  # (NOT NULL refuses None)
def test_chunk_samples_rewritten_as_another_type_are_named_not_a_crash(world, value):
    drop_trigger(world.db, "waveform_chunks_sealed_no_update")
    world.db.conn.execute("UPDATE waveform_chunks SET samples = ? WHERE id = 2", (value,))
    with pytest.raises(ChunkDigestError) as err:
        verify_db(world.db)
    assert err.value.chunk_id == 2
    assert f"its samples are not a BLOB any more ({type(value).__name__})" in str(err.value)


def test_an_edited_audit_row_is_named(world):
    drop_trigger(world.db, "audit_log_no_update")
    world.db.conn.execute("UPDATE audit_log SET user_id = 'mallory' WHERE seq = 2")
    with pytest.raises(AuditChainError) as err:
        verify_db(world.db)
    assert err.value.seq == 2 and "audit row 2" in str(err.value)


def test_a_deleted_audit_row_is_named(world):
    drop_trigger(world.db, "audit_log_no_delete")
    world.db.conn.execute("DELETE FROM audit_log WHERE seq = 3")
    with pytest.raises(AuditChainError) as err:
        verify_db(world.db)
    assert err.value.seq == 3 and "missing" in str(err.value)


def _rewrite_chain(db, change):
    """A thorough attacker: edit a row, then recompute every later hash so the chain links."""
    drop_trigger(db, "audit_log_no_update")
    rows = db.conn.execute("SELECT seq, t_utc, user_id, action, session_id, entity, entity_id,"
                           " detail FROM audit_log ORDER BY seq").fetchall()
    import json

    import rfc8785
    prev = "0" * 64
    for seq, t_utc, user_id, action, session_id, entity, entity_id, detail in rows:
        detail = json.loads(detail)
        user_id = change(seq, user_id)
        digest = _entry_hash(_fields(seq, t_utc, user_id, action, session_id, entity, entity_id,
                                     detail, prev))
        db.conn.execute("UPDATE audit_log SET user_id = ?, prev_hash = ?, hash = ?,"
                        " detail = ? WHERE seq = ?",
                        (user_id, prev, digest, rfc8785.dumps(detail).decode(), seq))
        prev = digest


def test_a_rewritten_audit_chain_contradicts_the_signed_head(world):
    _rewrite_chain(world.db, lambda seq, user: "mallory" if seq == 1 else user)
    verify_chain(world.db)  # the chain alone now looks fine...
    with pytest.raises(AuditLinkError) as err:
        verify_db(world.db)  # ...but the record signed its head
    assert "differs from the audit-chain head signed in the record" in str(err.value)


def test_a_deleted_cosignature_is_missed_by_nobody(world):
    cosign(world.db, world.record_id, "doc1", DOCTOR_PW, "approval")
    drop_trigger(world.db, "record_signatures_no_delete")
    world.db.conn.execute("DELETE FROM record_signatures WHERE idx = 1")
    with pytest.raises(AuditLinkError, match="signature 1 .*missing from the database"):
        verify_db(world.db)


def test_an_edited_stored_payload_is_named(world):
    drop_trigger(world.db, "session_records_no_update")
    world.db.conn.execute("UPDATE session_records SET payload = CAST(replace(CAST(payload AS TEXT),"
                          " 'patient calm', 'patient agitated') AS BLOB)")
    with pytest.raises(PayloadDigestError) as err:
        verify_db(world.db)
    assert err.value.record_id == world.record_id
    assert any("signature 0" in str(f) for f in err.value.failures)


def test_a_stored_payload_rewritten_as_text_is_named_not_a_crash(world):
    drop_trigger(world.db, "session_records_no_update")
    world.db.conn.execute("UPDATE session_records SET payload = CAST(payload AS TEXT)")
    with pytest.raises(PayloadDigestError) as err:
        verify_db(world.db)
    assert f"record {world.record_id}: stored payload is not a BLOB any more (str)" in str(err.value)
    check = check_session(world.db, "s1")  # what review and export show: a finding, not a crash
    assert check.flagged and any("not a BLOB any more" in p for p in check.signature_problems)


def test_a_session_without_a_record_does_not_verify(world):
    make_session(world.db, "s2", seconds=1)
    with pytest.raises(VerificationError, match="session s2 has no signed record"):
        verify_db(world.db, "s2")


def test_every_failure_is_listed(world):
    for name in ("numerics_sealed_no_update", "waveform_chunks_sealed_no_update",
                 "audit_log_no_update"):
        drop_trigger(world.db, name)
    world.db.conn.execute("UPDATE numerics SET value = 50 WHERE metric = 'nibp_systolic'")
    world.db.conn.execute("UPDATE waveform_chunks SET samples = x'01000000' WHERE id = 2")
    world.db.conn.execute("UPDATE audit_log SET action = 'x' WHERE seq = 1")
    with pytest.raises(VerificationError) as err:
        verify_db(world.db)
    kinds = {type(f).__name__ for f in err.value.failures}
    assert {"AuditChainError", "RowMismatchError", "ChunkDigestError"} <= kinds
    assert world.db.conn.execute("SELECT action FROM audit_log ORDER BY seq DESC LIMIT 1"
                                 ).fetchone() == ("verify.db",)


def test_tables_that_log_after_signing_can_be_kept_out_of_the_record(world, monkeypatch):
    from ketmonitor.signing import scope, seal_session
    from tests.core.test_signing_support import NURSE_PW

    monkeypatch.setattr(scope, "EXCLUDED_TABLES", set(scope.EXCLUDED_TABLES))
    for table in ("export_log", "review_notes"):
        world.db.conn.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, session_id TEXT"
                              " REFERENCES sessions(id), what TEXT)")
    scope.exclude_from_record("export_log")
    make_session(world.db, "s2", seconds=2)
    seal_session(world.db, "s2", "nurse1", NURSE_PW)
    world.db.conn.execute("INSERT INTO export_log (session_id, what) VALUES ('s2', 'pdf')")
    verify_db(world.db, "s2")
    world.db.conn.execute("INSERT INTO review_notes (session_id, what) VALUES ('s2', 'late')")
    with pytest.raises(RowMismatchError, match="review_notes row .* not in the signed record"):
        verify_db(world.db, "s2")


def test_a_read_only_copy_verifies_without_writing(world):
    from ketmonitor.store import open_db

    before = world.db.conn.execute("SELECT count(*) FROM audit_log").fetchone()
    reader = open_db(world.path, readonly=True)
    try:
        report = verify_db(reader, world.session_id)
    finally:
        reader.conn.close()
    assert report.records[0].record_id == world.record_id
    assert world.db.conn.execute("SELECT count(*) FROM audit_log").fetchone() == before


def test_a_patient_edited_behind_the_audit_trail_is_named_and_an_audited_update_is_not(world):
    """The record carries the patient as signed. A name changed with raw SQL is a failure; the
    same kind of change made through save_patient (audited as patient.update, e.g. the weight at
    the next check-in) is the patient's later history, not tampering."""
    from dataclasses import replace

    from ketmonitor.patients import get_patient, save_patient

    before = get_patient(world.db, "p1")
    save_patient(world.db, replace(before, notes="allergic to latex"), user_id="nurse1",
                 t_wall=1_767_300_000.0)
    verify_db(world.db, "s1")
    world.db.conn.execute("UPDATE patients SET name = 'Someone Else' WHERE id = 'p1'")
    with pytest.raises(RowMismatchError) as err:
        verify_db(world.db, "s1")
    assert err.value.table == "patients" and err.value.key == "p1"
    assert "patient p1 column name is 'Someone Else' in the database, 'Test Patient' in the signed" \
           " record" in str(err.value)
