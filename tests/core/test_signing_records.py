"""Record files: sign/verify round trip, and every tampering of the file detected by name."""

from __future__ import annotations

import hashlib
import json

import pytest
import rfc8785

from ketmonitor.errors import AuthError, WorkflowError
from ketmonitor.signing import (HeaderMismatchError, InvalidSignatureError, Keyring,
                                RecordFormatError, UnknownKeyError, add_addendum, cosign,
                                import_keyring, record_bytes, seal_session, verify_db,
                                verify_record)
from ketmonitor.signing.jws import make_header, sign
from ketmonitor.signing.keys import unlock_key
from ketmonitor.store import open_db
from tests.core.test_signing_support import (DOCTOR_PW, NURSE_PW, b64d, b64e, make_session,
                                             world)  # noqa: F401 - fixture



def _doc(w):
    return json.loads(record_bytes(w.db, w.record_id))


def _payload(doc) -> dict:
    return json.loads(b64d(doc["payload"]))


def test_round_trip_names_signer_meaning_and_time(world):
    cosign(world.db, world.record_id, "doc1", DOCTOR_PW, "approval")
    data = record_bytes(world.db, world.record_id)
    result = verify_record(data, Keyring.from_db(world.db))
    assert result.record_id == world.record_id and result.session_id == world.session_id
    assert [(s.signer_id, s.printed_name, s.role, s.meaning) for s in result.signatures] == [
        ("nurse1", "Nora Nurse, RN", "nurse", "authorship"),
        ("doc1", "Dan Doctor, MD", "physician", "approval")]
    assert all(s.signed_at.endswith("Z") for s in result.signatures)
    assert "Dan Doctor, MD (physician, doc1) — approval" in result.describe()


def test_record_holds_the_session_and_commits_to_every_chunk(world):
    doc = _doc(world)
    payload = b64d(doc["payload"])
    assert rfc8785.dumps(json.loads(payload)) == payload  # signed bytes are RFC 8785 canonical
    rec = json.loads(payload)
    assert rec["kind"] == "original" and rec["session"]["id"] == "s1"
    assert rec["patient"]["mrn"] == "MRN-0001" and rec["protocol"]["name"] == "spravato-56mg"
    tables = rec["tables"]
    numerics = tables["numerics"]
    assert len(numerics["rows"]) == 20 * 3 + 2
    i_val, i_metric = numerics["columns"].index("value"), numerics["columns"].index("metric")
    assert [r[i_val] for r in numerics["rows"] if r[i_metric] == "nibp_systolic"] == [128]
    assert None in [r[i_val] for r in numerics["rows"] if r[i_metric] == "spo2"]  # missing kept
    chunks = tables["waveform_chunks"]
    assert "samples" not in chunks["columns"]  # chunks stay in the database, by digest
    i_id, i_sha = chunks["columns"].index("id"), chunks["columns"].index("sha256")
    blobs = dict(world.db.conn.execute("SELECT id, samples FROM waveform_chunks"))
    assert {r[i_id]: r[i_sha] for r in chunks["rows"]} == {
        cid: hashlib.sha256(blob).hexdigest() for cid, blob in blobs.items()}
    assert len(tables["doses"]["rows"]) == 1 and len(tables["scale_entries"]["rows"]) == 1
    assert "items" in tables["scale_entries"]["columns"]
    assert {"events", "device_status", "alarm_actions"} <= set(tables)
    log = tables["alarm_log"]
    assert [dict(zip(log["columns"], r))["condition"] for r in log["rows"]] == ["spo2_low"]
    amendments = tables["amendments"]
    assert [dict(zip(amendments["columns"], r))["reason"] for r in amendments["rows"]] == [
        "typo in lot number"]
    seq, head = world.db.conn.execute(
        "SELECT seq, hash FROM audit_log WHERE action = 'session.ended'").fetchone()
    assert rec["audit_head"] == {"seq": seq, "hash": head}


def _flip_payload_byte(doc) -> dict:
    payload = bytearray(b64d(doc["payload"]))
    i = payload.index(b'patient calm')
    payload[i] ^= 0x20  # 'p' -> 'P': still valid JSON, different record
    return dict(doc, payload=b64e(bytes(payload)))


def test_a_changed_payload_byte_is_named(world):
    doc = _flip_payload_byte(_doc(world))
    with pytest.raises(InvalidSignatureError) as err:
        verify_record(json.dumps(doc).encode(), Keyring.from_db(world.db))
    assert err.value.record_id == world.record_id and err.value.index == 0
    assert f"record {world.record_id}: signature 0 (signer nurse1" in str(err.value)


def test_a_changed_signature_is_named_with_its_index_and_signer(world):
    cosign(world.db, world.record_id, "doc1", DOCTOR_PW, "review")
    doc = _doc(world)
    sig = bytearray(b64d(doc["signatures"][1]["signature"]))
    sig[10] ^= 1
    doc["signatures"][1]["signature"] = b64e(bytes(sig))
    with pytest.raises(InvalidSignatureError) as err:
        verify_record(json.dumps(doc).encode(), Keyring.from_db(world.db))
    assert (err.value.index, err.value.signer_id) == (1, "doc1")
    assert len(err.value.failures) == 1  # the nurse's signature still verifies


def test_a_changed_protected_header_is_detected(world):
    doc = _doc(world)
    header = json.loads(b64d(doc["signatures"][0]["protected"]))
    header["meaning"] = "approval"  # upgrade authorship to approval
    doc["signatures"][0]["protected"] = b64e(rfc8785.dumps(header))
    with pytest.raises(InvalidSignatureError, match="signature 0"):
        verify_record(json.dumps(doc).encode(), Keyring.from_db(world.db))


def test_a_signature_moved_to_another_record_fails(world):
    make_session(world.db, "s2", seconds=5)
    other = seal_session(world.db, "s2", "nurse1", NURSE_PW)
    mine = _doc(world)
    theirs = json.loads(record_bytes(world.db, other.record_id))
    mine["signatures"] = theirs["signatures"]  # 11.70: cannot be copied onto another record
    with pytest.raises(InvalidSignatureError) as err:
        verify_record(json.dumps(mine).encode(), Keyring.from_db(world.db))
    assert err.value.record_id == world.record_id


def test_an_unknown_key_is_named(world, tmp_path):
    cosign(world.db, world.record_id, "doc1", DOCTOR_PW, "approval")
    jwks = Keyring.from_db(world.db).to_jwks()
    jwks["keys"] = [k for k in jwks["keys"] if k["user_id"] != "doc1"]
    with pytest.raises(UnknownKeyError) as err:
        verify_record(record_bytes(world.db, world.record_id), Keyring.from_jwks(jwks))
    assert (err.value.index, err.value.signer_id, err.value.kid) == (1, "doc1", world.doctor.kid)
    assert "not in the keyring" in str(err.value)


def test_a_keyring_giving_the_key_to_someone_else_is_refused(world):
    jwks = Keyring.from_db(world.db).to_jwks()
    for k in jwks["keys"]:
        k["printed_name"] = "Someone Else" if k["user_id"] == "nurse1" else k["printed_name"]
    with pytest.raises(HeaderMismatchError, match="printed_name"):
        verify_record(record_bytes(world.db, world.record_id), Keyring.from_jwks(jwks))


def test_a_forged_signature_by_another_key_with_the_nurses_kid_fails(world):
    doctor = unlock_key(world.db, "doc1", DOCTOR_PW)
    doc = _doc(world)
    header = make_header(kid=world.nurse.kid, signer_id="nurse1", printed_name="Nora Nurse, RN",
                         role="nurse", meaning="authorship", signed_at="2026-01-01T00:01:00.000Z")
    forged = sign(doc["payload"], header, doctor.private_key)
    doc["signatures"] = [{"protected": forged.protected, "signature": forged.signature}]
    with pytest.raises(InvalidSignatureError):
        verify_record(json.dumps(doc).encode(), Keyring.from_db(world.db))


def test_verification_reads_the_signed_strings_not_the_file_layout(world):
    """Pretty-printing the file or re-ordering its members changes nothing that was signed."""
    doc = _doc(world)
    relaid = json.dumps({"signatures": doc["signatures"], "payload": doc["payload"]}, indent=4)
    assert verify_record(relaid.encode(), Keyring.from_db(world.db)).record_id == world.record_id


@pytest.mark.parametrize("data, why", [
    (b"not json", "not a JSON record file"),
    (b'{"payload": "e30", "signatures": []}', "has no signatures"),
    (b'{"payload": "e30", "payload": "e30", "signatures": []}', "duplicate member"),
    (b'{"payload": "e30", "signatures": [{"protected": "e30", "signature": "AA", '
     b'"header": {"kid": "x"}}]}', "unprotected header"),
    (b'{"payload": "e3=", "signatures": [{"protected": "e30", "signature": "AA"}]}', "base64url"),
    (b'[1, 2]', "not a JWS General JSON record"),
])
def test_malformed_files_say_why(world, data, why):
    with pytest.raises(RecordFormatError, match=why):
        verify_record(data, Keyring.from_db(world.db))


def test_a_header_without_the_signature_facts_is_refused(world):
    doc = _doc(world)
    header = json.loads(b64d(doc["signatures"][0]["protected"]))
    del header["meaning"]
    doc["signatures"][0]["protected"] = b64e(json.dumps(header).encode())
    with pytest.raises(HeaderMismatchError, match="lacks meaning"):
        verify_record(json.dumps(doc).encode(), Keyring.from_db(world.db))


def test_a_record_verifies_on_a_fresh_database_with_only_the_keyring(world, tmp_path):
    record_file = tmp_path / "record.json"
    record_file.write_bytes(record_bytes(world.db, world.record_id))
    keyring_json = Keyring.from_db(world.db).to_json()
    elsewhere = open_db(tmp_path / "auditor.db")  # another machine: no sessions, no private keys
    try:
        assert import_keyring(elsewhere, Keyring.from_jwks(keyring_json)) == 2
        assert elsewhere.conn.execute(
            "SELECT count(*) FROM signing_keys WHERE private_key_enc IS NOT NULL").fetchone() == (0,)
        result = verify_record(record_file.read_bytes(), Keyring.from_db(elsewhere))
        assert result.signatures[0].printed_name == "Nora Nurse, RN"
        assert verify_record(record_file.read_bytes(), Keyring.from_jwks(keyring_json))
    finally:
        elsewhere.conn.close()


def test_a_wrong_password_cannot_sign(tmp_path):
    from tests.core.test_signing_support import enrol_staff

    db = open_db(tmp_path / "c.db")
    enrol_staff(db)
    make_session(db)
    with pytest.raises(AuthError, match="wrong password for nurse1"):
        seal_session(db, "s1", "nurse1", "not-the-password")
    assert db.conn.execute("SELECT count(*) FROM session_records").fetchone() == (0,)
    assert db.conn.execute("SELECT count(*) FROM audit_log WHERE action='signing.auth_failed'"
                           " AND user_id='nurse1'").fetchone() == (1,)
    with pytest.raises(AuthError):  # the signature of somebody else's password does not help
        seal_session(db, "s1", "nurse1", DOCTOR_PW)
    db.conn.close()


def test_signing_asks_for_the_password_every_time(world):
    prompts = []

    def ask(prompt):
        prompts.append(prompt)
        return DOCTOR_PW

    cosign(world.db, world.record_id, "doc1", ask, "review")
    add_addendum(world.db, world.record_id, "doc1", ask, "BP re-checked at 40 min: 132/84")
    assert len(prompts) == 2 and all("Dan Doctor, MD (doc1)" in p for p in prompts)


def test_cosign_adds_a_signature_and_never_changes_the_payload(world):
    before = _doc(world)
    cosign(world.db, world.record_id, "doc1", DOCTOR_PW, "approval")
    after = _doc(world)
    assert after["payload"] == before["payload"]
    assert after["signatures"][0] == before["signatures"][0] and len(after["signatures"]) == 2
    assert world.db.conn.execute("SELECT status FROM sessions WHERE id='s1'").fetchone() == (
        "cosigned",)
    with pytest.raises(WorkflowError, match="already signed"):
        cosign(world.db, world.record_id, "doc1", DOCTOR_PW, "approval")
    with pytest.raises(WorkflowError, match="meaning of a signature is one of"):
        cosign(world.db, world.record_id, "doc1", DOCTOR_PW, "liked it")


def test_a_signing_time_outside_the_keys_validity_is_refused_when_signing(world):
    """A simulated clock's time (here 2026-01-01, before the key was enrolled) cannot be signed."""
    from tests.core.test_signing_support import T0

    with pytest.raises(WorkflowError, match="before the key was valid"):
        cosign(world.db, world.record_id, "doc1", DOCTOR_PW, "review", t_wall=T0)
    assert len(verify_db(world.db).records[0].signatures) == 1


def test_an_addendum_is_a_new_record_linked_by_hash(world):
    add = add_addendum(world.db, world.record_id, "doc1", DOCTOR_PW,
                       {"correction": "dose given at 10:02, not 10:01"})
    original_sha = world.db.conn.execute(
        "SELECT payload_sha256 FROM session_records WHERE record_id = ?", (world.record_id,)
    ).fetchone()[0]
    result = verify_record(record_bytes(world.db, add.record_id), Keyring.from_db(world.db))
    assert result.kind == "addendum"
    assert result.amends == {"record_id": world.record_id, "payload_sha256": original_sha}
    assert result.record["addendum"] == {"correction": "dose given at 10:02, not 10:01"}
    assert len(verify_db(world.db).records) == 2


def test_sealing_needs_an_ended_session_and_happens_once(world):
    make_session(world.db, "open1", seconds=3, end=False)
    with pytest.raises(WorkflowError, match="has not ended"):
        seal_session(world.db, "open1", "nurse1", NURSE_PW)
    with pytest.raises(WorkflowError, match="already signed"):
        seal_session(world.db, world.session_id, "nurse1", NURSE_PW)


def test_the_record_is_built_deterministically(world):
    from ketmonitor.signing.record import build_session_record

    a = build_session_record(world.db, "s1", record_id="r", created_utc="t")
    b = build_session_record(world.db, "s1", record_id="r", created_utc="t")
    assert rfc8785.dumps(a) == rfc8785.dumps(b)


def test_any_single_bit_flip_in_a_record_file_is_refused(tmp_path):
    """Property: wherever one bit of the file changes, verification raises a VerificationError
    (never passes, never fails with anything else)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from ketmonitor.errors import VerificationError
    from tests.core.test_signing_support import enrol_staff

    db = open_db(tmp_path / "h.db")
    enrol_staff(db)
    make_session(db, "s1", seconds=1)
    rec = seal_session(db, "s1", "nurse1", NURSE_PW)
    cosign(db, rec.record_id, "doc1", DOCTOR_PW, "approval")
    data = record_bytes(db, rec.record_id)
    keyring = Keyring.from_db(db)
    db.conn.close()
    assert verify_record(data, keyring)

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.integers(0, len(data) - 1), st.integers(0, 7))
    def flip(pos, bit):
        tampered = bytearray(data)
        tampered[pos] ^= 1 << bit
        with pytest.raises(VerificationError):
            verify_record(bytes(tampered), keyring)

    flip()
