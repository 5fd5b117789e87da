"""JWS General JSON Serialization (RFC 7515 §7.2.1) with EdDSA over Ed25519 (RFC 8037).

A record document is ``{"payload": B64URL(bytes), "signatures": [{"protected": B64URL(header),
"signature": B64URL(sig)}, ...]}``. The signing input of each signature is the ASCII of
``protected + "." + payload`` exactly as they appear in the document: verification reads those strings
and never re-encodes or re-serialises anything it checks.
"""

from __future__ import annotations

import binascii
import json
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .canonical import canonical_json
from .errors import HeaderMismatchError, InvalidSignatureError, RecordFormatError

ALG = "EdDSA"
MEANINGS = ("authorship", "review", "approval", "responsibility")
HEADER_FIELDS = ("alg", "kid", "signer_id", "printed_name", "role", "meaning", "signed_at")


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def b64url_bytes(data: bytes) -> bytes:
    """Unpadded base64url (RFC 7515 §2) as ASCII bytes: the form a signing input is made of."""
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=")


def b64url_encode(data: bytes) -> str:
    return b64url_bytes(data).decode("ascii")


_STANDARD = bytes.maketrans(b"-_", b"+/")


def b64url_decode(text: str) -> bytes:
    """Strict base64url without padding (RFC 7515 §2); ValueError otherwise.

    A record's payload is megabytes, so every check runs in C: the text must be ASCII with no
    ``+``, ``/`` or ``=`` (the standard alphabet's own and padding); binascii's strict mode then
    rejects any other character; and the padding bits, the only freedom left (two texts for one
    value), lie in the last group of four characters alone, which is compared with its own
    re-encoding."""
    if not isinstance(text, str) or len(text) % 4 == 1:
        raise ValueError("not unpadded base64url")
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError("not unpadded base64url") from None
    if b"+" in raw or b"/" in raw or b"=" in raw:
        raise ValueError("not unpadded base64url")
    try:
        data = binascii.a2b_base64(raw.translate(_STANDARD) + b"=" * (-len(raw) % 4),
                                   strict_mode=True)
    except binascii.Error as exc:
        raise ValueError(f"not base64url: {exc}") from None
    tail = len(raw) % 4  # 2 or 3 characters: 1 or 2 bytes, the group starting a 3-byte boundary
    if tail and b64url_bytes(data[len(data) - (tail - 1):]) != raw[-tail:]:
        raise ValueError("non-canonical base64url")  # non-zero padding bits
    return data


def _no_duplicates(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate member {key!r}")
        obj[key] = value
    return obj


def strict_json(data: bytes | str):
    """Parse JSON rejecting duplicate member names (RFC 7515 §4 requires it for headers)."""
    return json.loads(data, object_pairs_hook=_no_duplicates)


@dataclass(frozen=True)
class JwsSignature:
    protected: str  # base64url of the protected header bytes, verbatim
    signature: str  # base64url of the 64-byte Ed25519 signature, verbatim

    def header(self, *, record_id: str | None = None, index: int = 0) -> dict:
        """The protected header, parsed and checked for the fields every ketmonitor signature has."""
        def bad(why):
            return HeaderMismatchError(f"{_label(record_id)}: signature {index}: protected header {why}",
                                       record_id=record_id, index=index)
        try:
            header = strict_json(b64url_decode(self.protected))
        except (ValueError, UnicodeDecodeError) as exc:
            raise bad(f"is not valid base64url JSON ({exc})") from None
        if not isinstance(header, dict):
            raise bad("is not a JSON object")
        missing = [f for f in HEADER_FIELDS if not isinstance(header.get(f), str)]
        if missing:
            raise bad(f"lacks {', '.join(missing)}")
        if header["alg"] != ALG:
            raise bad(f"names alg {header['alg']!r}; only {ALG} is accepted")
        if "crit" in header:
            raise bad(f"marks {header['crit']!r} critical; none are understood")
        if header["meaning"] not in MEANINGS:
            raise bad(f"has meaning {header['meaning']!r}; expected one of {', '.join(MEANINGS)}")
        return header


@dataclass(frozen=True)
class JwsDocument:
    payload: str  # base64url of the signed record bytes, verbatim
    signatures: tuple[JwsSignature, ...]
    # the bytes ``payload`` was encoded from, when the document was made from them (the database's
    # stored record): decoding megabytes again would only give them back
    known_bytes: bytes | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of_bytes(cls, payload: bytes, signatures: tuple[JwsSignature, ...]) -> JwsDocument:
        return cls(b64url_encode(payload), signatures, payload)

    def payload_bytes(self) -> bytes:
        if self.known_bytes is not None:
            return self.known_bytes
        try:
            return b64url_decode(self.payload)
        except ValueError as exc:
            raise RecordFormatError(f"record payload is not valid base64url ({exc})") from None

    def to_bytes(self) -> bytes:
        """The record file: canonical JSON of the General JSON Serialization object."""
        return canonical_json({"payload": self.payload,
                              "signatures": [{"protected": s.protected, "signature": s.signature}
                                             for s in self.signatures]})

    @classmethod
    def from_bytes(cls, data: bytes) -> "JwsDocument":
        try:
            obj = strict_json(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RecordFormatError(f"not a JSON record file ({exc})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("payload"), str) \
                or not isinstance(obj.get("signatures"), list):
            raise RecordFormatError("not a JWS General JSON record: expected an object with "
                                    "'payload' (string) and 'signatures' (array)")
        sigs = []
        for i, s in enumerate(obj["signatures"]):
            if not isinstance(s, dict) or not isinstance(s.get("protected"), str) \
                    or not isinstance(s.get("signature"), str):
                raise RecordFormatError(f"signature {i} lacks 'protected' or 'signature' strings")
            if "header" in s:
                raise RecordFormatError(f"signature {i} has an unprotected header; every signed "
                                        "claim must be in the protected header")
            sigs.append(JwsSignature(s["protected"], s["signature"]))
        return cls(obj["payload"], tuple(sigs))


def _label(record_id: str | None) -> str:
    return f"record {record_id}" if record_id else "record"


def make_header(*, kid: str, signer_id: str, printed_name: str, role: str, meaning: str,
                signed_at: str) -> dict:
    if meaning not in MEANINGS:
        raise ValueError(f"meaning must be one of {', '.join(MEANINGS)}, not {meaning!r}")
    return {"alg": ALG, "kid": kid, "signer_id": signer_id, "printed_name": printed_name,
            "role": role, "meaning": meaning, "signed_at": signed_at}


def sign(payload_b64: str | bytes, header: dict, private_key: Ed25519PrivateKey) -> JwsSignature:
    """Sign ``protected + "." + payload`` (RFC 7515 §5.1). ``payload_b64`` may be the ASCII bytes
    (``b64url_bytes``): a 2-hour record's is 9 MB, and every copy of it shows in the signing time."""
    protected = b64url_encode(canonical_json(header))
    if isinstance(payload_b64, str):
        payload_b64 = payload_b64.encode("ascii")
    signature = private_key.sign(b".".join((protected.encode("ascii"), payload_b64)))
    return JwsSignature(protected, b64url_encode(signature))


def verify_signature(doc: JwsDocument, index: int, public_key: Ed25519PublicKey, *,
                     record_id: str | None = None, header: dict | None = None) -> None:
    """Check signature ``index`` over the document's own strings; raise InvalidSignatureError."""
    sig = doc.signatures[index]
    kid = (header or {}).get("kid")
    who = (header or {}).get("signer_id")
    try:
        raw = b64url_decode(sig.signature)
        public_key.verify(raw, f"{sig.protected}.{doc.payload}".encode("ascii"))
    except (ValueError, UnicodeEncodeError, InvalidSignature):
        raise InvalidSignatureError(
            f"{_label(record_id)}: signature {index} (signer {who}, key {kid}) does not verify: "
            "the payload, the protected header or the signature was altered, or the signature "
            "belongs to another record", record_id=record_id, index=index, kid=kid,
            signer_id=who) from None
