"""Contec pulse oximeters on their USB cable (CP210x bridge).

``ContecSource`` ("contec") speaks protocol V7.0 at 115200 8N1: it sends start real-time and asks
the device id, model and vendor when the port opens, sends the keep-alive every 2.5 s, and sends
start again when the stream has stopped. The device stops streaming when it has had no command for
5 s, so a keep-alive every 5 s exactly (as the reference words it) arrives a little late every time
(the read loop adds up to one read timeout, 50 ms): half the period leaves room for a late tick, a
loaded machine and a byte lost on the line. The stream is checked at every tick (0.5 s): silent for
``restart_after`` (2 s), it gets start again, at most once per ``restart_after``.
``ContecLegacySource`` ("contec-legacy") reads the older 5-byte stream at 19200 baud, odd parity,
which needs no command.

Both devices send 60 packets a second. The pleth goes on at 60 Hz in waveform chunks; SpO2, pulse
rate and PI go on once a second (the latest packet's values), as the device's own display updates,
so the store holds one row per second per value rather than sixty. Conditions (finger out,
searching) are taken from every packet.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import serial

from devices.parsers.base import Frame
from devices.parsers.contec import (CMD_DEVICE_ID, CMD_MODEL, CMD_VENDOR, KEEP_ALIVE,
                                    START_REALTIME, ContecFeedback, ContecParser, ContecText,
                                    command)
from devices.parsers.contec_legacy import ContecLegacyParser
from devices.serial_source import SerialSource, reacts_to

log = logging.getLogger(__name__)


class _ContecBase(SerialSource):
    kind = "oximeter"
    expected_interval = 1.0
    numeric_interval: ClassVar[float] = 1.0  # seconds between numerics sent on

    def __init__(self, source_id: str, **options: Any):
        super().__init__(source_id, **options)
        self._next_numeric: float | None = None

    def handle_frames(self, frames: list[Frame], t_mono: float, t_wall: float,
                      numerics_at=None) -> None:
        # every packet's pleth and conditions; the values of the read's last packet, once a second
        realtime = self.parser_class.realtime_frame
        last = -1
        for k in range(len(frames) - 1, -1, -1):
            if isinstance(frames[k], realtime):
                last = k
                break
        due = last >= 0 and (self._next_numeric is None or t_mono >= self._next_numeric)
        if due:
            self._next_numeric = t_mono + self.numeric_interval
        super().handle_frames(frames, t_mono, t_wall, (last,) if due else ())

    def reset_stream(self, now: float) -> None:
        super().reset_stream(now)
        self._next_numeric = None


class ContecSource(_ContecBase):
    parser_class = ContecParser
    baudrate = 115200
    poll_interval = 0.5  # the tick: keep-alive due? stream stopped?
    keepalive_interval: ClassVar[float] = 2.5  # the device stops after 5 s without a command
    restart_after: ClassVar[float] = 2.0  # no packet this long while connected: send start again
    protocol_label = "Contec V7.0"
    no_data_hint = ("Older Contec firmware speaks the legacy stream: try the contec-legacy "
                    "protocol (19200 baud).")

    def __init__(self, source_id: str, **options: Any):
        super().__init__(source_id, **options)
        self.device_info: dict[str, str] = {}  # "device id", "model", "vendor" as the device said
        self.keepalives_sent = 0
        self.starts_sent = 0
        self.rejected_commands: list[int] = []
        self._last_command = 0.0  # any command proves the host is there, as the keep-alive does
        self._last_start = 0.0

    def on_open(self, now: float) -> None:
        self._start(now)
        for cmd in (CMD_DEVICE_ID, CMD_MODEL, CMD_VENDOR):  # for the setup screen and the log
            self.write(command(cmd))

    def periodic(self, now: float) -> None:
        if now - self._last_command >= self.keepalive_interval and self.write(KEEP_ALIVE):
            self.keepalives_sent += 1
            self._last_command = now
        last = self.last_frame_mono if self.last_frame_mono is not None else self._watch_from
        if (last is not None and now - last > self.restart_after
                and now - self._last_start >= self.restart_after):
            self._start(now)

    def _start(self, now: float) -> None:
        if self.write(START_REALTIME):
            self.starts_sent += 1
            self._last_command = self._last_start = now

    @reacts_to(ContecText)
    def _device_text(self, frame: ContecText, t_mono: float) -> None:
        self.device_info[frame.kind] = frame.text

    @reacts_to(ContecFeedback)
    def _rejected(self, frame: ContecFeedback, t_mono: float) -> None:
        self.rejected_commands.append(frame.command)
        log.info("%s: device rejected command 0x%02X (reason 0x%02X)", self.source_id,
                 frame.command, frame.reason)


class ContecLegacySource(_ContecBase):
    parser_class = ContecLegacyParser
    baudrate = 19200
    parity = serial.PARITY_ODD  # some units use none: pass parity="N"
    protocol_label = "Contec legacy"
    no_data_hint = ("Newer Contec firmware (4.6 and later) speaks protocol V7.0: try the contec "
                    "protocol (115200 baud).")
