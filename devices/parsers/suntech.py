"""SunTech Advantage OEM NIBP module, binary protocol (device-protocols.md section 4), 9600 8N1.

Host -> module frames are ``3A <command bytes> <cs>``; module -> host frames are ``3E <LEN> <data>
<cs>`` with LEN counting every byte of the frame. In both directions all bytes of a frame sum to 0
mod 256. A frame whose sum is not 0 is counted as bad and dropped; the parser then looks for the
next 0x3E after the bad frame's first byte, so one corrupted byte costs one frame.

``SuntechParser`` reads the module's replies (status, cuff pressure, BP data);
``SuntechCommandParser`` reads host commands (the emulator's side). Error codes are DECIMAL (85 is
0x55, not 0x85).

A BP-data frame with error code 0 says "here is a reading", and the checksum only proves the bytes
arrived as sent: what the module sends when it holds no result (an all-zero frame) passes it too.
So an error-0 result must be physiologically consistent to become values: every number above 0 and
inside its metric's range, diastolic < systolic, diastolic <= mean <= systolic. One that is not is
a bad frame (counted, never values), handed on as ``SuntechBadResult`` so the driver can end the
measurement as failed at once instead of waiting for a result that will never come.
"""

from __future__ import annotations

from dataclasses import dataclass

from ketmonitor.metrics import METRICS
from ketmonitor.samples import Condition

from .base import Frame, Measurement, Parser

BAUD = 9600
_CUFF = METRICS["cuff_pressure"]
HOST_START = 0x3A
MODULE_START = 0x3E


def checksum(body: bytes | bytearray | list[int]) -> int:
    """The byte that makes the whole frame sum to 0 mod 256."""
    return (-sum(body)) & 0xFF


def _frame(start: int, body) -> bytes:
    head = bytes((start, *body))
    return head + bytes((checksum(head),))


# -- host commands ---------------------------------------------------------------------------------
def command_frame(*body: int) -> bytes:
    return _frame(HOST_START, body)


START_ADULT = command_frame(0x20)  # 3A 20 A6
START_PEDIATRIC = command_frame(0x87)  # 3A 87 3F
START_NEONATE = command_frame(0x28)  # 3A 28 9E
ABORT = command_frame(0x79, 0x01, 0x00)  # 3A 79 01 00 4C
GET_BP_DATA = command_frame(0x79, 0x03, 0x00)  # 3A 79 03 00 4A
GET_CUFF_PRESSURE = command_frame(0x79, 0x05, 0x00)  # 3A 79 05 00 48
RESET = command_frame(0x8A)  # 3A 8A 3C

START_COMMANDS = {"adult": START_ADULT, "pediatric": START_PEDIATRIC, "neonate": START_NEONATE}


def set_initial_inflate(mmhg: int) -> bytes:
    """``3A 17 <lo> <hi> <cs>``: the pressure the next measurement first inflates to."""
    mmhg = int(mmhg)
    if not 0 <= mmhg <= 0xFFFF:
        raise ValueError(f"initial inflate pressure must be 0..65535 mmHg, got {mmhg}")
    return command_frame(0x17, mmhg & 0xFF, mmhg >> 8)


# command byte -> number of command bytes after 3A (checksum excluded)
COMMAND_LENGTHS = {0x20: 1, 0x87: 1, 0x28: 1, 0x8A: 1, 0x79: 3, 0x17: 3}
SUBCOMMANDS_79 = {0x01: "abort", 0x03: "get_bp_data", 0x05: "get_cuff_pressure"}
_SIMPLE = {0x20: "start_adult", 0x87: "start_pediatric", 0x28: "start_neonate", 0x8A: "reset"}
_MAX_UNKNOWN = 16


@dataclass(frozen=True, slots=True)
class SuntechCommand(Frame):
    """A host command as the module sees it.

    ``name`` is one of start_adult, start_pediatric, start_neonate, reset, abort, get_bp_data,
    get_cuff_pressure, set_initial_inflate; "unknown" (module answers 'D') or "bad" (checksum or
    parameter wrong; module answers 'N').
    """

    name: str
    body: bytes
    value: int | None = None  # set_initial_inflate: mmHg

    def measurements(self) -> list[Measurement]:
        return []


class SuntechCommandParser(Parser):
    """Incremental parser of the host -> module byte stream (what the emulator reads)."""

    name = "suntech-host"

    def _parse(self, buf: bytearray, out: list[Frame]) -> None:
        n = len(buf)
        i = 0
        while i < n:
            if buf[i] != HOST_START:
                j = buf.find(HOST_START, i)
                j = n if j < 0 else j
                self.skipped_bytes += j - i
                i = j
                continue
            if i + 1 >= n:
                break
            length = COMMAND_LENGTHS.get(buf[i + 1])
            if length is None:  # unknown command: the frame ends where the running sum reaches 0
                total, end = HOST_START, -1
                for k in range(i + 1, min(n, i + _MAX_UNKNOWN)):
                    total += buf[k]
                    if total & 0xFF == 0:
                        end = k + 1
                        break
                if end < 0:
                    if n - i < _MAX_UNKNOWN:
                        break  # may still complete
                    self.skipped_bytes += 1
                    i += 1
                    continue
                out.append(SuntechCommand("unknown", bytes(buf[i + 1:end - 1])))
                i = end
                continue
            end = i + 2 + length
            if end > n:
                break
            frame = bytes(buf[i:end])
            if sum(frame) & 0xFF:
                # counted as bad, yet handed on as "bad": the module must answer it with 'N'
                self._hand_on_bad(out, SuntechCommand("bad", frame[1:-1]))
            else:
                out.append(self._decode(frame[1:-1]))
            i = end
        del buf[:i]

    @staticmethod
    def _decode(body: bytes) -> SuntechCommand:
        cmd = body[0]
        if cmd in _SIMPLE:
            return SuntechCommand(_SIMPLE[cmd], body)
        if cmd == 0x79:
            name = SUBCOMMANDS_79.get(body[1]) if body[2] == 0 else None
            return SuntechCommand(name or "unknown", body)
        if cmd == 0x17:
            return SuntechCommand("set_initial_inflate", body, body[1] | (body[2] << 8))
        return SuntechCommand("unknown", body)  # pragma: no cover - COMMAND_LENGTHS covers all


# -- module replies --------------------------------------------------------------------------------
STATUS_MEANINGS = {
    "O": "command received",
    "K": "measurement complete",
    "A": "abort acknowledged",
    "B": "busy",
    "E": "error",
    "N": "bad packet or parameter",
    "D": "unknown command",
    "T": "timeout",
    "R": "reset",
}

ERROR_MEANINGS = {
    0: "ok",
    1: "weak or no signal",
    2: "erratic signal or artifact",
    3: "out of range",
    4: "measurement timeout",
    85: "pneumatic blockage",
    86: "stopped by user",
    87: "inflate timeout, leak or loose cuff",
    88: "safety timeout",
    89: "cuff over-pressure",
    90: "power or hardware fault",
    97: "transducer out of range",
    99: "calibration memory failure",
}

LEN_STATUS = 4
LEN_CUFF = 5
LEN_BP = 24
_KNOWN_LENGTHS = (LEN_STATUS, LEN_CUFF, LEN_BP)


def error_meaning(code: int) -> str:
    return ERROR_MEANINGS.get(code, f"unknown error code {code}")


def status_frame(code: str) -> bytes:
    if code not in STATUS_MEANINGS:
        raise ValueError(f"unknown SunTech status {code!r}")
    return _frame(MODULE_START, (LEN_STATUS, ord(code)))


def cuff_pressure_frame(mmhg: int) -> bytes:
    mmhg = max(0, min(0xFFFF, int(mmhg)))
    return _frame(MODULE_START, (LEN_CUFF, mmhg & 0xFF, mmhg >> 8))


def bp_data_frame(systolic: int, diastolic: int, mean: int, pulse_rate: int, *,
                  error_code: int = 0, result_status: int = 0) -> bytes:
    """24 bytes: 3E 18, 21 data bytes, checksum; offsets as the reference gives them."""
    f = bytearray(LEN_BP)
    f[0], f[1] = MODULE_START, LEN_BP
    for off, v in ((2, systolic), (4, diastolic), (16, pulse_rate), (18, mean)):
        v = int(v) & 0xFFFF
        f[off], f[off + 1] = v & 0xFF, v >> 8
    f[7] = result_status & 0xFF
    f[20] = error_code & 0xFF
    f[23] = checksum(f[:23])
    return bytes(f)


@dataclass(frozen=True, slots=True)
class SuntechStatus(Frame):
    code: str

    @property
    def meaning(self) -> str:
        return STATUS_MEANINGS[self.code]

    def measurements(self) -> list[Measurement]:
        return []

    def values_in_range(self) -> bool:
        return True  # carries no value


@dataclass(frozen=True, slots=True)
class SuntechCuffPressure(Frame):
    mmhg: int

    def measurements(self) -> list[Measurement]:
        return [Measurement("cuff_pressure", self.mmhg, frozenset())]

    def values_in_range(self) -> bool:
        return _CUFF.low <= self.mmhg <= _CUFF.high  # the base's check, no Measurement built


@dataclass(frozen=True, slots=True)
class SuntechBpData(Frame):
    systolic: int
    diastolic: int
    mean: int
    pulse_rate: int
    result_status: int
    error_code: int

    @property
    def failed(self) -> bool:
        return self.error_code != 0

    @property
    def error_meaning(self) -> str:
        return error_meaning(self.error_code)

    def measurements(self) -> list[Measurement]:
        if self.failed:
            return [Measurement("nibp_error", self.error_code, frozenset({Condition.NIBP_FAILED}),
                                self.error_meaning)]
        return [
            Measurement("nibp_systolic", self.systolic, frozenset()),
            Measurement("nibp_diastolic", self.diastolic, frozenset()),
            Measurement("nibp_mean", self.mean, frozenset()),
            Measurement("nibp_pulse_rate", self.pulse_rate, frozenset()),
        ]


_PRESSURE_MAX = METRICS["nibp_systolic"].high
_PULSE_MAX = METRICS["nibp_pulse_rate"].high


def implausible(systolic: int, diastolic: int, mean: int, pulse_rate: int) -> str | None:
    """Why an error-0 result is no reading, or None if it is physiologically consistent."""
    if not (systolic and diastolic and mean and pulse_rate):
        return "a value of 0"
    if max(systolic, diastolic, mean) > _PRESSURE_MAX or pulse_rate > _PULSE_MAX:
        return "a value out of range"
    if not diastolic < systolic:
        return "diastolic not below systolic"
    if not diastolic <= mean <= systolic:
        return "mean not between diastolic and systolic"
    return None


@dataclass(frozen=True, slots=True)
class SuntechBadResult(Frame):
    """A BP-data frame with error code 0 that is no reading (all zeros, diastolic above systolic):
    counted as a bad frame and handed on without values, so the driver fails the measurement."""

    systolic: int
    diastolic: int
    mean: int
    pulse_rate: int
    reason: str

    def describe(self) -> str:
        return (f"{self.systolic}/{self.diastolic} mmHg, mean {self.mean}, pulse "
                f"{self.pulse_rate}: {self.reason}")


def _decode_reply(f: bytes | bytearray):
    """A checksum-valid reply -> frame, or None for a status code the reference does not list."""
    length = f[1]
    if length == LEN_STATUS:
        code = chr(f[2])
        return SuntechStatus(code) if code in STATUS_MEANINGS else None
    if length == LEN_CUFF:
        return SuntechCuffPressure(f[2] | (f[3] << 8))  # above 350 mmHg: dropped by the base
    return SuntechBpData(systolic=f[2] | (f[3] << 8), diastolic=f[4] | (f[5] << 8),
                         mean=f[18] | (f[19] << 8), pulse_rate=f[16] | (f[17] << 8),
                         result_status=f[7], error_code=f[20])


class SuntechParser(Parser):
    """Incremental parser of the module -> host byte stream."""

    name = "suntech"

    def _parse(self, buf: bytearray, out: list[Frame]) -> None:
        n = len(buf)
        i = 0
        while i < n:
            if buf[i] != MODULE_START:
                j = buf.find(MODULE_START, i)
                j = n if j < 0 else j
                self.skipped_bytes += j - i
                i = j
                continue
            if i + 1 >= n:
                break
            length = buf[i + 1]
            if length not in _KNOWN_LENGTHS:  # a 3E that does not start a frame
                self.skipped_bytes += 1
                i += 1
                continue
            end = i + length
            if end > n:
                break
            f = buf[i:end]
            if sum(f) & 0xFF:
                # dropped; resync from the next byte, in case this 3E was not a frame start
                self.bad_frames += 1
                i += 1
                continue
            frame = _decode_reply(f)
            if frame is None:
                self.bad_frames += 1
            elif type(frame) is SuntechBpData and not frame.error_code and (why := implausible(
                    frame.systolic, frame.diastolic, frame.mean, frame.pulse_rate)):
                self._hand_on_bad(out, SuntechBadResult(frame.systolic, frame.diastolic,
                                                        frame.mean, frame.pulse_rate, why))
            else:
                out.append(frame)
            i = end
        del buf[:i]
