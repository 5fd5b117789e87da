"""Contec legacy real-time stream (older CMS50D+/CMS50E firmware), device-protocols.md section 3b.

19200 baud, odd parity on USB-cable units (some use none); 5-byte packets, 60 per second, sent with
no start command. Byte 1 has bit 7 set, bytes 2..5 have it clear, which is how the parser
synchronises: a packet cut short by the next bit-7-set byte is a bad frame and the parser restarts
at that byte.

The reference gives no missing-data codes for this stream. The parser reads pulse 255 and SpO2 127
as missing (the codes the V7.0 protocol uses, imported from its module; the legacy field widths
allow nothing else as a sentinel), SpO2 101..126 as out of range (bad frame), and a pulse or SpO2
of 0 as missing too, with or without the probe-error bit: no oximeter measures a pulse of 0 (no
pulse is "searching", not a rate) or a saturation of 0 %, so a 0 is the device having nothing to
report, and a monitor must not show (or alarm on) a number the device did not measure. Such a
value carries ``detail`` "the device sent 0".

Status bits become conditions: probe error SENSOR_OFF, searching SEARCHING, searching too long
SEARCHING_TOO_LONG, SpO2 dropping SPO2_DROPPING (that one flags the SpO2 value alone). The first
three mean what they mean in V7.0, so both streams read them through one table
(``devices.parsers.contec.condition_tables``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ketmonitor.metrics import METRICS
from ketmonitor.samples import Condition

from .base import Frame, Measurement, Parser
from .contec import PULSE_MISSING, SENT_ZERO, SPO2_MISSING, condition_tables

BAUD = 19200
PARITY = "O"  # serial.PARITY_ODD; some units use none
PACKET_LENGTH = 5
_SPO2_MAX = METRICS["spo2"].high
_PULSE_MAX = METRICS["pulse_rate"].high


_CONDITIONS, _FLAGS, _HELD = condition_tables(Condition.SPO2_DROPPING)  # _FLAGS: on the pulse


# 60 a second per device: a plain slotted dataclass, as a frozen one's __init__ costs about six
# times more. Nothing changes a frame once the parser has returned it.
@dataclass(slots=True)
class ContecLegacyFrame(Frame):
    signal_strength: int
    searching_too_long: bool
    spo2_dropping: bool
    pulse_beep: bool
    pleth: int  # 0..127
    bar_graph: int
    probe_error: bool
    searching: bool
    pulse_rate: int | None
    spo2: int | None
    zero: int = 0  # bit 0: the device sent pulse 0, bit 1: SpO2 0 (read as missing)

    def _bits(self) -> int:
        return (self.probe_error | self.searching << 1 | self.searching_too_long << 2
                | self.spo2_dropping << 3)

    def conditions(self) -> frozenset[Condition]:
        return _CONDITIONS[self._bits()]

    def measurements(self) -> list[Measurement]:
        bits = self._bits()
        if self.probe_error and (self.spo2 is not None or self.pulse_rate is not None):
            flags = _HELD[bits]  # probe off yet values present: held, questionable
        else:
            flags = _FLAGS[bits]
        z = self.zero
        return [
            Measurement("spo2", self.spo2,
                        flags | {Condition.SPO2_DROPPING} if self.spo2_dropping else flags,
                        SENT_ZERO if z & 2 else None),
            Measurement("pulse_rate", self.pulse_rate, flags, SENT_ZERO if z & 1 else None),
        ]

    def values_in_range(self) -> bool:
        # the base's check without building Measurements (both values are unsigned)
        return ((self.spo2 is None or self.spo2 <= _SPO2_MAX)
                and (self.pulse_rate is None or self.pulse_rate <= _PULSE_MAX))

    def waveform(self) -> list[int]:
        return [self.pleth]


def encode(*, signal_strength: int = 0, searching_too_long: bool = False,
           spo2_dropping: bool = False, pulse_beep: bool = False, pleth: int = 0,
           bar_graph: int = 0, probe_error: bool = False, searching: bool = False,
           pulse_rate: int | None = None, spo2: int | None = None) -> bytes:
    """One 5-byte packet (emulator and tests); None encodes the missing codes."""
    pr = PULSE_MISSING if pulse_rate is None else int(pulse_rate)
    sp = SPO2_MISSING if spo2 is None else int(spo2)
    if not 0 <= pr <= 0xFF or not 0 <= sp <= 0x7F:
        raise ValueError(f"pulse rate {pr} or SpO2 {sp} does not fit the legacy packet")
    b1 = (0x80 | (signal_strength & 0x0F) | (0x10 if searching_too_long else 0)
          | (0x20 if spo2_dropping else 0) | (0x40 if pulse_beep else 0))
    b3 = ((bar_graph & 0x0F) | (0x10 if probe_error else 0) | (0x20 if searching else 0)
          | ((pr & 0x80) >> 1))
    return bytes((b1, pleth & 0x7F, b3, pr & 0x7F, sp))


def decode(p: bytes | bytearray) -> ContecLegacyFrame:
    """A synchronised 5-byte packet -> frame (SpO2 101..126 is dropped by the parser base)."""
    return _decode(p[0], p[1], p[2], p[3], p[4])


def _decode(b1: int, b2: int, b3: int, b4: int, b5: int) -> ContecLegacyFrame:
    pulse = ((b3 & 0x40) << 1) | (b4 & 0x7F)
    spo2 = b5 & 0x7F
    return ContecLegacyFrame(
        b1 & 0x0F, bool(b1 & 0x10), bool(b1 & 0x20), bool(b1 & 0x40), b2 & 0x7F, b3 & 0x0F,
        bool(b3 & 0x10), bool(b3 & 0x20),
        None if pulse == PULSE_MISSING or not pulse else pulse,
        None if spo2 == SPO2_MISSING or not spo2 else spo2,
        (not pulse) | (not spo2) << 1)


class ContecLegacyParser(Parser):
    name = "contec-legacy"
    waveform_rate = 60.0
    realtime_frame = ContecLegacyFrame  # the frame that carries the values (and one pleth sample)

    def _parse(self, buf: bytearray, out: list[Frame]) -> None:
        n = len(buf)
        i = 0
        append = out.append
        while i < n:
            b1 = buf[i]
            if b1 & 0x80 and n - i >= PACKET_LENGTH:
                _b1, b2, b3, b4, b5 = buf[i:i + PACKET_LENGTH]
                if not (b2 | b3 | b4 | b5) & 0x80:  # the common case: a whole packet
                    append(_decode(b1, b2, b3, b4, b5))
                    i += PACKET_LENGTH
                    continue
            if not b1 & 0x80:  # not a packet start
                j = i + 1
                while j < n and not buf[j] & 0x80:
                    j += 1
                self.skipped_bytes += j - i
                i = j
                continue
            end = i + PACKET_LENGTH
            cut = -1
            for k in range(i + 1, min(end, n)):
                if buf[k] & 0x80:
                    cut = k
                    break
            if cut >= 0:  # cut short by the next packet start
                self.bad_frames += 1
                i = cut
                continue
            break  # an incomplete packet: wait for the rest
        del buf[:i]
