"""Contec pulse oximeters, communication protocol V7.0 (CMS50D+ firmware 4.6+, CMS50E/F, CMS60C).

Wire format (device-protocols.md section 3a), 115200 8N1:

- A packet is a type byte with bit 7 clear, a "high byte" with bit 7 set whose bits 0..6 carry bit 7
  of each following data byte, then the data bytes sent with bit 7 forced to 1. There is no
  checksum; the type fixes the length. Every byte but the type byte has bit 7 set, so the parser
  resynchronises at the next byte with bit 7 clear and skips packet types it does not know.
- A known packet cut short by a byte with bit 7 clear is a bad frame; its bytes are dropped and the
  parser restarts at that byte.
- A real-time packet whose SpO2 or PI is outside its physical range (and not the "missing" code) is
  a bad frame: it is counted and dropped, never turned into a value.
- Status bits become conditions: probe error SENSOR_OFF, searching SEARCHING, searching too long
  SEARCHING_TOO_LONG, PI invalid PI_INVALID (that one flags the perfusion index alone).
- Pulse rate 0 and SpO2 0 are read as missing too, although the reference lists only 0xFF and
  0x7F: no oximeter measures a pulse of 0 (no pulse is "searching", not a rate) or a saturation of
  0 %, so a 0 is the device having nothing to report, and a monitor must not show (or alarm on) a
  number the device did not measure. The value then carries ``detail`` "the device sent 0".

Two lengths are not in the reference: the model and vendor strings (types 0x02 and 0x03, answers to
0xA8/0xA9). They are read as 9-byte packets carrying 7 characters, like the device id (type 0x04) —
the only form the public readers show. Command feedback (0x0B) is read as data byte 0 = the command,
data byte 1 = the reason (0x05 = unknown command).
"""

from __future__ import annotations

from dataclasses import dataclass

from ketmonitor.metrics import METRICS
from ketmonitor.samples import Condition

from .base import Frame, Measurement, Parser

BAUD = 115200


# -- packet coding ---------------------------------------------------------------------------------
def encode_packet(ptype: int, data: bytes | list[int]) -> bytes:
    """Build a packet from its data bytes: type, high byte, data with bit 7 forced to 1."""
    if ptype & 0x80:
        raise ValueError("a packet type has bit 7 clear")
    if len(data) > 7:
        raise ValueError("a packet carries at most 7 data bytes")
    high = 0x80
    for i, b in enumerate(data):
        if b & 0x80:
            high |= 1 << i
    return bytes((ptype, high, *((b | 0x80) & 0xFF for b in data)))


def restore(raw: bytes | bytearray) -> list[int]:
    """Data bytes of a packet (type byte first) with their bit 7 put back from the high byte."""
    high = raw[1]
    return [(raw[i] & 0x7F) | (((high >> (i - 2)) & 1) << 7) for i in range(2, len(raw))]


# -- host commands ---------------------------------------------------------------------------------
CMD_START_REALTIME = 0xA1
CMD_STOP_REALTIME = 0xA2
CMD_MODEL = 0xA8
CMD_VENDOR = 0xA9
CMD_DEVICE_ID = 0xAA
CMD_PI_SUPPORT = 0xAC
CMD_KEEP_ALIVE = 0xAF
CMD_STORAGE_IDS = 0xB0

COMMAND_NAMES = {
    CMD_START_REALTIME: "start real-time",
    CMD_STOP_REALTIME: "stop real-time",
    CMD_MODEL: "model",
    CMD_VENDOR: "vendor",
    CMD_DEVICE_ID: "device id",
    CMD_PI_SUPPORT: "PI support",
    CMD_KEEP_ALIVE: "keep-alive",
    CMD_STORAGE_IDS: "storage identifiers",
}

FEEDBACK_UNKNOWN_COMMAND = 0x05


def command(cmd: int) -> bytes:
    """The 9-byte host command, a packet of type 0x7D with the same bit-7 coding as the uplink:
    ``7D 81 <cmd> 80 80 80 80 80 80`` for every documented command (all have bit 7 set)."""
    if not 0 <= cmd <= 0xFF:
        raise ValueError(f"Contec command must be a byte, got {cmd!r}")
    return encode_packet(0x7D, [cmd, 0, 0, 0, 0, 0, 0])


START_REALTIME = command(CMD_START_REALTIME)
STOP_REALTIME = command(CMD_STOP_REALTIME)
KEEP_ALIVE = command(CMD_KEEP_ALIVE)

# -- uplink packets --------------------------------------------------------------------------------
TYPE_REALTIME = 0x01
TYPE_MODEL = 0x02
TYPE_VENDOR = 0x03
TYPE_DEVICE_ID = 0x04
TYPE_FEEDBACK = 0x0B
TYPE_PI_SUPPORT = 0x0E
TYPE_DEVICE_NOTICE = 0x11

# total length (type byte included) of every documented uplink type
PACKET_LENGTHS: dict[int, int] = {
    0x01: 9,   # real-time data
    0x02: 9,   # model string (7 characters; length not in the reference, see module doc)
    0x03: 9,   # vendor string (idem)
    0x04: 9,   # device id
    0x05: 9,   # user info
    0x07: 8,   # storage start date
    0x08: 8,   # storage length
    0x09: 6,   # storage data with PI
    0x0A: 4,   # segment count
    0x0B: 4,   # command feedback
    0x0C: 2,   # free feedback
    0x0D: 3,   # disconnect notice
    0x0E: 3,   # PI support
    0x0F: 8,   # storage data
    0x10: 3,   # user count
    0x11: 9,   # device notice
    0x12: 8,   # storage start time
    0x15: 9,   # storage identifiers
}

PACKET_NAMES = {
    0x01: "real-time data", 0x02: "model", 0x03: "vendor", 0x04: "device id", 0x05: "user info",
    0x07: "storage start date", 0x08: "storage length", 0x09: "storage data with PI",
    0x0A: "segment count", 0x0B: "command feedback", 0x0C: "free feedback",
    0x0D: "disconnect notice", 0x0E: "PI support", 0x0F: "storage data", 0x10: "user count",
    0x11: "device notice", 0x12: "storage start time", 0x15: "storage identifiers",
}

PULSE_MISSING = 0xFF
SPO2_MISSING = 0x7F
PI_MISSING = 0xFFFF


# -- frames ----------------------------------------------------------------------------------------
_SPO2_MAX = METRICS["spo2"].high
_PULSE_MAX = METRICS["pulse_rate"].high
_PI_MAX = METRICS["perfusion_index"].high
SENT_ZERO = "the device sent 0"  # detail of a pulse or SpO2 of 0, read as missing


def condition_tables(own: Condition) -> tuple[tuple[frozenset[Condition], ...], ...]:
    """What the four status bits of a Contec frame mean, by bit pattern (0..15), made once; both
    Contec streams share bits 0..2 (probe error, searching, searching too long), and bit 3 is
    ``own``, a condition about one value alone (V7.0: PI invalid, legacy: SpO2 dropping).

    Returns (the frame's conditions, the flags of the values ``own`` is not about, the same with
    HELD: finger out yet values present, the device is holding old ones)."""
    names = (Condition.SENSOR_OFF, Condition.SEARCHING, Condition.SEARCHING_TOO_LONG, own)
    conditions = tuple(frozenset(c for k, c in enumerate(names) if bits >> k & 1)
                       for bits in range(16))
    flags = tuple(c - {own} for c in conditions)
    return conditions, flags, tuple(c | {Condition.HELD} for c in flags)


_CONDITIONS, _FLAGS, _HELD = condition_tables(Condition.PI_INVALID)  # _FLAGS: on SpO2 and pulse


# 60 a second per device (216,000 in an hour's ingest): a plain slotted dataclass, as a frozen
# one's __init__ costs about six times more. Nothing changes a frame once the parser returned it.
@dataclass(slots=True)
class ContecRealtime(Frame):
    """One real-time packet (60 per second)."""

    signal_strength: int  # 0..8
    pleth: int  # 0..127
    bar_graph: int
    pulse_rate: int | None  # None: the device said missing (0xFF, or 0)
    spo2: int | None  # None: missing (0x7F, or 0)
    perfusion_index: float | None  # percent
    probe_error: bool  # finger out
    searching: bool
    searching_too_long: bool
    pulse_beep: bool
    pi_invalid: bool
    zero: int = 0  # bit 0: the device sent pulse 0, bit 1: SpO2 0 (read as missing)

    def _bits(self) -> int:
        return (self.probe_error | self.searching << 1 | self.searching_too_long << 2
                | self.pi_invalid << 3)

    def conditions(self) -> frozenset[Condition]:
        return _CONDITIONS[self._bits()]

    def measurements(self) -> list[Measurement]:
        bits = self._bits()
        if self.probe_error and (self.spo2 is not None or self.pulse_rate is not None):
            # finger out yet values present: the device is holding old ones (questionable)
            flags = _HELD[bits]
        else:
            flags = _FLAGS[bits]
        z = self.zero
        return [
            Measurement("spo2", self.spo2, flags, SENT_ZERO if z & 2 else None),
            Measurement("pulse_rate", self.pulse_rate, flags, SENT_ZERO if z & 1 else None),
            Measurement("perfusion_index", self.perfusion_index,
                        flags | {Condition.PI_INVALID} if self.pi_invalid else flags),
        ]

    def values_in_range(self) -> bool:
        # the same check as the base's, without building Measurements: each value is missing or
        # within its metric's physical range (all are unsigned, so only the top can be exceeded)
        return ((self.spo2 is None or self.spo2 <= _SPO2_MAX)
                and (self.pulse_rate is None or self.pulse_rate <= _PULSE_MAX)
                and (self.perfusion_index is None or self.perfusion_index <= _PI_MAX))

    def waveform(self) -> list[int]:
        return [self.pleth]


@dataclass(frozen=True, slots=True)
class ContecText(Frame):
    """Model (0x02), vendor (0x03) or device id (0x04) reply."""

    ptype: int
    text: str

    @property
    def kind(self) -> str:
        return PACKET_NAMES[self.ptype]

    def measurements(self) -> list[Measurement]:
        return []


@dataclass(frozen=True, slots=True)
class ContecFeedback(Frame):
    """Command feedback (0x0B): the device's answer to a command it did not carry out."""

    command: int
    reason: int

    @property
    def unknown_command(self) -> bool:
        return self.reason == FEEDBACK_UNKNOWN_COMMAND

    def measurements(self) -> list[Measurement]:
        return []


@dataclass(frozen=True, slots=True)
class ContecPacket(Frame):
    """Any other documented packet, kept whole (restored data) but not interpreted."""

    ptype: int
    data: tuple[int, ...]

    @property
    def kind(self) -> str:
        return PACKET_NAMES.get(self.ptype, f"type 0x{self.ptype:02X}")

    def measurements(self) -> list[Measurement]:
        return []


def decode_realtime(h: int, r0: int, r1: int, r2: int, r3: int, r4: int, r5: int,
                    r6: int) -> ContecRealtime:
    """A real-time packet's high byte and its seven data bytes as sent -> frame (each data byte's
    bit 7 comes back from the high byte). The only decoding of a real-time packet: the parser's
    hot path and ``decode_packet`` both call it; the parser base drops out-of-range values."""
    d0 = (r0 & 0x7F) | (h & 0x01) << 7
    d1 = (r1 & 0x7F) | (h & 0x02) << 6
    d2 = (r2 & 0x7F) | (h & 0x04) << 5
    pulse = (r3 & 0x7F) | (h & 0x08) << 4
    spo2 = (r4 & 0x7F) | (h & 0x10) << 3
    pi_raw = (r5 & 0x7F) | (h & 0x20) << 2 | ((r6 & 0x7F) | (h & 0x40) << 1) << 8
    pi_invalid = bool(d2 & 0x10)
    return ContecRealtime(
        d0 & 0x0F, d1 & 0x7F, d2 & 0x0F,
        None if pulse == PULSE_MISSING or not pulse else pulse,
        None if spo2 == SPO2_MISSING or not spo2 else spo2,
        None if pi_invalid or pi_raw == PI_MISSING else pi_raw / 100.0,
        bool(d0 & 0x80), bool(d1 & 0x80), bool(d0 & 0x10), bool(d0 & 0x40), pi_invalid,
        (not pulse) | (not spo2) << 1)


def decode_packet(raw: bytes | bytearray) -> Frame:
    """One whole packet of a documented type (type byte first) -> its frame."""
    t = raw[0]
    if t == TYPE_REALTIME:
        return decode_realtime(*raw[1:9])
    d = restore(raw)
    if t in (TYPE_MODEL, TYPE_VENDOR, TYPE_DEVICE_ID):
        return ContecText(t, bytes(b for b in d if b).decode("latin-1").strip())
    if t == TYPE_FEEDBACK:
        return ContecFeedback(d[0], d[1])
    return ContecPacket(t, tuple(d))


class ContecParser(Parser):
    """Incremental parser of the device -> host byte stream."""

    name = "contec"
    waveform_rate = 60.0
    realtime_frame = ContecRealtime  # the frame that carries the values (and one pleth sample)

    def __init__(self) -> None:
        super().__init__()
        self.unknown_packets = 0  # packets of undocumented types, skipped (bytes in skipped_bytes)

    def _parse(self, buf: bytearray, out: list[Frame]) -> None:
        n = len(buf)
        i = 0
        lengths = PACKET_LENGTHS
        append = out.append
        realtime = decode_realtime
        while i < n:
            t = buf[i]
            if t == TYPE_REALTIME and n - i >= 9:
                # the common case: a whole real-time packet, every byte after the type with bit 7
                # set (else it was cut short: the general path below)
                h, r0, r1, r2, r3, r4, r5, r6 = buf[i + 1:i + 9]
                if h & r0 & r1 & r2 & r3 & r4 & r5 & r6 & 0x80:
                    append(realtime(h, r0, r1, r2, r3, r4, r5, r6))
                    i += 9
                    continue
            if t & 0x80 or t not in lengths:
                if not t & 0x80:  # a type we do not know: skip it with its bit-7-set bytes
                    self.unknown_packets += 1
                j = i + 1
                while j < n and buf[j] & 0x80:
                    j += 1
                self.skipped_bytes += j - i
                i = j
                continue
            end = i + lengths[t]
            cut = -1
            for k in range(i + 1, min(end, n)):
                if not buf[k] & 0x80:
                    cut = k
                    break
            if cut >= 0:  # cut short by the start of the next packet: drop it
                self.bad_frames += 1
                i = cut
                continue
            if end > n:
                break  # wait for the rest
            append(decode_packet(buf[i:end]))
            i = end
        del buf[:i]
