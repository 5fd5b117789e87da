"""Nonin OEM serial formats #2, #7 and #8, and the set-format reply (device-protocols.md section 1).

9600 8N1. Formats #2 and #7: 75 five-byte frames per second, 25 frames per packet, one pleth sample
per frame, each frame checksummed (sum of the first four bytes mod 256). The FLOAT byte means
something different in each frame of the packet, and nothing in a frame says which frame it is but
the SYNC bit of frame 1. So a FLOAT byte's meaning is only known once the frame's place is proven:
the parser keeps a packet's FLOAT bytes and sends its values on only when the next packet starts
exactly where it should, 25 frames (125 bytes) after the packet's own SYNC frame.

- On a clean line that is the frame after the 25th, which must carry SYNC; it (``index`` 0 of the
  next packet) carries the finished packet's values. A SYNC arriving early means frames were lost:
  the pending values are discarded and one bad frame counted. (Checking at the 25th frame alone
  is not enough: a lost frame *and* a lost SYNC frame leave 25 frames that end without SYNC and
  hold the wrong bytes in frames 6-25.)
- A frame that fails its checksum is counted and the parser hunts for the next packet start. If
  that start lies exactly 125 bytes after the damaged packet's, no byte was lost or added in
  between (line noise replaces bytes; a lost byte or frame moves the start), so the frames decoded
  before the damage sat at their places and their values hold: HR and SpO2 if frames 1-3 were
  among them, STAT2 if frame 8, the display values if frames 9 and 20-21. Because five bytes found
  by hunting can pass for a SYNC frame by chance (about 1 in a few thousand), such a start must be
  followed by two more good frames; the values then ride on its frame 3. At 1 % byte noise this
  keeps values for about 3 packets in 4, where demanding 26 clean frames would keep 1 in 5.
- What counting cannot see: frames lost in two runs that together make exactly 25 within one
  packet's span leave both SYNCs in place and the frames between misplaced.

Pleth samples go out frame by frame (each frame is checksummed and needs no position).

Values sent per packet (3 a second): the *recording* HR (frames 1-2) and SpO2 (frame 3), which go
missing at once when the finger is removed — a monitor must not show a held number as fresh —
flagged with the conditions of all 25 STATUS bytes and of STAT2 (frame 8: bit 0 low battery,
bit 5 SmartPoint); the *display* values (frames 9 and 20-21, held 10 s after removal) ride on the
frame as ``display_spo2``/``display_hr`` for diagnostics. The cost of waiting for the proof is
latency: a value goes out 23 frames (0.31 s, under 1/3 s) later than its frame 3 arrived (25
frames, 1/3 s, for a damaged packet).
A packet whose HR (351..510) or SpO2 (101..126) is encodable but impossible is one bad frame: its
values are dropped, its pleth samples kept.

HR is 9 bits: ``((MSB & 0x03) << 7) | (LSB & 0x7F)`` (shifting by 8 is a known bug). Missing:
HR 511, SpO2 127.

Sync (reference rule): a frame is accepted as a packet start only if its checksum holds *and*
its STATUS has bit 7 and the SYNC bit set (and, in #2, its first byte is 0x01); never on bit 7
alone. While synced, every frame must hold its checksum and have SYNC set exactly on frame 1 of a
packet; a frame that fails is counted as bad and the parser hunts for the next packet start.

Format #8: a 4-byte record per second of display values, no checksum. STATUS is the only byte with
bit 7 set, so a record is STATUS followed by three bytes with bit 7 clear. The first sync on a
connection is strict: two records must follow each other and be followed by a third STATUS byte;
this keeps another format's bytes (#2/#7 at the wrong setting) from ever being read as records.
The two confirming records are one and two seconds old by then, so they are dropped (counted as
skipped) rather than stamped as fresh: the first value is the record whose STATUS completed the
check, decoded as soon as its bytes are in (about 3 s after connecting at worst; the driver's
silence watch allows for it). Once #8 is confirmed on the connection, a bad record costs only
itself: the next well-formed record (STATUS and three bytes with bit 7 clear) resyncs. Values are
display values: with the sensor-alarm bit set they are the device's hold, flagged HELD.

The set-format command ``02 70 02 02 <fmt> 03`` is answered with ACK 0x06 or NAK 0x15. After
``expect_reply()`` such a byte is taken for the answer only where it stands between units: it is
not the checksum of the four bytes before it (nor, in #8, the last byte of a record) and the bytes
after it start a valid #2/#7 frame or a #8 record (in whatever format the device speaks, so a NAK
from a device left in another format is still seen). A data byte of the same value is not.
"""

from __future__ import annotations

from dataclasses import dataclass

from ketmonitor.metrics import METRICS
from ketmonitor.samples import NO_FLAGS, Condition

from .base import Frame, Measurement, Parser, value_ok

ACK, NAK = 0x06, 0x15
FORMATS = (2, 7, 8)
HR_MISSING, SPO2_MISSING = 511, 127
FRAMES_PER_PACKET = 25
PACKET_BYTES = 5 * FRAMES_PER_PACKET

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

_HR_MAX = METRICS["pulse_rate"].high
_SPO2_MAX = METRICS["spo2"].high


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


def _named(value: int, names: tuple[tuple[int, Condition], ...]) -> set[Condition]:
    """The conditions whose bit is set in ``value``."""
    return {c for bit, c in names if value & bit}


# what each bit means: #2/#7 STATUS (perfusion aside), #8 STATUS, #8 STATUS2
_STATUS_NAMES = ((ST_SNSD, Condition.SENSOR_DISCONNECTED), (ST_ARTF, Condition.ARTIFACT),
                 (ST_OOT, Condition.OUT_OF_TRACK), (ST_SNSA, Condition.SENSOR_OFF))
_S8_NAMES = ((S8_SNSD, Condition.SENSOR_DISCONNECTED), (S8_OOT, Condition.OUT_OF_TRACK),
             (S8_LPRF, Condition.LOW_PERFUSION), (S8_MPRF, Condition.MARGINAL_PERFUSION),
             (S8_ARTF, Condition.ARTIFACT))
_S2_NAMES = ((S2_SNSA, Condition.SENSOR_OFF), (S2_SPA, Condition.SMARTPOINT),
             (S2_LOWBAT, Condition.LOW_BATTERY))


def _status_conditions(status: int) -> frozenset[Condition]:
    c = _named(status, _STATUS_NAMES)
    red, green = status & ST_RPRF, status & ST_GPRF  # perfusion: one colour of two bits
    if red and green:
        c.add(Condition.MARGINAL_PERFUSION)  # yellow
    elif red:
        c.add(Condition.LOW_PERFUSION)
    return frozenset(c) if c else NO_FLAGS


# one shared frozenset per STATUS value: a frame's conditions are a table lookup
_STATUS_CONDITIONS: tuple[frozenset[Condition], ...] = tuple(_status_conditions(s)
                                                             for s in range(256))


def status_conditions(status: int) -> frozenset[Condition]:
    """Conditions named by a #2/#7 STATUS byte."""
    return _STATUS_CONDITIONS[status & 0xFF]


def stat2_conditions(stat2: int) -> frozenset[Condition]:
    """Conditions named by STAT2 (frame 8 of a #2/#7 packet): low battery, SmartPoint."""
    return _STAT2_CONDITIONS[(stat2 & S2_LOWBAT) | ((stat2 & S2_SPA) >> 4)]


_STAT2_CONDITIONS = (NO_FLAGS, frozenset({Condition.LOW_BATTERY}), frozenset({Condition.SMARTPOINT}),
                     frozenset({Condition.LOW_BATTERY, Condition.SMARTPOINT}))


def _frame_ok(b0: int, b1: int, b2: int, b3: int, b4: int) -> bool:
    """Five bytes form a valid #2 or #7 frame (checksum, bit 7 where due)."""
    if (b0 + b1 + b2 + b3) & 0xFF != b4:
        return False
    return bool(b1 & 0x80) if b0 == 0x01 else bool(b0 & 0x80)


def _record_shape(b: bytes | bytearray) -> bool:
    """Four bytes look like a #8 record: STATUS with bit 7, three bytes without."""
    return bool(b[0] & 0x80) and not (b[1] | b[2] | b[3]) & 0x80


@dataclass(frozen=True, slots=True)
class NoninReply(Frame):
    """The device's answer to a set-format command."""

    ack: bool
    is_data = False  # proves the device is there, not that its data decodes

    def conditions(self) -> frozenset[Condition]:
        return NO_FLAGS


# A #2/#7 frame is the hottest object in the Nonin path (75 a second per device, 270,000 in an
# hour's ingest): a plain slotted dataclass, as a frozen one's __init__ costs about six times
# more. Nothing changes a frame once the parser has returned it.
@dataclass(slots=True)
class NoninFrame(Frame):
    """One #2/#7 frame: a pleth sample and its STATUS; the frame that proves a packet's place
    (``index`` 0 after a whole packet, ``index`` 2 after a damaged one) also carries that packet's
    values, STAT2 conditions and display values."""

    index: int  # 0-based position in the packet
    status: int
    pleth: int
    float_byte: int
    values: tuple[Measurement, ...] = ()  # the previous packet's, once it is known whole
    extra: frozenset[Condition] = NO_FLAGS  # from that packet's STAT2 (low battery, SmartPoint)
    display_spo2: float | None = None
    display_hr: float | None = None

    def measurements(self) -> list[Measurement]:
        return list(self.values)

    def waveform(self) -> list[int]:
        return [self.pleth]

    def conditions(self) -> frozenset[Condition]:
        if self.extra:
            return _STATUS_CONDITIONS[self.status] | self.extra
        return _STATUS_CONDITIONS[self.status]

    def values_in_range(self) -> bool:
        # (the parser has already dropped impossible packet values, keeping the pleth: _finish)
        for m in self.values:  # empty on 24 frames of 25
            if not value_ok(m.metric, m.value):
                return False
        return True  # pleth: one byte (#2) or two (#7), inside the pleth range by construction

    @property
    def sync(self) -> bool:
        return bool(self.status & ST_SYNC)


def _record_conditions(status: int, status2: int) -> frozenset[Condition]:
    return frozenset(_named(status, _S8_NAMES) | _named(status2, _S2_NAMES))


_S8_BITS = S8_SNSD | S8_OOT | S8_LPRF | S8_MPRF | S8_ARTF  # 0x7C
_S2_BITS = S2_SNSA | S2_SPA | S2_LOWBAT  # 0x29
# conditions of a #8 record by its STATUS and STATUS2 bits, made once: (status & 0x7C) >> 2 is
# 0..31, status2 & 0x29 packs into 0..7 as (bit 0, bit 3, bit 5) -> (1, 2, 4)
_RECORD_CONDITIONS = tuple(
    _record_conditions(hi << 2, (lo & 1) | (lo & 2) << 2 | (lo & 4) << 3)
    for hi in range(32) for lo in range(8))


def _s2_index(status2: int) -> int:
    return (status2 & 1) | (status2 & 8) >> 2 | (status2 & 0x20) >> 3


@dataclass(slots=True)
class NoninRecord(Frame):
    """One format #8 record (display values, once a second). A plain slotted dataclass, as a
    frozen one costs several times more to build; nothing changes it once returned."""

    status: int
    hr_lsb: int
    spo2_raw: int
    status2: int

    @property
    def hr_raw(self) -> int:
        return hr9(self.status, self.hr_lsb)

    def conditions(self) -> frozenset[Condition]:
        return _RECORD_CONDITIONS[((self.status & _S8_BITS) >> 2) * 8 + _s2_index(self.status2)]

    def measurements(self) -> list[Measurement]:
        conds = self.conditions()
        hr, spo2 = hr_value(self.hr_raw), spo2_value(self.spo2_raw)
        held = Condition.SENSOR_OFF in conds
        out = []
        for metric, value in (("pulse_rate", hr), ("spo2", spo2)):
            flags = conds | {Condition.HELD} if held and value is not None else conds
            out.append(Measurement(metric, value, frozenset(flags)))
        return out

    def values_in_range(self) -> bool:
        # the base's check on the raw fields (no Measurements built): missing, or within range
        hr = hr9(self.status, self.hr_lsb)
        spo2 = self.spo2_raw & 0x7F
        return ((hr == HR_MISSING or hr <= _HR_MAX)
                and (spo2 == SPO2_MISSING or spo2 <= _SPO2_MAX))


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
        self._confirmed8 = False  # format #8 proven on this connection (strict sync passed)
        self._tail = b""  # the last bytes consumed before the buffer's start (reply detection)
        self._pos = 0  # stream offset of the buffer's first byte (#2/#7 packet positions)
        self._reset_state()

    def expect_reply(self) -> None:
        """A set-format command was sent: the next ACK/NAK byte standing between units is its
        answer."""
        self._expect_reply = True
        self._tail = b""  # kept from now on, while the answer is awaited

    def reset(self) -> None:
        super().reset()
        self._confirmed8 = False  # a new connection proves its format again
        self._tail = b""

    def _reset_state(self) -> None:
        self._synced = False
        self._index = 0  # position of the next frame in its packet
        self._float = [0] * FRAMES_PER_PACKET  # the packet's FLOAT bytes
        self._conds: set[frozenset[Condition]] = set()  # its STATUS conditions, distinct sets
        self._pkt_at: int | None = None  # stream offset of the pending packet's SYNC frame
        self._have = 0  # frames of it decoded in order from its SYNC frame
        self._held = None  # a damaged packet's values, until two more frames prove the start

    # -- set-format reply ----------------------------------------------------------------------
    def _reply_at(self, buf: bytearray, i: int) -> bool | None:
        """Is ``buf[i]`` (0x06 or 0x15) the answer to set-format? None: too few bytes to say."""
        after = buf[i + 1:i + 6]
        if len(after) >= 4 and _record_shape(after):
            starts = True  # a #8 record follows
        elif len(after) == 5:
            starts = _frame_ok(*after)  # a #2 or #7 frame follows
        else:
            return None
        if not starts:
            return False
        before = (self._tail + bytes(buf[max(0, i - 4):i]))[-4:]
        if len(before) == 4 and _frame_ok(*before, buf[i]):
            return False  # it is the checksum of the frame that ends here
        if (self.format == 8 and len(before) >= 3 and before[-3] & 0x80
                and not (before[-2] | before[-1]) & 0x80
                and (len(before) < 4 or not before[0] & 0x80)):
            return False  # it is the STATUS2 of the record that ends here
        return True

    def _take_reply(self, buf: bytearray, i: int, out: list[Frame]) -> bool | None:
        got = self._reply_at(buf, i)
        if got:
            out.append(NoninReply(buf[i] == ACK))
            self._expect_reply = False
        return got

    # -- #2 / #7 -------------------------------------------------------------------------------
    def _parse(self, buf: bytearray, out: list[Frame]) -> None:
        if self.format == 8:
            i = self._parse8(buf, out)
        else:
            i = self._parse27(buf, out)
        if i:
            self._pos += i
            if self._expect_reply:  # what came before a possible reply (see _reply_at)
                self._tail = (self._tail + bytes(buf[max(0, i - 4):i]))[-4:]
            del buf[:i]

    def _parse27(self, buf: bytearray, out: list[Frame]) -> int:
        fmt2 = self.format == 2
        n = len(buf)
        i = 0
        append = out.append
        fl = self._float
        conds = self._conds
        while i < n:
            b0 = buf[i]
            if self._expect_reply and (b0 == ACK or b0 == NAK):
                got = self._take_reply(buf, i, out)
                if got is None:
                    break
                if got:
                    i += 1
                    continue
            if n - i < 5:
                break
            b1, b2, b3, b4 = buf[i + 1], buf[i + 2], buf[i + 3], buf[i + 4]
            if fmt2:
                status = b1
                ok = b0 == 0x01 and b1 & 0x80 and (b0 + b1 + b2 + b3) & 0xFF == b4
            else:
                status = b0
                ok = b0 & 0x80 and (b0 + b1 + b2 + b3) & 0xFF == b4
            idx = self._index
            if not self._synced:
                if not (ok and status & ST_SYNC):
                    self.skipped_bytes += 1
                    i += 1
                    continue
                # a packet start, found by hunting. If it lies exactly one packet after the
                # pending packet's start, no byte was lost or added in between: the frames
                # decoded before the damage sat at their places, and their values hold
                at = self._pkt_at
                if at is not None and self._pos + i - at == PACKET_BYTES:
                    # ... provided this is a real packet start, not five bytes that pass for
                    # one by chance (1 in a few thousand): the next two frames must follow it
                    self._held = self._packet_values()
                confirm = False
                self._synced, idx = True, 0
            elif not ok:
                # checksum or grammar: counted, a byte dropped, and hunt for the next packet
                # start; the pending packet is kept for that start to confirm or refute
                self.bad_frames += 1
                self._synced = False
                self._held = None  # a start it held for is not proven
                i += 1
                continue
            elif status & ST_SYNC:
                confirm = not idx
                if idx:  # a packet start where none was due: frames were lost
                    self.bad_frames += 1
                    self._held = None
                    idx = 0
            elif not idx:  # no SYNC where one was due: frames were lost, position unknown
                self.bad_frames += 1
                i += 1
                self._reset_state()
                fl, conds = self._float, self._conds
                continue
            fb = b3 & 0x7F
            if idx:
                fl[idx] = fb
                conds.add(_STATUS_CONDITIONS[status])
                self._have = idx + 1
                self._index = idx + 1 if idx < FRAMES_PER_PACKET - 1 else 0
                held = self._held
                if held is not None and idx == 2:  # the start is proven: the held values go
                    self._held = None
                    append(NoninFrame(idx, status, b2 if fmt2 else (b1 << 8) | b2, fb, *held))
                else:
                    append(NoninFrame(idx, status, b2 if fmt2 else (b1 << 8) | b2, fb))
            else:
                pleth = b2 if fmt2 else (b1 << 8) | b2
                frame = (self._finish(status, pleth, fb) if confirm else
                         NoninFrame(0, status, pleth, fb))
                fl[0] = fb
                conds.clear()
                conds.add(_STATUS_CONDITIONS[status])
                self._pkt_at, self._have, self._index = self._pos + i, 1, 1
                append(frame)
            i += 5
        return i

    def _finish(self, status: int, pleth: int, fb: int) -> NoninFrame:
        """The SYNC frame that closes a whole packet: it carries that packet's values."""
        got = self._packet_values()
        return NoninFrame(0, status, pleth, fb, *got) if got else NoninFrame(0, status, pleth, fb)

    def _packet_values(self):
        """The pending packet's (values, STAT2 conditions, display SpO2, display HR), from the
        frames decoded in order before any damage (all 25 on a clean line); None if it has none."""
        f, have = self._float, self._have
        if have <= IDX_SPO2:
            return None  # damaged before SpO2: nothing to send
        hr_raw = hr9(f[IDX_HR_MSB], f[IDX_HR_LSB])
        spo2_raw = f[IDX_SPO2]
        if (hr_raw != HR_MISSING and hr_raw > _HR_MAX) or (
                spo2_raw != SPO2_MISSING and spo2_raw > _SPO2_MAX):
            self.bad_frames += 1  # encodable but impossible: the packet's values are dropped
            return None
        extra = stat2_conditions(f[IDX_STAT2]) if have > IDX_STAT2 else NO_FLAGS
        flags = frozenset().union(*self._conds, extra)
        values = (Measurement("pulse_rate", hr_value(hr_raw), flags),
                  Measurement("spo2", spo2_value(spo2_raw), flags))
        return (values, extra, spo2_value(f[IDX_SPO2_D]) if have > IDX_SPO2_D else None,
                hr_value(hr9(f[IDX_HR_D_MSB], f[IDX_HR_D_LSB])) if have > IDX_HR_D_LSB else None)

    # -- #8 ------------------------------------------------------------------------------------
    def _parse8(self, buf: bytearray, out: list[Frame]) -> int:
        n = len(buf)
        i = 0
        while i < n:
            b0 = buf[i]
            if not b0 & 0x80:
                if self._expect_reply and (b0 == ACK or b0 == NAK):
                    got = self._take_reply(buf, i, out)
                    if got is None:
                        break
                    if got:
                        i += 1
                        continue
                self._synced = False
                self.skipped_bytes += 1
                i += 1
                continue
            if n - i < 4:
                break
            b1, b2, b3 = buf[i + 1], buf[i + 2], buf[i + 3]
            if (b1 | b2 | b3) & 0x80:
                # a record cut short by the next STATUS byte (or corrupted): drop up to that byte
                self._synced = False
                self.bad_frames += 1
                i += 1 if b1 & 0x80 else 2 if b2 & 0x80 else 3
                continue
            if not self._synced:
                if not self._confirmed8:
                    # no checksum in #8: the first sync needs two whole records each followed
                    # directly by a STATUS byte (bytes 0, 4 and 8 with bit 7 set, the six between
                    # clear). #2 and #7 put a bit-7 byte every 5 bytes, so their frames can never
                    # pass for records.
                    if n - i < 9:
                        break
                    if not (buf[i + 4] & 0x80 and buf[i + 8] & 0x80) or (
                            buf[i + 5] | buf[i + 6] | buf[i + 7]) & 0x80:
                        self.skipped_bytes += 1
                        i += 1
                        continue
                    # the two confirming records are 1-2 s old now: not sent as fresh values
                    self._synced = self._confirmed8 = True
                    self.skipped_bytes += 8
                    i += 8
                    continue
                self._synced = True  # #8 proven on this connection: one whole record resyncs
            out.append(NoninRecord(b0, b1, b2, b3))
            i += 4
        return i
