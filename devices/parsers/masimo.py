"""Masimo Rad-8 / Radical-7 (and rainbow) / Radical-5 serial output "ASCII 1" (device-protocols.md §2).

9600 8N1. One line per second, CR LF terminated: the device clock ``MM/DD/YY HH:MM:SS`` (no zone),
then space-separated ``KEY=VALUE`` tokens. The field set differs by model, options and firmware, so
tokens are read by key, never by position; unknown keys are kept in ``extra``.

- SPO2 (``098%``), BPM (``072``), PI (``03.60%``) become spo2, pulse_rate, perfusion_index. A value
  made only of dashes (``---%``, ``--.--%``, ``+--``) is missing (None). Some firmware omits ``%``.
- EXC (hex, 24 bits on Radical-7) and ALARM (hex) become named conditions; 0x800 "full SET mode"
  is normal and names nothing.
- A line that reports values together with "sensor off" or "no sensor" is the device's display
  hold: those values carry HELD (questionable, not fresh) beside SENSOR_OFF.

There is no checksum. A line is bad (counted, dropped) if it holds a non-printable byte, a token
that is not ``KEY=VALUE``, a repeated key, an unreadable date, an unreadable vital or hex field, or
none of SPO2/BPM/PI. A line longer than ``MAX_LINE`` without a terminator is skipped.

Speed: a device sends the same keys in the same order every second, so once a layout (date or
not, then the keys in order, single spaces) has come twice the parser compiles it into one
pattern that checks and reads such a line in a single match (``_Layout``); any line that does
not match it exactly takes the general path, which applies every rule above, and the two paths
give the same result for every line the fast one reads (tests/devices/test_masimo_parser.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from operator import itemgetter

from ketmonitor.metrics import METRICS
from ketmonitor.samples import NO_FLAGS, Condition

from .base import Frame, Measurement, Parser

MAX_LINE = 512

VITAL_KEYS = {"SPO2": "spo2", "BPM": "pulse_rate", "PI": "perfusion_index"}

# EXC bit -> (name as Masimo calls it, condition or None)
EXC_BITS: dict[int, tuple[str, Condition | None]] = {
    0x000001: ("no sensor", Condition.SENSOR_DISCONNECTED),
    0x000002: ("defective sensor", Condition.SENSOR_FAULT),
    0x000004: ("low perfusion", Condition.LOW_PERFUSION),
    0x000008: ("pulse search", Condition.SEARCHING),
    0x000010: ("interference", Condition.INTERFERENCE),
    0x000020: ("sensor off", Condition.SENSOR_OFF),
    0x000040: ("ambient light", Condition.AMBIENT_LIGHT),
    0x000080: ("unrecognized sensor", Condition.SENSOR_FAULT),
    0x000400: ("low signal IQ", Condition.LOW_SIGNAL_QUALITY),
    0x000800: ("full SET mode", None),  # normal operation
    0x001000: ("no cable", Condition.SENSOR_DISCONNECTED),
    0x002000: ("cable life expired", Condition.SENSOR_FAULT),
    0x004000: ("incompatible cable", Condition.SENSOR_FAULT),
    0x008000: ("unrecognized cable", Condition.SENSOR_FAULT),
    0x010000: ("defective cable", Condition.SENSOR_FAULT),
    0x020000: ("sensor calibrating", Condition.SENSOR_CALIBRATING),
    0x040000: ("sensor life expired", Condition.SENSOR_FAULT),
}

ALARM_BITS: dict[int, tuple[str, Condition]] = {
    0x01: ("SpO2 high", Condition.DEVICE_SPO2_HIGH),
    0x02: ("SpO2 low", Condition.DEVICE_SPO2_LOW),
    0x04: ("PR high", Condition.DEVICE_PR_HIGH),
    0x08: ("PR low", Condition.DEVICE_PR_LOW),
    0x10: ("alarm active", Condition.DEVICE_ALARM),
    0x20: ("alarm silenced", Condition.DEVICE_ALARM_SILENCED),
    0x40: ("low battery", Condition.LOW_BATTERY),
}

_SENSOR_ABSENT = 0x000001 | 0x000020  # no sensor, sensor off: values shown are a hold
_DATE = re.compile(r"(\d\d)/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d)")
_KEY = re.compile(r"[A-Z][A-Z0-9]*\Z")
_NUMBER = re.compile(r"\+?\d{1,3}(\.\d{1,3})?\Z")
_DASHES = re.compile(r"[+]?[-.]*-[-.]*\Z")
_HEX = re.compile(r"[0-9A-Fa-f]{1,8}\Z")
# the part after the date: space-separated KEY=VALUE tokens (a value is anything but a space,
# '=' included, as str.partition('=') splits at the first '='), checked whole, then read in one go
_TOKENS = re.compile(r"(?: *[A-Z][A-Z0-9]*=[^ ]+)* *")
_PAIR = re.compile(r"([A-Z][A-Z0-9]*)=([^ ]+)")
_SPO2_MAX = METRICS["spo2"].high
_PULSE_MAX = METRICS["pulse_rate"].high
_PI_MAX = METRICS["perfusion_index"].high


class BadLine(ValueError):
    pass


def _vital(text: str) -> float | None | BadLine:
    t = text[:-1] if text.endswith("%") else text
    if _DASHES.match(t):
        return None
    if not _NUMBER.match(t):
        return BadLine(f"unreadable value {text!r}")
    return float(t)


# A line a second repeats the same few value texts ("097%", "069", "01.86%"): each distinct text
# is read once. Bounded, so a stream of distinct garbage cannot grow it without end.
_VITALS: dict[str, float | None | BadLine] = {}
_CACHE_MAX = 4096


_UNSEEN = object()
_DAYS: dict[str, str] = {}  # "MM/DD/YY" -> "20YY-MM-DDT", or "" for an impossible date


def _day(mdy: str) -> str:
    if len(_DAYS) >= _CACHE_MAX:
        _DAYS.clear()
    ok = _date_ok(int(mdy[0:2]), int(mdy[3:5]), int(mdy[6:8]))
    day = _DAYS[mdy] = f"20{mdy[6:8]}-{mdy[0:2]}-{mdy[3:5]}T" if ok else ""
    return day


def _vital_cached(text: str) -> float | None | BadLine:
    if len(_VITALS) >= _CACHE_MAX:
        _VITALS.clear()
    v = _VITALS[text] = _vital(text)
    return v


def vital_value(text: str) -> float | None:
    """``098%`` -> 98.0, ``--.--%`` -> None; raises BadLine for anything else."""
    v = _VITALS.get(text, _UNSEEN)
    if v is _UNSEEN:
        v = _vital_cached(text)
    if type(v) is BadLine:
        raise v
    return v


_HEXES: dict[str, int] = {}  # hex text -> its value, once read


def _hex(key: str, value: str) -> int:
    if not _HEX.match(value):
        raise BadLine(f"bad {key} {value!r}")
    n = int(value, 16)
    if len(_HEXES) >= _CACHE_MAX:
        _HEXES.clear()
    _HEXES[value] = n
    return n


@lru_cache(maxsize=1024)
def _date_ok(mo: int, d: int, y: int) -> bool:
    try:
        datetime(2000 + y, mo, d)
    except ValueError:
        return False
    return True


def exc_names(exc: int) -> list[str]:
    return [name for bit, (name, _c) in EXC_BITS.items() if exc & bit and bit != 0x800]


@lru_cache(maxsize=1024)
def _conditions(exc: int, alarm: int) -> frozenset[Condition]:
    c = {cond for bit, (_n, cond) in EXC_BITS.items() if exc & bit and cond is not None}
    c.update(cond for bit, (_n, cond) in ALARM_BITS.items() if alarm & bit)
    return frozenset(c) if c else NO_FLAGS


@lru_cache(maxsize=1024)
def _detail(exc: int, alarm: int) -> str | None:
    names = exc_names(exc) + [n for bit, (n, _c) in ALARM_BITS.items() if alarm & bit]
    return ", ".join(names) or None


# one a second per device, but the decoder and the benchmark read hours of them: a plain slotted
# dataclass (a frozen one's __init__ costs several times more); nothing changes it once returned
@dataclass(slots=True)
class MasimoLine(Frame):
    values: dict[str, float | None]  # metric -> value, only for keys the line carried
    device_time: str | None = None  # device clock, ISO 8601 without zone
    exc: int = 0
    alarm: int = 0
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def sensor_absent(self) -> bool:
        return bool(self.exc & _SENSOR_ABSENT)

    def conditions(self) -> frozenset[Condition]:
        return _conditions(self.exc, self.alarm)

    def detail(self) -> str | None:
        return _detail(self.exc, self.alarm)

    def measurements(self) -> list[Measurement]:
        conds = self.conditions()
        detail = self.detail()
        held = conds | {Condition.HELD}
        return [Measurement(metric, value,
                            held if value is not None and self.sensor_absent else conds, detail)
                for metric, value in self.values.items()]

    def values_in_range(self) -> bool:
        # the base's check on the values themselves (no Measurements built); each is unsigned
        v = self.values
        spo2, pr, pi = v.get("spo2"), v.get("pulse_rate"), v.get("perfusion_index")
        return ((spo2 is None or spo2 <= _SPO2_MAX) and (pr is None or pr <= _PULSE_MAX)
                and (pi is None or pi <= _PI_MAX))


def parse_line(text: str) -> MasimoLine | None:
    """One line without its terminator -> MasimoLine; None for an empty line; BadLine if bad."""
    if not text.isprintable() or not text.isascii():
        raise BadLine("non-printable byte")
    if not text.strip():
        return None
    device_time = None
    m = _DATE.match(text)
    if m:
        mo, d, y, hh, mi, ss = (int(x) for x in m.groups())
        if not (_date_ok(mo, d, y) and hh < 24 and mi < 60 and ss < 60):
            raise BadLine(f"unreadable date {m.group(0)!r}")
        device_time = f"20{text[6:8]}-{text[0:2]}-{text[3:5]}T{text[9:17]}"
        text = text[m.end():]
    if not _TOKENS.fullmatch(text):
        raise BadLine("a token that is not KEY=VALUE")
    pairs = _PAIR.findall(text)
    extra = dict(pairs)
    if len(extra) != len(pairs):
        raise BadLine("a repeated key")
    values: dict[str, float | None] = {}
    for key, metric in VITAL_KEYS.items():  # the same order every line
        if key in extra:
            values[metric] = vital_value(extra.pop(key))
    if not values:
        raise BadLine("no SPO2, BPM or PI")
    exc = _hex("EXC", extra.pop("EXC")) if "EXC" in extra else 0
    alarm = _hex("ALARM", extra.pop("ALARM")) if "ALARM" in extra else 0
    return MasimoLine(values, device_time, exc, alarm, extra)


class _Layout:
    """A line shape seen before: optional date, then these keys in this order, one space apart,
    compiled into one pattern. A value is printable ASCII without spaces ([!-~]), so a match also
    proves what the general path checks one by one: printable ASCII, KEY=VALUE tokens, no key
    twice, a vital key present (the layout was learned from a good line).

    The values a device repeats line after line (the vitals of a steady patient, the serial
    number and the dashes of the options it lacks) are read once per distinct text: each line
    gets its own copy of the dicts."""

    __slots__ = ("pattern", "dated", "vital_metrics", "vital_get", "exc", "alarm", "extra_keys",
                 "extra_get", "_values", "_extras")

    def __init__(self, dated: bool, keys: tuple[str, ...]):
        # the clock's hours, minutes and seconds are range-checked by the pattern itself
        head = r"([0-9][0-9]/[0-9][0-9]/[0-9][0-9] (?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]) "
        body = " ".join(f"{k}=([!-~]+)" for k in keys)
        self.pattern = re.compile((head if dated else "") + body)
        self.dated = dated
        base = 1 if dated else 0
        pos = {k: base + n for n, k in enumerate(keys)}
        vitals = [(metric, pos[k]) for k, metric in VITAL_KEYS.items() if k in pos]
        self.vital_metrics = tuple(metric for metric, _ in vitals)
        self.vital_get = _getter([i for _, i in vitals])
        self.exc = pos.get("EXC")
        self.alarm = pos.get("ALARM")
        extra = [k for k in keys if k not in VITAL_KEYS and k not in ("EXC", "ALARM")]
        self.extra_keys = tuple(extra)
        self.extra_get = _getter([pos[k] for k in extra])
        self._values: dict[tuple[str, ...], dict[str, float | None]] = {}
        self._extras: dict[tuple[str, ...], dict[str, str]] = {}

    def read(self, g: tuple[str, ...]) -> MasimoLine:
        device_time = None
        if self.dated:
            dt = g[0]  # MM/DD/YY HH:MM:SS
            day = _DAYS.get(dt[:8])  # checked (and its ISO form made) once per calendar day
            if day is None:
                day = _day(dt[:8])
            if not day:
                raise BadLine(f"unreadable date {dt!r}")
            device_time = day + dt[9:]
        texts = self.vital_get(g)
        values = self._values.get(texts)
        if values is None:
            values = {metric: vital_value(text) for metric, text in zip(self.vital_metrics, texts)}
            if len(self._values) >= _CACHE_MAX:
                self._values.clear()
            self._values[texts] = values
        exc = alarm = 0
        if self.exc is not None:
            exc = _HEXES.get(g[self.exc], -1)
            if exc < 0:
                exc = _hex("EXC", g[self.exc])
        if self.alarm is not None:
            alarm = _HEXES.get(g[self.alarm], -1)
            if alarm < 0:
                alarm = _hex("ALARM", g[self.alarm])
        texts = self.extra_get(g)
        extra = self._extras.get(texts)
        if extra is None:
            extra = dict(zip(self.extra_keys, texts))
            if len(self._extras) >= _CACHE_MAX:
                self._extras.clear()
            self._extras[texts] = extra
        return MasimoLine(values.copy(), device_time, exc, alarm, extra.copy())


def _getter(at: list[int]):
    """Items at these positions, always as a tuple (itemgetter of one index returns the item)."""
    if not at:
        return lambda g: ()
    if len(at) == 1:
        i = at[0]
        return lambda g: (g[i],)
    return itemgetter(*at)


_MAX_LAYOUTS = 16


class MasimoParser(Parser):
    name = "masimo"

    def __init__(self) -> None:
        super().__init__()
        self._layout: _Layout | None = None  # the one the last line matched
        self._layouts: dict[tuple, _Layout | int] = {}  # shape -> layout, or times seen once

    def _slow_line(self, text: str) -> MasimoLine | None:
        """A line the current layout does not read: the general path, then learn its shape."""
        line = parse_line(text)
        if line is not None:
            self._learn(text, line)
        return line

    def _learn(self, text: str, line: MasimoLine) -> None:
        """Remember the shape of a good line; compile it the second time it comes."""
        dated = line.device_time is not None
        if dated and text[17:18] != " ":
            return
        tokens = text[18:].split(" ") if dated else text.split(" ")
        keys = tuple(t.partition("=")[0] for t in tokens)
        if not all(tokens) or len(set(keys)) != len(keys):
            return  # not single-spaced: the general path reads it every time
        shape = (dated, keys)
        seen = self._layouts.get(shape)
        if isinstance(seen, _Layout):
            self._layout = seen
        elif seen is None:
            if len(self._layouts) >= _MAX_LAYOUTS:  # a noisy line may invent keys: bounded
                self._layouts.clear()
            self._layouts[shape] = 1
        else:
            lay = _Layout(dated, keys)
            m = lay.pattern.fullmatch(text)
            if m is None or lay.read(m.groups()) != line:  # (cannot happen; never trust it)
                return
            self._layout = self._layouts[shape] = lay

    def _parse(self, buf: bytearray, out: list[Frame]) -> None:
        if 10 not in buf and 13 not in buf:  # no line ends here yet
            if len(buf) > MAX_LINE:  # no terminator in sight: garbage, resync at the next one
                self._skip(buf, len(buf))
            return
        # split in C at CR, LF or CR LF (bytes.splitlines knows no other line ends)
        lines = buf.splitlines(keepends=True)
        tail = lines[-1]
        if tail[-1] in (10, 13):
            tail = b""
        else:
            lines.pop()  # a line not ended yet: kept for the next feed
        for raw in lines:
            raw = raw.rstrip(b"\r\n")  # its one terminator (CR LF, CR or LF) and no more
            if not raw:
                continue  # an empty line (the LF of a CR LF split across reads)
            if len(raw) > MAX_LINE:
                self.skipped_bytes += len(raw)  # a runaway line: skipped, resync at its end
                continue
            try:
                text = raw.decode("ascii")
                lay = self._layout
                m = lay.pattern.fullmatch(text) if lay is not None else None
                line = lay.read(m.groups()) if m else self._slow_line(text)
            except (BadLine, UnicodeDecodeError):
                self.bad_frames += 1
            else:
                if line is not None:
                    out.append(line)
        if len(tail) > MAX_LINE:
            self.skipped_bytes += len(tail)
            tail = b""
        buf[:] = tail
