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
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

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
_EOL = re.compile(rb"[\r\n]")


class BadLine(ValueError):
    pass


def vital_value(text: str) -> float | None:
    """``098%`` -> 98.0, ``--.--%`` -> None; raises BadLine for anything else."""
    t = text[:-1] if text.endswith("%") else text
    if _DASHES.match(t):
        return None
    if not _NUMBER.match(t):
        raise BadLine(f"unreadable value {text!r}")
    return float(t)


def exc_names(exc: int) -> list[str]:
    return [name for bit, (name, _c) in EXC_BITS.items() if exc & bit and bit != 0x800]


@dataclass(frozen=True, slots=True)
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
        c = {cond for bit, (_n, cond) in EXC_BITS.items() if self.exc & bit and cond is not None}
        c.update(cond for bit, (_n, cond) in ALARM_BITS.items() if self.alarm & bit)
        return frozenset(c) if c else NO_FLAGS

    def detail(self) -> str | None:
        names = exc_names(self.exc) + [n for bit, (n, _c) in ALARM_BITS.items() if self.alarm & bit]
        return ", ".join(names) or None

    def measurements(self) -> list[Measurement]:
        conds = self.conditions()
        detail = self.detail()
        held = conds | {Condition.HELD}
        return [Measurement(metric, value,
                            held if value is not None and self.sensor_absent else conds, detail)
                for metric, value in self.values.items()]


def parse_line(text: str) -> MasimoLine | None:
    """One line without its terminator -> MasimoLine; None for an empty line; BadLine if bad."""
    if not text.strip():
        return None
    if not text.isprintable() or not text.isascii():
        raise BadLine("non-printable byte")
    device_time = None
    m = _DATE.match(text)
    if m:
        mo, d, y, hh, mi, ss = (int(x) for x in m.groups())
        try:
            device_time = datetime(2000 + y, mo, d, hh, mi, ss).isoformat()
        except ValueError:
            raise BadLine(f"unreadable date {m.group(0)!r}") from None
        text = text[m.end():]
    values: dict[str, float | None] = {}
    extra: dict[str, str] = {}
    exc = alarm = 0
    seen: set[str] = set()
    for token in text.split():
        key, sep, value = token.partition("=")
        if not sep or not _KEY.match(key) or not value or key in seen:
            raise BadLine(f"bad token {token!r}")
        seen.add(key)
        if key in VITAL_KEYS:
            values[VITAL_KEYS[key]] = vital_value(value)
        elif key in ("EXC", "ALARM"):
            if not _HEX.match(value):
                raise BadLine(f"bad {key} {value!r}")
            if key == "EXC":
                exc = int(value, 16)
            else:
                alarm = int(value, 16)
        else:
            extra[key] = value
    if not values:
        raise BadLine("no SPO2, BPM or PI")
    ordered = {m: values[m] for m in VITAL_KEYS.values() if m in values}  # same order every line
    return MasimoLine(ordered, device_time, exc, alarm, extra)


class MasimoParser(Parser):
    name = "masimo"

    def _parse(self, buf: bytearray, out: list[Frame]) -> None:
        while buf:
            m = _EOL.search(buf, 0, MAX_LINE + 1)
            if m is None:
                if len(buf) > MAX_LINE:  # no terminator in sight: garbage, resync at the next one
                    m = _EOL.search(buf)
                    self._skip(buf, m.start() if m else len(buf))
                    continue
                return
            nl = m.start()
            raw = bytes(buf[:nl])
            del buf[:nl + 1]
            try:
                line = parse_line(raw.decode("ascii"))
            except (BadLine, UnicodeDecodeError):
                self.bad_frames += 1
                continue
            if line is not None:
                out.append(line)
