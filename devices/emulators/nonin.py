"""A Nonin OEM module (9560 Onyx II / OEM III style) speaking formats #2, #7 or #8 on a pty.

Byte-exact frames at the real rate (75 frames/s for #2/#7, one record/s for #8). The set-format
command ``02 70 02 02 <fmt> 03`` is answered ACK (0x06) and obeyed within the first 5 s after the
port appears, NAK (0x15) otherwise or for a format it does not speak; the choice is kept across
unplugging, as in the 9560's memory. Recording values follow the patient at once; display values
update every 1.5 s and hold the last reading for 10 s after the finger is removed (with the
sensor-alarm bit), then go missing.
"""

from __future__ import annotations

from devices.parsers.nonin import (ACK, FRAMES_PER_PACKET, HR_MISSING, NAK, S2_LOWBAT, S2_SNSA,
                                   S2_SPA, SPO2_MISSING, ST_BIT7, ST_GPRF, ST_RPRF, ST_SNSA, ST_SYNC)

from .base import Emulator

_SET_FORMAT = bytes((0x02, 0x70, 0x02, 0x02))
FIRMWARE_REVISION = 0x2A


class NoninEmulator(Emulator):
    protocol = "nonin"
    baudrate = 9600
    format_window = 5.0  # seconds after connection in which the format can be changed
    display_period = 1.5
    display_hold = 10.0

    def __init__(self, scenario: str = "uneventful", seed: int = 0, *, format: int = 2,
                 low_battery: bool = False, **kw):
        super().__init__(scenario, seed, **kw)
        self.format = 2
        self._set_format(int(format))
        self.low_battery = low_battery
        self._k = 0  # frame counter within the stream
        self._packet: dict[int, int] = {}
        self._status_flags = 0
        self._display = (HR_MISSING, SPO2_MISSING)
        self._display_next = 0.0
        self._removed_at: float | None = None
        self._perf_hold = 0
        self._last_phase = 0.0
        self._inbuf = bytearray()
        self.replies: list[int] = []

    def _set_format(self, fmt: int) -> None:
        if fmt not in (2, 7, 8):
            raise ValueError(f"the emulator speaks Nonin formats 2, 7 and 8, not {fmt!r}")
        self.format = fmt
        self.interval = 1.0 / 75.0 if fmt in (2, 7) else 1.0
        self._k = 0

    # -- host commands -------------------------------------------------------------------------
    def handle_input(self, data: bytes) -> None:
        self._inbuf += data
        while True:
            i = self._inbuf.find(_SET_FORMAT)
            if i < 0:
                del self._inbuf[:-3]  # keep a possible partial command
                return
            if len(self._inbuf) < i + 6:
                del self._inbuf[:i]
                return
            fmt, end = self._inbuf[i + 4], self._inbuf[i + 5]
            del self._inbuf[:i + 6]
            if end != 0x03:
                continue  # not a command: the real module ignores it
            in_window = self.sim_time() - self.plug_time <= self.format_window
            if in_window and fmt in (2, 7, 8):
                self._set_format(fmt)
                self.replies.append(ACK)
                self.reply(bytes((ACK,)))
            else:
                self.replies.append(NAK)
                self.reply(bytes((NAK,)))

    # -- values --------------------------------------------------------------------------------
    def _recording(self, t: float) -> tuple[int, int, bool, float | None]:
        v = self.patient.vitals(t)
        if v.probe_off or v.pulse_rate is None:
            return HR_MISSING, SPO2_MISSING, True, None
        hr = max(0, min(350, round(v.pulse_rate)))
        spo2 = max(0, min(100, round(v.spo2)))
        return hr, spo2, False, v.perfusion_index

    def _update_display(self, t: float, hr: int, spo2: int, off: bool) -> bool:
        """Display values and whether the sensor alarm applies to them."""
        if off:
            if self._removed_at is None:
                self._removed_at = t
            if t - self._removed_at > self.display_hold:
                self._display = (HR_MISSING, SPO2_MISSING)
            return True
        self._removed_at = None
        if t >= self._display_next:
            self._display = (hr, spo2)
            self._display_next = t + self.display_period
        return False

    # -- output --------------------------------------------------------------------------------
    def produce(self, t: float) -> bytes:
        if self.format == 8:
            return self._record8(t)
        return self._frame27(t)

    def _record8(self, t: float) -> bytes:
        hr, spo2, off, pi = self._recording(t)
        alarm = self._update_display(t, hr, spo2, off)
        dhr, dspo2 = self._display
        status = ST_BIT7 | ((dhr >> 7) & 0x03)
        if pi is not None and pi < 0.5:
            status |= 0x10  # LPRF
        elif pi is not None and pi < 1.0:
            status |= 0x08  # MPRF
        status2 = (S2_SNSA if alarm else S2_SPA) | (S2_LOWBAT if self.low_battery else 0)
        return bytes((status, dhr & 0x7F, dspo2 & 0x7F, status2))

    def _frame27(self, t: float) -> bytes:
        idx = self._k % FRAMES_PER_PACKET
        self._k += 1
        if idx == 0:
            self._start_packet(t)
        pleth8 = self.patient.pleth(t, 1, 75.0)[0]
        # perfusion colour: held 12 frames for each detected pulse
        v = self.patient.vitals(t)
        if v.pulse_rate:
            phase = (t * v.pulse_rate / 60.0) % 1.0
            if phase < self._last_phase:
                self._perf_hold = 12
            self._last_phase = phase
        status = ST_BIT7 | self._status_flags | (ST_SYNC if idx == 0 else 0)
        if self._perf_hold > 0:
            self._perf_hold -= 1
            pi = v.perfusion_index or 0.0
            status |= ST_RPRF if pi < 0.5 else (ST_RPRF | ST_GPRF) if pi < 1.0 else ST_GPRF
        fb = self._packet.get(idx, 0) & 0x7F
        if self.format == 2:
            body = bytes((0x01, status, pleth8 & 0xFF, fb))
        else:
            p16 = min(0xFFFF, pleth8 * 256 + (self._k * 37) % 256)
            body = bytes((status, p16 >> 8, p16 & 0xFF, fb))
        return body + bytes((sum(body) & 0xFF,))

    def _start_packet(self, t: float) -> None:
        hr, spo2, off, _pi = self._recording(t)
        alarm = self._update_display(t, hr, spo2, off)
        dhr, dspo2 = self._display
        self._status_flags = ST_SNSA if (off or alarm) else 0
        timer = int(t * 3) & 0x3FFF
        stat2 = (0 if off else S2_SPA) | (S2_LOWBAT if self.low_battery else 0)
        self._packet = {
            0: (hr >> 7) & 0x03, 1: hr & 0x7F, 2: spo2, 3: FIRMWARE_REVISION,
            5: timer >> 7, 6: timer & 0x7F, 7: stat2,
            8: dspo2, 9: spo2, 10: spo2,
            13: (hr >> 7) & 0x03, 14: hr & 0x7F, 15: spo2, 16: dspo2,
            19: (dhr >> 7) & 0x03, 20: dhr & 0x7F, 21: (dhr >> 7) & 0x03, 22: dhr & 0x7F,
        }
