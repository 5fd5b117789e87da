"""Contec oximeters on a pseudo-terminal: protocol V7.0 (``ContecEmulator``) and the legacy stream
(``ContecLegacyEmulator``), 60 packets a second, byte for byte as their parsers read them.

V7.0 behaviour:
- Silent after plug-in until the host sends start real-time (0xA1); 0xA2 stops the stream.
- Keep-alive: the stream stops when no command has arrived for ``keepalive_timeout`` real seconds
  (default 5.0 s, as the device: no grace, so a host that cuts it fine is caught in tests). Any
  valid command counts, as it proves the host is there. The timeout runs on real time, not the
  patient model's, because the host's keep-alive does. ``command_log`` keeps (real time, command)
  of every command received.
- 0xA8 -> model string (type 0x02), 0xA9 -> vendor string (0x03), 0xAA -> device id (0x04), 0xAC ->
  PI support (0x0E), 0xB0 -> storage identifiers (0x15), 0xAF -> nothing (keep-alive); any other
  command -> command feedback (0x0B) with reason 0x05.

The legacy stream needs no command: it streams from plug-in.
"""

from __future__ import annotations

import time

from devices.parsers import contec as proto
from devices.parsers import contec_legacy as legacy

from .base import Emulator

RATE = 60.0
MODEL = "CMS50F"
VENDOR = "CONTEC"
DEVICE_ID = "KETEMU1"


def _text7(text: str) -> list[int]:
    raw = text.encode("latin-1")[:7]
    return list(raw + bytes(7 - len(raw)))


class _ContecSignal:
    """What an oximeter shows at simulated time ``t``, from the patient model."""

    def __init__(self, emulator: Emulator):
        self.e = emulator

    def at(self, t: float):
        v = self.e.patient.vitals(t)
        pleth = self.e.patient.pleth(t, 1, RATE)[0] >> 1  # 0..255 -> 7 bits
        hr = v.pulse_rate or 0.0
        phase = (t * hr / 60.0) % 1.0
        beep = (not v.probe_off) and phase < hr / 60.0 / RATE  # one packet per beat
        return v, pleth, beep


class ContecEmulator(Emulator):
    protocol = "contec"
    baudrate = proto.BAUD
    interval = 1.0 / RATE

    def __init__(self, *args, keepalive_timeout: float = 5.0, **kw):
        super().__init__(*args, **kw)
        self.keepalive_timeout = float(keepalive_timeout)
        self.signal = _ContecSignal(self)
        self.streaming = False
        self.last_command_real: float | None = None
        self.commands: list[int] = []  # every command received, in order
        self.command_log: list[tuple[float, int]] = []  # (time.monotonic(), command)
        self.stopped_for_keepalive = 0
        self.stopped_at: float | None = None  # time.monotonic() of the last such stop
        self._inbuf = bytearray()

    def on_plug(self) -> None:
        self.streaming = False
        self.last_command_real = None
        self._inbuf.clear()

    # -- host -> device --------------------------------------------------------------------------
    def handle_input(self, data: bytes) -> None:
        if self.device_silent(self.sim_time()):
            return  # switched off / cable gone: commands fall on deaf ears
        buf = self._inbuf
        buf += data
        while True:
            i = buf.find(0x7D)
            if i < 0:
                buf.clear()
                return
            del buf[:i]
            if len(buf) < 9:
                return
            pkt = bytes(buf[:9])
            if any(not b & 0x80 for b in pkt[1:]):  # a broken command: resync after its 7D
                del buf[:1]
                continue
            del buf[:9]
            self._command(proto.restore(pkt)[0])

    def _command(self, cmd: int) -> None:
        self.commands.append(cmd)
        self.last_command_real = time.monotonic()
        self.command_log.append((self.last_command_real, cmd))
        if cmd == proto.CMD_START_REALTIME:
            self.streaming = True
        elif cmd == proto.CMD_STOP_REALTIME:
            self.streaming = False
        elif cmd == proto.CMD_KEEP_ALIVE:
            pass
        elif cmd == proto.CMD_MODEL:
            self.reply(proto.encode_packet(proto.TYPE_MODEL, _text7(MODEL)))
        elif cmd == proto.CMD_VENDOR:
            self.reply(proto.encode_packet(proto.TYPE_VENDOR, _text7(VENDOR)))
        elif cmd == proto.CMD_DEVICE_ID:
            self.reply(proto.encode_packet(proto.TYPE_DEVICE_ID, _text7(DEVICE_ID)))
        elif cmd == proto.CMD_PI_SUPPORT:
            self.reply(proto.encode_packet(proto.TYPE_PI_SUPPORT, [1]))
        elif cmd == proto.CMD_STORAGE_IDS:
            self.reply(proto.encode_packet(0x15, [0] * 7))
        else:
            self.reply(proto.encode_packet(proto.TYPE_FEEDBACK,
                                           [cmd, proto.FEEDBACK_UNKNOWN_COMMAND]))

    # -- device -> host --------------------------------------------------------------------------
    def produce(self, t: float) -> bytes:
        if not self.streaming:
            return b""
        last = self.last_command_real
        now = time.monotonic()
        if last is None or now - last > self.keepalive_timeout:
            self.streaming = False
            self.stopped_for_keepalive += 1
            self.stopped_at = now
            return b""
        return self.packet(t)

    def render(self, seconds: float, t_start: float | None = None) -> bytes:
        """The real-time stream the device sends once started (no commands needed here)."""
        t = self.t0 if t_start is None else t_start
        n = int(round(seconds * RATE))
        return self._faulty(b"".join(self.packet(t + k / RATE) for k in range(n)
                                     if not self.device_silent(t + k / RATE)))

    def packet(self, t: float) -> bytes:
        v, pleth, beep = self.signal.at(t)
        off = v.probe_off
        spo2 = proto.SPO2_MISSING if v.spo2 is None else int(round(v.spo2))
        pulse = proto.PULSE_MISSING if v.pulse_rate is None else min(254, int(round(v.pulse_rate)))
        pi = proto.PI_MISSING if v.perfusion_index is None else int(round(v.perfusion_index * 100))
        signal = 0 if off else 6
        d0 = signal | (0x80 if off else 0) | (0x40 if beep else 0) | (0x10 if off else 0)
        d1 = (pleth & 0x7F) | (0x80 if off else 0)
        d2 = (0 if off else min(15, pleth >> 3)) | (0x10 if pi == proto.PI_MISSING else 0)
        return proto.encode_packet(proto.TYPE_REALTIME,
                                   [d0, d1, d2, pulse, spo2, pi & 0xFF, pi >> 8])


class ContecLegacyEmulator(Emulator):
    protocol = "contec-legacy"
    baudrate = legacy.BAUD
    interval = 1.0 / RATE

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.signal = _ContecSignal(self)

    def produce(self, t: float) -> bytes:
        v, pleth, beep = self.signal.at(t)
        off = v.probe_off
        return legacy.encode(
            signal_strength=0 if off else 6, searching_too_long=off, pulse_beep=beep,
            pleth=0 if off else pleth, bar_graph=0 if off else min(15, pleth >> 3),
            probe_error=off, searching=off,
            pulse_rate=None if v.pulse_rate is None else min(254, int(round(v.pulse_rate))),
            spo2=None if v.spo2 is None else int(round(v.spo2)))
