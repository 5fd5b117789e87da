"""A second, independent JOSE implementation (jwcrypto) agrees with ketmonitor's records, and the
verification recipe in docs/signing.md works as printed."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
from jwcrypto import jwk, jws
from jwcrypto.common import base64url_decode, json_encode

from ketmonitor.clock import utc_iso
from ketmonitor.signing import Keyring, cosign, record_bytes, verify_record
from ketmonitor.signing.keys import unlock_key
from tests.core.test_signing_support import DOCTOR_PW, b64d, b64e, world  # noqa: F401 - fixture

DOC = Path(__file__).resolve().parents[2] / "docs" / "signing.md"


@pytest.fixture
def cosigned(world):
    cosign(world.db, world.record_id, "doc1", DOCTOR_PW, "approval")
    return world


def _jwks(world) -> jwk.JWKSet:
    return jwk.JWKSet.from_json(Keyring.from_db(world.db).to_json())


def test_jwcrypto_verifies_every_signature_with_the_exported_keyring(cosigned):
    record = json.loads(record_bytes(cosigned.db, cosigned.record_id))
    keyset = _jwks(cosigned)
    for s in record["signatures"]:
        header = json.loads(base64url_decode(s["protected"]))
        key = keyset.get_key(header["kid"])
        assert key.thumbprint() == header["kid"]  # our kid is the RFC 7638 thumbprint
        one = jws.JWS()
        one.deserialize(json.dumps({"payload": record["payload"], **s}))
        one.verify(key, alg="EdDSA")
        assert one.payload == b64d(record["payload"])
    whole = jws.JWS()
    whole.deserialize(record_bytes(cosigned.db, cosigned.record_id).decode(), key=keyset)
    assert json.loads(whole.payload)["record_id"] == cosigned.record_id


def test_jwcrypto_also_rejects_a_tampered_payload(cosigned):
    record = json.loads(record_bytes(cosigned.db, cosigned.record_id))
    payload = bytearray(b64d(record["payload"]))
    payload[payload.index(b"esketamine")] = ord("E")
    s = record["signatures"][0]
    one = jws.JWS()
    one.deserialize(json.dumps({"payload": b64e(bytes(payload)), **s}))
    with pytest.raises(jws.InvalidJWSSignature):
        one.verify(_jwks(cosigned).get_key(json.loads(base64url_decode(s["protected"]))["kid"]),
                   alg="EdDSA")


def test_ketmonitor_verifies_a_signature_made_by_jwcrypto(world):
    """Interoperability the other way: the same key and header, signed by the other library."""
    key = jwk.JWK.from_pyca(unlock_key(world.db, "doc1", DOCTOR_PW).private_key)
    record = json.loads(record_bytes(world.db, world.record_id))
    signer = jws.JWS(b64d(record["payload"]))
    header = {"alg": "EdDSA", "kid": world.doctor.kid, "signer_id": "doc1",
              "printed_name": "Dan Doctor, MD", "role": "physician", "meaning": "review",
              # now: a fixed date would fall before the key's enrolment once the calendar passed it
              "signed_at": utc_iso(time.time())}
    signer.add_signature(key, None, json_encode(header))
    theirs = json.loads(signer.serialize())
    assert theirs["payload"] == record["payload"]
    record["signatures"].append({"protected": theirs["protected"], "signature": theirs["signature"]})
    result = verify_record(json.dumps(record).encode(), Keyring.from_db(world.db))
    assert [s.meaning for s in result.signatures] == ["authorship", "review"]


def _doc_snippet() -> str:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## Verifying without ketmonitor"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_documented_recipe_verifies_a_record(cosigned, tmp_path, capsys, monkeypatch):
    (tmp_path / "record.json").write_bytes(record_bytes(cosigned.db, cosigned.record_id))
    (tmp_path / "keyring.json").write_text(Keyring.from_db(cosigned.db).to_json())
    monkeypatch.chdir(tmp_path)
    exec(compile(_doc_snippet(), str(DOC), "exec"), {})
    out = capsys.readouterr().out
    assert "signature 0: Nora Nurse, RN (nurse), authorship" in out
    assert "signature 1: Dan Doctor, MD (physician), approval" in out
    assert f"{cosigned.session_id} 62 numeric rows" in out


def test_the_documented_recipe_rejects_an_altered_record(cosigned, tmp_path, monkeypatch):
    record = json.loads(record_bytes(cosigned.db, cosigned.record_id))
    payload = b64d(record["payload"]).replace(b"MRN-0001", b"MRN-0002")
    record["payload"] = b64e(payload)
    (tmp_path / "record.json").write_text(json.dumps(record))
    (tmp_path / "keyring.json").write_text(Keyring.from_db(cosigned.db).to_json())
    monkeypatch.chdir(tmp_path)
    with pytest.raises(jws.InvalidJWSSignature):
        exec(compile(_doc_snippet(), str(DOC), "exec"), {})
    assert os.path.exists("record.json")
