"""A Masimo Rad-8 / Radical-7 / Radical-7 rainbow / Radical-5 sending ASCII 1 lines on a pty.

One CR LF line per second at 9600 baud with the model's field set (tokens by key; dashes for
missing). When the finger comes out the device first holds its last values for ``hold`` seconds
with EXC "sensor off" (the display hold the parser flags HELD), then sends dashes. ``ascii_mode=2``
models the factory default (trend output, nothing live): the port stays silent, which the driver
reports as "ASCII 1 may not be selected". The device takes no host commands.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .base import Emulator

MODELS = ("rad8", "radical7", "rainbow", "radical5")
EXC_NORMAL, EXC_SENSOR_OFF, EXC_PULSE_SEARCH = 0x000800, 0x000020, 0x000008
DEVICE_CLOCK0 = datetime(2026, 1, 1, 8, 0, 0)


class MasimoEmulator(Emulator):
    protocol = "masimo"
    baudrate = 9600
    interval = 1.0

    def __init__(self, scenario: str = "uneventful", seed: int = 0, *, model: str = "rad8",
                 ascii_mode: int = 1, hold: float = 5.0, percent: bool = True,
                 serial_number: str = "0000071642", **kw):
        if model not in MODELS:
            raise ValueError(f"unknown Masimo model {model!r}; known: {', '.join(MODELS)}")
        super().__init__(scenario, seed, **kw)
        self.model = model
        self.ascii_mode = int(ascii_mode)
        self.hold = hold
        self.percent = percent
        self.serial_number = serial_number
        self._last = None  # (spo2, bpm, pi) last valid reading
        self._off_since: float | None = None
        self.low_battery = False

    def line(self, t: float) -> bytes:
        v = self.patient.vitals(t)
        exc, alarm = EXC_NORMAL, 0
        if v.probe_off or v.spo2 is None:
            if self._off_since is None:
                self._off_since = t
            exc = EXC_SENSOR_OFF
            held = self._last if t - self._off_since < self.hold else None
            spo2, bpm, pi = held if held else (None, None, None)
        else:
            self._off_since = None
            spo2, bpm, pi = round(v.spo2), round(v.pulse_rate), v.perfusion_index
            self._last = (spo2, bpm, pi)
            if spo2 < 90:
                alarm |= 0x02 | 0x10
            if bpm > 120:
                alarm |= 0x04 | 0x10
        if self.low_battery:
            alarm |= 0x40
        pct = "%" if self.percent else ""
        s_spo2 = f"{spo2:03d}{pct}" if spo2 is not None else f"---{pct}"
        s_bpm = f"{bpm:03d}" if bpm is not None else "---"
        s_pi = f"{pi:05.2f}{pct}" if pi is not None else f"--.--{pct}"
        stamp = (DEVICE_CLOCK0 + timedelta(seconds=t)).strftime("%m/%d/%y %H:%M:%S")
        vitals = f"SPO2={s_spo2} BPM={s_bpm} PI={s_pi}"
        if self.model == "radical5":
            fields = f"{vitals} ALARM={alarm:04X} EXC={exc:06X}"
        elif self.model == "rad8":
            fields = (f"SN={self.serial_number} {vitals} SPCO=--.-{pct} SPMET=--.-{pct} DESAT=-- "
                      f"PIDELTA=+-- ALARM={alarm:04X} EXC={exc:06X}")
        elif self.model == "radical7":
            fields = (f"SN={self.serial_number} {vitals} SPCO=--.-{pct} SPMET=--.-{pct} DESAT=-- "
                      f"PIDELTA=+-- PVI=--- ALARM={alarm:06X} EXC={exc:06X}")
        else:  # rainbow
            fields = (f"SN={self.serial_number} {vitals} SPCO=01.0{pct} SPMET=00.8{pct} SPHB=13.4 "
                      f"SPOC=19.0 RESVD=--- DESAT=-- PIDELTA=+-- PVI=014 ALARM={alarm:08X} "
                      f"EXC={exc:06X} EXC1=00000000")
        return f"{stamp} {fields}\r\n".encode("ascii")

    def produce(self, t: float) -> bytes:
        if self.ascii_mode != 1:
            return b""
        return self.line(t)
