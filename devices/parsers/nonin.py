"""Nonin OEM serial formats #2, #7 and #8, and the set-format reply (device-protocols.md section 1).

9600 8N1. Formats #2 and #7: 75 five-byte frames per second, 25 frames per packet, one pleth sample
per frame, each frame checksummed (sum of the first four bytes mod 256). The FLOAT byte means
something different in each frame of the packet; this parser assembles a packet as it goes and, on
the packet's third frame, emits the *recording* values (HR from frames 1-2, SpO2 from frame 3),
which update every 1/3 s and go missing at once when the finger is removed — a monitor must not
show a held number as fresh. The *display* values (frames 9, 20-21; held for 10 s after removal)
are kept on the frame as ``display_spo2``/``display_hr`` for diagnostics.

HR is 9 bits: ``((MSB & 0x03) << 7) | (LSB & 0x7F)`` (shifting by 8 is a known bug). Missing:
HR 511, SpO2 127.

Sync (reference rule): a frame is accepted as a packet start only if its checksum holds *and*
its STATUS has bit 7 and the SYNC bit set (and, in #2, its first byte is 0x01); never on bit 7
alone. While synced, every frame must hold its checksum and have SYNC set exactly on frame 1 of a
packet; a frame that fails is counted as bad and the parser hunts for the next packet start.

Format #8: a 4-byte record per second of display values, no checksum. STATUS is the only byte with
bit 7 set, so a record is STATUS followed by three bytes with bit 7 clear. To sync, two records must
follow each other and be followed by a third STATUS byte (so the first value after a (re)connection
comes about 2 s late); once in sync each record is decoded as soon as its four bytes are in. This
keeps another format's bytes (#2/#7 at the wrong setting) from ever being read as records. Its values are display
values: with the sensor-alarm bit set they are the device's hold, flagged HELD.

The set-format command ``02 70 02 02 <fmt> 03`` is answered with ACK 0x06 or NAK 0x15. After
``expect_reply()`` the next such byte met while hunting is returned as a ``NoninReply``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ketmonitor.samples import NO_FLAGS, Condition

from .base import Frame, Measurement, Parser

ACK, NAK = 0x06, 0x15
FORMATS = (2, 7, 8)
HR_MISSING, SPO2_MISSING = 511, 127
FRAMES_PER_PACKET = 25

# STATUS bits, formats #2/#7
ST_BIT7, ST_SNSD, ST_ARTF, ST_OOT, ST_SNSA, ST_RPRF, ST_GPRF, ST_SYNC = (
    0x80, 0x40, 0x20, 0x10, 0x08, 0x04, 0x02, 0x01)
# STATUS bits, format #8
S8_SNSD, S8_OOT, S8_LPRF, S8_MPRF, S8_ARTF = 0x40, 0x20, 0x10, 0x08, 0x04
# STATUS2 (#8) and STAT2 (frame 8 of #2/#7)
S2_SPA, S2_SNSA, S2_LOWBAT = 0x20, 0x08, 0x01

# FLOAT byte meaning by 0-based frame index within the packet
IDX_HR_MSB, IDX_HR_LSB, IDX_SPO2, IDX_FW, IDX_TIMER_MSB, IDX_TIMER_LSB, IDX_STAT2 = 0, 1, 2, 3, 5, 6, 7
IDX_SPO2_D, IDX_SPO2_FAST, IDX_SPO2_BB = 8, 9, 10
IDX_EHR_MSB, IDX_EHR_LSB, IDX_ESPO2, IDX_ESPO2_D = 13, 14, 15, 16
IDX_HR_D_MSB, IDX_HR_D_LSB, IDX_EHR_D_MSB, IDX_EHR_D_LSB = 19, 20, 21, 22


def set_format_command(fmt: int) -> bytes:
    """Host command selecting data format ``fmt`` (2, 7, 8 or 13)."""
    if fmt not in (2, 7, 8, 13):
        raise ValueError(f"Nonin data format must be 2, 7, 8 or 13, not {fmt!r}")
    return bytes((0x02, 0x70, 0x02, 0x02, fmt, 0x03))


def hr9(msb: int, lsb: int) -> int:
    """The 9-bit heart rate from its two FLOAT (or STATUS/HR) bytes."""
    return ((msb & 0x03) << 7) | (lsb & 0x7F)


def hr_value(raw: int | None) -> float | None:
    return None if raw is None or raw == HR_MISSING else float(raw)


def spo2_value(raw: int | None) -> float | None:
    return None if raw is None or (raw & 0x7F) == SPO2_MISSING else float(raw & 0x7F)


def checksum(b: bytes | bytearray) -> int:
    return (b[0] + b[1] + b[2] + b[3]) & 0xFF


def status_conditions(status: int) -> frozenset[Condition]:
    """Conditions named by a #2/#7 STATUS byte."""
    c = set()
    if status & ST_SNSD:
        c.add(Condition.SENSOR_DISCONNECTED)
    if status & ST_ARTF:
        c.add(Condition.ARTIFACT)
    if status & ST_OOT:
        c.add(Condition.OUT_OF_TRACK)
    if status & ST_SNSA:
        c.add(Condition.SENSOR_OFF)
    red, green = status & ST_RPRF, status & ST_GPRF
    if red and green:
        c.add(Condition.MARGINAL_PERFUSION)  # yellow
    elif red:
        c.add(Condition.LOW_PERFUSION)
    return frozenset(c) if c else NO_FLAGS


@dataclass(frozen=True, slots=True)
class NoninReply(Frame):
    """The device's answer to a set-format command."""

    ack: bool

    def conditions(self) -> frozenset[Condition]:
        return NO_FLAGS


@dataclass(frozen=True, slots=True)
class NoninFrame(Frame):
    """One #2/#7 frame: a pleth sample, its STATUS, and (on frame 3) the packet's recording values."""

    index: int  # 0-based position in the packet
    status: int
    pleth: int
    float_byte: int
    values: tuple[Measurement, ...] = ()
    extra: frozenset[Condition] = NO_FLAGS  # from STAT2 (low battery)
    display_spo2: float | None = None
    display_hr: float | None = None

    def measurements(self) -> list[Measurement]:
        return list(self.values)

    def waveform(self) -> list[int]:
        return [self.pleth]

    def conditions(self) -> frozenset[Condition]:
        return status_conditions(self.status) | self.extra

    @property
    def sync(self) -> bool:
        return bool(self.status & ST_SYNC)


@dataclass(frozen=True, slots=True)
class NoninRecord(Frame):
    """One format #8 record (display values, once a second)."""

    status: int
    hr_lsb: int
    spo2_raw: int
    status2: int

    @property
    def hr_raw(self) -> int:
        return hr9(self.status, self.hr_lsb)

    def conditions(self) -> frozenset[Condition]:
        s, s2 = self.status, self.status2
        c = set()
        if s & S8_SNSD:
            c.add(Condition.SENSOR_DISCONNECTED)
        if s & S8_OOT:
            c.add(Condition.OUT_OF_TRACK)
        if s & S8_LPRF:
            c.add(Condition.LOW_PERFUSION)
        if s & S8_MPRF:
            c.add(Condition.MARGINAL_PERFUSION)
        if s & S8_ARTF:
            c.add(Condition.ARTIFACT)
        if s2 & S2_SNSA:
            c.add(Condition.SENSOR_OFF)
        if s2 & S2_LOWBAT:
            c.add(Condition.LOW_BATTERY)
        return frozenset(c)

    def measurements(self) -> list[Measurement]:
        conds = self.conditions()
        hr, spo2 = hr_value(self.hr_raw), spo2_value(self.spo2_raw)
        held = Condition.SENSOR_OFF in conds
        out = []
        for metric, value in (("pulse_rate", hr), ("spo2", spo2)):
            flags = conds | {Condition.HELD} if held and value is not None else conds
            out.append(Measurement(metric, value, frozenset(flags)))
        return out


class NoninParser(Parser):
    def __init__(self, format: int = 2):
        super().__init__()
        fmt = int(format)
        if fmt not in FORMATS:
            raise ValueError(f"Nonin data format must be one of {FORMATS}, not {format!r}")
        self.format = fmt
        self.name = f"nonin{fmt}"
        self.waveform_rate = 75.0 if fmt in (2, 7) else None
        self._expect_reply = False
        self._reset_state()

    def expect_reply(self) -> None:
        """A set-format command was sent: the next ACK/NAK byte met while hunting is its answer."""
        self._expect_reply = True

    def _reset_state(self) -> None:
        self._synced = False
        self._index = 0
        self._float: dict[int, int] = {}
        self._packet_conds: set[Condition] = set()

    # -- #2 / #7 -------------------------------------------------------------------------------
    def _valid(self, b) -> bool:
        if checksum(b) != b[4]:
            return False
        if self.format == 2:
            return b[0] == 0x01 and bool(b[1] & ST_BIT7)
        return bool(b[0] & ST_BIT7)

    def _parse(self, buf: bytearray, out: list[Frame]) -> None:
        if self.format == 8:
            self._parse8(buf, out)
            return
        fmt2 = self.format == 2
        while len(buf) >= 1:
            if not self._synced and self._expect_reply and buf[0] in (ACK, NAK):
                if len(buf) < 5 or not self._valid(buf):
                    out.append(NoninReply(buf[0] == ACK))
                    self._expect_reply = False
                    del buf[:1]
                    continue
            if len(buf) < 5:
                return
            status = buf[1] if fmt2 else buf[0]
            ok = self._valid(buf)
            if not self._synced:
                if ok and status & ST_SYNC:
                    self._synced, self._index = True, 0
                else:
                    self._skip(buf, 1)
                    continue
            elif not ok or bool(status & ST_SYNC) != (self._index == 0):
                if ok and status & ST_SYNC:
                    self._index = 0  # a valid packet start where none was due: frames were lost
                else:
                    self._bad(buf, 1)
                    self._reset_state()
                    continue
            out.append(self._frame(buf, status, fmt2))
            del buf[:5]

    def _frame(self, b, status: int, fmt2: bool) -> NoninFrame:
        idx = self._index
        pleth = b[2] if fmt2 else (b[1] << 8) | b[2]
        fb = b[3] & 0x7F
        if idx == 0:
            self._float.clear()
            self._packet_conds.clear()
        self._float[idx] = fb
        self._packet_conds.update(status_conditions(status))
        self._index = (idx + 1) % FRAMES_PER_PACKET
        f = self._float
        values: tuple[Measurement, ...] = ()
        extra = NO_FLAGS
        display_spo2 = display_hr = None
        if idx == IDX_SPO2 and IDX_HR_MSB in f and IDX_HR_LSB in f:
            flags = frozenset(self._packet_conds)
            values = (Measurement("pulse_rate", hr_value(hr9(f[IDX_HR_MSB], f[IDX_HR_LSB])), flags),
                      Measurement("spo2", spo2_value(fb), flags))
        elif idx == IDX_STAT2 and fb & S2_LOWBAT:
            extra = frozenset({Condition.LOW_BATTERY})
        elif idx == IDX_SPO2_D:
            display_spo2 = spo2_value(fb)
        elif idx == IDX_HR_D_LSB and IDX_HR_D_MSB in f:
            display_hr = hr_value(hr9(f[IDX_HR_D_MSB], fb))
        return NoninFrame(idx, status, pleth, fb, values, extra, display_spo2, display_hr)

    # -- #8 ------------------------------------------------------------------------------------
    def _parse8(self, buf: bytearray, out: list[Frame]) -> None:
        while buf:
            b0 = buf[0]
            if not b0 & 0x80:
                if self._expect_reply and b0 in (ACK, NAK):
                    out.append(NoninReply(b0 == ACK))
                    self._expect_reply = False
                    del buf[:1]
                    continue
                self._synced = False
                self._skip(buf, 1)
                continue
            if len(buf) < 4:
                return
            if buf[1] & 0x80 or buf[2] & 0x80 or buf[3] & 0x80:
                # a record cut short by the next STATUS byte (or corrupted): drop up to that byte
                nxt = next(i for i in (1, 2, 3) if buf[i] & 0x80)
                self._synced = False
                self._bad(buf, nxt)
                continue
            if not self._synced:
                # no checksum in #8: sync needs two whole records each followed directly by a
                # STATUS byte (bytes 0, 4 and 8 with bit 7 set, the six between clear). #2 and #7
                # put a bit-7 byte every 5 bytes, so their frames can never pass for records.
                if len(buf) < 9:
                    return
                if not (buf[4] & 0x80 and buf[8] & 0x80) or any(buf[i] & 0x80 for i in (5, 6, 7)):
                    self._skip(buf, 1)
                    continue
                self._synced = True
            out.append(NoninRecord(buf[0], buf[1], buf[2], buf[3]))
            del buf[:4]
