"""Replay a raw capture as a live source: same parser, same sample path, original timing.

Registered as ``replay`` in ketmonitor.sources. Options: ``file`` (a capture, see capture.py, or a
plain binary dump of device bytes), ``protocol`` (a name from devices.protocols), ``speed`` (1.0 =
original timing, 10 = ten times faster), ``loop`` (start again at the end instead of finishing).

Samples are stamped when they are replayed, like a live device's; the capture's own times only set
the pacing. A plain binary dump has no times, so it is paced at the protocol's line rate.
At the end the source reports itself disconnected ("replay finished") and stops.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ketmonitor.clock import Clock
from ketmonitor.samples import Condition
from ketmonitor.sources import StopSource

from . import protocols
from .capture import Record, read_capture
from .parsers.base import Parser
from .serial_source import ParsedSource

_LINE_RATE = {"contec": 115200, "contec-legacy": 19200}  # others 9600 baud


class ReplaySource(ParsedSource):
    def __init__(self, source_id: str, *, file: str, protocol: str, speed: float = 1.0,
                 loop: bool = False, clock: Clock | None = None, **options: Any):
        self.protocol = protocols.protocol(protocol)
        super().__init__(source_id, clock=clock, **options)
        self.file = str(file)
        self.speed = float(speed)
        if self.speed <= 0:
            raise ValueError("speed must be positive")
        self.loop = bool(loop)
        self.protocol_label = self.protocol.name
        if self.protocol.source == "suntech":
            self.kind = "nibp"
            self.expected_interval = 60.0
        self.passes = 0

    def make_parser(self) -> Parser:
        return self.protocol.make_parser()

    def _records(self) -> list[Record]:
        cap = read_capture(self.file)
        records = list(cap.device_records())
        if cap.timed or not records:
            return records
        # an untimed dump: pace it at the line rate, in reads of 32 bytes
        raw = records[0].data
        per_byte = 10.0 / _LINE_RATE.get(self.protocol.name, 9600)
        return [Record(i * per_byte, 0.0, "<", raw[i:i + 32]) for i in range(0, len(raw), 32)]

    def _run(self, stop: threading.Event) -> None:
        records = self._records()
        while not stop.is_set():
            self.reset_stream(self.clock.monotonic())
            self.set_status(True, frozenset(), f"{self.source_id}: replaying {self.file}")
            real0 = time.monotonic()
            t_first = records[0].t if records else 0.0
            for rec in records:
                due = real0 + (rec.t - t_first) / self.speed
                while not stop.is_set():
                    delay = due - time.monotonic()
                    if delay <= 0:
                        break
                    stop.wait(min(delay, 0.1))
                    self.update_status(self.clock.monotonic())
                if stop.is_set():
                    return
                t_mono, t_wall = self.now()
                self.handle_read(rec.data, t_mono, t_wall)
            self.flush_waveform()
            self.passes += 1
            if not self.loop:
                break
        if not stop.is_set():
            self.set_status(False, {Condition.DISCONNECTED},
                            f"{self.source_id}: replay of {self.file} finished")
        raise StopSource
