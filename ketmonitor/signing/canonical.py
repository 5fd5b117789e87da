"""RFC 8785 canonical JSON (JCS), byte for byte what the ``rfc8785`` package writes, at C speed.

``canonical_json(value)`` returns exactly ``rfc8785.dumps(value)`` and raises exactly what it raises.
The ``rfc8785`` package stays the reference and the fallback. It is pure Python (0.4 s for a 2-hour
record), so wherever it is provably byte-identical the standard library's C primitives write the
bytes instead: the JSON encoder (sorted keys, ``(",", ":")`` separators, ``ensure_ascii=False``,
``allow_nan=False``), its string escaper ``json.encoder.encode_basestring``, and ``float.__repr__``
and ``int.__repr__``, which that encoder calls for numbers. They agree with RFC 8785 on the
*fast subset*:

- ``None``, ``True``, ``False``;
- ``str``: both escape ``"``, ``\\`` and U+0000..U+001F only, as ``\\b \\t \\n \\f \\r`` or lowercase
  ``\\u00xx`` (RFC 8785 §3.2.2.2); DEL, U+2028/U+2029 and everything else go out as UTF-8. A lone
  surrogate has no UTF-8 form: encoding the result fails and the reference decides (it refuses);
- ``int`` within +-(2**53 - 1) (beyond, the reference refuses it: a double cannot hold it exactly);
- ``float`` finite, not integral, and at least 1e-4 in magnitude (hence below 2**52): Python's repr
  is then the shortest round-trip digits in plain notation, which is ECMAScript's Number::toString
  (RFC 8785 §3.2.2.3). Elsewhere they differ: an integral float is "98.0" in Python but "98" in
  RFC 8785, and exponent notation starts below 1e-4 and from 1e16 in Python, but below 1e-6 and
  from 1e21 in ECMAScript;
- ``list`` and ``tuple`` of such values, and ``dict`` whose keys are ``str`` without characters beyond
  U+FFFF: there Python's sort by code point equals RFC 8785's sort by UTF-16 code unit (§3.2.3).

Only exact types count (an ``IntEnum`` or a ``str`` subclass goes to the reference). A value outside
the subset is written member by member and element by element: every subtree inside the subset by
the C encoder, every leaf outside it by ``rfc8785.dumps`` (RFC 8785 text is the concatenation of its
members' texts, so this is exact).

The columnar tables of a session record (half a million values in a 2-hour session) go through
``canonical_rows`` instead, which writes a table's text once, column by column: each column's tokens
come from one C-level ``map`` of the primitive above that fits its type, integral floats written as
RFC 8785 writes them ("98.0" -> "98", "-0.0" -> "0": a token ends in ".0" exactly when its float is
integral), and the rows are then joined. Tokens in exponent notation, "inf" or "nan" (a float
outside the subset), an int beyond 2**53 - 1, or any other type leave the rows to ``canonical_json``.
tests/core/test_canonical_json.py compares all of it with ``rfc8785.dumps``.
"""

from __future__ import annotations

import json
import math
from itertools import repeat
from json.encoder import encode_basestring  # the C escaper json.dumps(ensure_ascii=False) uses
from operator import is_

import rfc8785

MAX_INT = 2**53 - 1  # RFC 8785 (I-JSON): the integers a double holds exactly
MIN_PLAIN = 1e-4  # Python's float repr uses exponent notation below this (ECMAScript below 1e-6)
_CHUNK = 8192  # rows tokenised at a time: bounds the memory the tokens take

_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, sort_keys=True,
                            separators=(",", ":"), check_circular=False)
_dumps = _ENCODER.encode
_NONE = type(None)
_ATOMS = frozenset({str, _NONE, bool})  # always in the fast subset (surrogates: see above)
_SCALARS = _ATOMS | {int, float}
_ROWS = frozenset({tuple, list})


class CanonicalRows(tuple):
    """Rows of a table (a tuple of tuples of immutable values) with their RFC 8785 text, written
    once by ``canonical_rows``; everywhere else it is just the tuple of rows."""

    def json(self) -> str:
        return "".join(self._parts)


def canonical_json(value) -> bytes:
    """``rfc8785.dumps(value)``: the same bytes, the same errors."""
    try:
        out: list[str] = []
        _write(value, out)
        return "".join(out).encode("utf-8")  # the 6.6 MB of a 2-hour record copied once
    except Exception:  # noqa: BLE001 - a lone surrogate, NaN, an odd type...: the reference decides
        return rfc8785.dumps(value)


def canonical_rows(rows):
    """``rows`` (equal-length tuples of str, None, int and float, as sqlite3 returns them) as a
    ``CanonicalRows`` carrying their RFC 8785 text, or unchanged (a list) when a value lies outside
    what the column writer handles; ``canonical_json`` then writes them its general way."""
    rows = rows if type(rows) is list else list(rows)
    if rows and (set(map(type, rows)) != {tuple} or len(set(map(len, rows))) != 1):
        return rows
    try:
        parts = _table_text(rows)
    except (TypeError, ValueError, ArithmeticError):  # values sqlite3 never returns
        parts = None
    if parts is None:
        return rows
    marked = CanonicalRows(rows)
    marked._parts = parts
    return marked


def is_canonical(rows) -> bool:
    """True when ``rows`` came from ``canonical_rows`` with their text."""
    return type(rows) is CanonicalRows


# -- columnar tables ------------------------------------------------------------------------------

def _table_text(rows: list[tuple]) -> tuple[str, ...] | None:
    """The table's RFC 8785 text in pieces (joined once, with the rest of the record)."""
    if not rows:
        return ("[]",)
    if not rows[0]:
        return ("[" + ",".join(["[]"] * len(rows)) + "]",)
    parts = ["[["]
    for start in range(0, len(rows), _CHUNK):
        columns = []
        for column in zip(*rows[start:start + _CHUNK]):
            tokens = _column_tokens(column)
            if tokens is None:
                return None
            columns.append(tokens)
        if start:
            parts.append("],[")
        parts.append("],[".join(map(",".join, zip(*columns))))
    parts.append("]]")
    return tuple(parts)


def _column_tokens(column: tuple) -> list[str] | None:
    """The RFC 8785 token of every value of one column, or None. Tries the homogeneous columns
    first (each ``map`` raises TypeError at the first value of another type)."""
    first = column[0]
    if len(column) > 1 and all(map(is_, column, repeat(first))):  # one object (a column read once)
        token = _column_tokens((first,))
        return None if token is None else token * len(column)
    try:
        return list(map(encode_basestring, column))
    except TypeError:
        pass
    try:
        return _float_tokens(list(map(float.__repr__, column)))
    except TypeError:
        pass
    if column.count(None) == len(column):
        return ["null"] * len(column)
    kinds = set(map(type, column))
    if kinds == {int}:
        return _int_tokens(column)
    return _mixed_tokens(column, kinds)


def _float_tokens(tokens: list[str]) -> list[str] | None:
    """Python reprs of floats as RFC 8785 writes them; None when one needs the reference."""
    text = "\0".join(tokens) + "\0"
    if "e" in text or "n" in text:  # exponent notation (below 1e-4, from 1e16), inf, nan
        return None
    if ".0\0" not in text:  # no integral float: the reprs are already right
        return tokens
    # A repr ends in ".0" exactly when the float is integral; below 1e16 its digits are then the
    # integer's, which is what RFC 8785 writes. A "-0.0" token (only a whole token starts with
    # "-0.0") becomes "0", as RFC 8785 writes negative zero.
    text = text.replace("-0.0\0", "0\0").replace(".0\0", "\0")
    return text[:-1].split("\0")


def _int_tokens(values) -> list[str] | None:
    if min(values) < -MAX_INT or max(values) > MAX_INT:
        return None
    return list(map(int.__repr__, values))


def _mixed_tokens(column: tuple, kinds: set) -> list[str] | None:
    """Columns of several types (e.g. floats with NULLs): tokens per type, put back in order."""
    if not kinds <= {str, float, int, _NONE}:
        return None  # bytes, bool, containers...
    nexts = {}
    for kind in kinds:
        values = [v for v in column if type(v) is kind]
        if kind is str:
            tokens = list(map(encode_basestring, values))
        elif kind is float:
            tokens = _float_tokens(list(map(float.__repr__, values)))
        elif kind is int:
            tokens = _int_tokens(values)
        else:
            tokens = ["null"] * len(values)
        if tokens is None:
            return None
        nexts[kind] = iter(tokens).__next__
    return [nexts[type(v)]() for v in column]


# -- everything else ------------------------------------------------------------------------------

def _write(value, out: list[str]) -> None:
    kind = type(value)
    if kind is CanonicalRows:
        out.extend(value._parts)
    elif _fast(value):
        out.append(_dumps(value))
    elif kind is dict and _keys_fast(value):
        out.append("{")
        for n, key in enumerate(sorted(value)):
            out.append(("," if n else "") + _dumps(key) + ":")
            _write(value[key], out)
        out.append("}")
    elif kind is list or kind is tuple:
        out.append("[")
        for n, item in enumerate(value):
            if n:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        out.append(rfc8785.dumps(value).decode("utf-8"))


def _fast(value) -> bool:
    kind = type(value)
    if kind in _ATOMS:
        return True
    if kind is int:
        return -MAX_INT <= value <= MAX_INT
    if kind is float:
        return value - value == 0 and not value.is_integer() and abs(value) >= MIN_PLAIN  # finite
    if kind is list or kind is tuple:
        return _all_fast(value)
    if kind is dict:
        return _keys_fast(value) and _all_fast(list(value.values()))
    return False


def _keys_fast(obj: dict) -> bool:
    return all(type(k) is str and (k.isascii() or max(k) <= "\uffff") for k in obj)


def _all_fast(items) -> bool:
    kinds = set(map(type, items))
    if kinds <= _ATOMS:
        return True
    if kinds <= _SCALARS:
        return _numbers_fast(items, kinds)
    if len(items) > 1 and kinds <= _ROWS and len(set(map(len, items))) == 1:
        return all(map(_all_fast, zip(*items)))  # a table: the same values, column by column
    return all(map(_fast, items))


def json_floats(items, kinds):
    """The floats of ``items`` (``kinds``: the set of their types, none beyond str, None, bool,
    int and float), or None when an int lies beyond +-MAX_INT or a float is not finite: what JSON
    (I-JSON, RFC 8785) cannot carry as a number. One C-level pass per type. rows.py asks it of a
    column read from SQLite, the fast writer below of a list of scalars."""
    only = len(kinds) == 1
    if int in kinds:
        ints = items if only else [v for v in items if type(v) is int]
        if min(ints) < -MAX_INT or max(ints) > MAX_INT:
            return None
    if float not in kinds:
        return ()
    floats = items if only else [v for v in items if type(v) is float]
    return floats if all(map(math.isfinite, floats)) else None


def _numbers_fast(items, kinds) -> bool:
    floats = json_floats(items, kinds)
    if floats is None:
        return False
    # an integral float ("98.0") and exponent notation are written otherwise by RFC 8785
    return not floats or (not any(map(float.is_integer, floats))
                          and min(map(abs, floats)) >= MIN_PLAIN)
