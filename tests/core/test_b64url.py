"""Strict unpadded base64url (RFC 7515 §2): the fast decoder agrees with a plain, obviously right
one on every text, valid or not, and round-trips every byte string."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketmonitor.signing.jws import b64url_decode, b64url_encode


def reference(text: str) -> bytes:
    """Alphabet checked by a regex, decoded by the standard library, canonical form re-encoded."""
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text) or len(text) % 4 == 1:
        raise ValueError
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if base64.urlsafe_b64encode(data).rstrip(b"=").decode() != text:
        raise ValueError
    return data


def outcome(fn, text):
    try:
        return fn(text)
    except ValueError:
        return "rejected"


@given(st.binary(max_size=300))
def test_round_trip(data):
    assert b64url_decode(b64url_encode(data)) == data


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/= \n.é"


@given(st.text(alphabet=_ALPHABET, max_size=40))
def test_agrees_with_the_reference_on_any_text(text):
    assert outcome(b64url_decode, text) == outcome(reference, text)


@pytest.mark.parametrize("text", ["A", "AB=", "AB+C", "AB/C", "ABC\n", "AB C", "AAB", "AE",
                                  "ÀAAA", "AAAA" * 1000 + "AB"])
def test_rejected(text):
    with pytest.raises(ValueError):
        b64url_decode(text)
