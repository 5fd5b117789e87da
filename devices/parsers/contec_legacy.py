"""Contec legacy real-time stream (older CMS50D+/CMS50E firmware), device-protocols.md section 3b.

19200 baud, odd parity on USB-cable units (some use none); 5-byte packets, 60 per second, sent with
no start command. Byte 1 has bit 7 set, bytes 2..5 have it clear, which is how the parser
synchronises: a packet cut short by the next bit-7-set byte is a bad frame and the parser restarts
at that byte.

The reference gives no missing-data codes for this stream. The parser reads pulse 255 and SpO2 127
as missing (the codes the V7.0 protocol uses; the legacy field widths allow nothing else as a
sentinel), SpO2 101..126 as out of range (bad frame), and — because a device with its probe off has
measured nothing — a pulse or SpO2 of 0 sent with the probe-error bit as missing too.
"""

from __future__ import annotations

from dataclasses import dataclass

from ketmonitor.samples import Condition

from .base import Frame, Measurement, Parser

BAUD = 19200
PARITY = "O"  # serial.PARITY_ODD; some units use none
PACKET_LENGTH = 5
PULSE_MISSING = 0xFF
SPO2_MISSING = 0x7F


@dataclass(frozen=True, slots=True)
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

    def conditions(self) -> frozenset[Condition]:
        flags = set()
        if self.probe_error:
            flags.add(Condition.SENSOR_OFF)
        if self.searching:
            flags.add(Condition.SEARCHING)
        if self.searching_too_long:
            flags.add(Condition.SEARCHING_TOO_LONG)
        return frozenset(flags)

    def measurements(self) -> list[Measurement]:
        flags = self.conditions()
        if self.probe_error and (self.spo2 is not None or self.pulse_rate is not None):
            flags = flags | {Condition.HELD}  # probe off yet values present: held, questionable
        return [
            Measurement("spo2", self.spo2, flags),
            Measurement("pulse_rate", self.pulse_rate, flags),
        ]

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
    b1, b2, b3, b4, b5 = p[0], p[1], p[2], p[3], p[4]
    pulse = ((b3 & 0x40) << 1) | (b4 & 0x7F)
    spo2 = b5 & 0x7F
    probe_error = bool(b3 & 0x10)
    return ContecLegacyFrame(
        signal_strength=b1 & 0x0F,
        searching_too_long=bool(b1 & 0x10),
        spo2_dropping=bool(b1 & 0x20),
        pulse_beep=bool(b1 & 0x40),
        pleth=b2 & 0x7F,
        bar_graph=b3 & 0x0F,
        probe_error=probe_error,
        searching=bool(b3 & 0x20),
        pulse_rate=None if pulse == PULSE_MISSING or (probe_error and pulse == 0) else pulse,
        spo2=None if spo2 == SPO2_MISSING or (probe_error and spo2 == 0) else spo2,
    )


class ContecLegacyParser(Parser):
    name = "contec-legacy"
    waveform_rate = 60.0

    def _parse(self, buf: bytearray, out: list[Frame]) -> None:
        n = len(buf)
        i = 0
        while i < n:
            if not buf[i] & 0x80:  # not a packet start
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
            if end > n:
                break
            out.append(decode(buf[i:end]))
            i = end
        del buf[:i]
