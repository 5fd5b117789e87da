"""NoninSource: a Nonin OEM oximeter (formats #2, #7, #8) on a serial port, 9600 8N1.

Option ``format`` (2, 7 or 8; default 2). On connection the driver sends the set-format command
(the 9560 accepts it only in its first 5 s and remembers it) and notes the ACK or NAK; a NAK means
the device keeps its stored format, which the NO_DATA message then points at.

Format #8 sends one record a second and, having no checksum, syncs on two records and the next
STATUS byte (devices/parsers/nonin.py), so its first value comes up to 3 s after connecting: the
silence watch allows ``sync_time`` = 2 s on top of its two expected intervals until then (NO_DATA
at 4 s instead of 2 s on a fresh connection only; afterwards two intervals as usual).
"""

from __future__ import annotations

import logging
from typing import Any

from devices.parsers.nonin import NoninParser, NoninReply, set_format_command
from devices.serial_source import SerialSource, reacts_to

log = logging.getLogger(__name__)


class NoninSource(SerialSource):
    kind = "oximeter"
    capabilities = frozenset({"spo2", "pulse_rate"})
    baudrate = 9600
    expected_interval = 1.0

    def __init__(self, source_id: str, *, port: str, format: int | str = 2,
                 select_format: bool = True, **options: Any):
        self.format = int(format)
        if self.format not in (2, 7, 8):
            raise ValueError(f"Nonin format must be 2, 7 or 8, not {format!r}")
        super().__init__(source_id, port=port, **options)
        self.select_format = select_format
        self.protocol_label = f"Nonin format #{self.format}"
        self.sync_time = 2.0 if self.format == 8 else 0.0
        self.format_reply: str | None = None  # "ack", "nak" or None (no answer yet)
        if self.format in (2, 7):
            self.capabilities = frozenset({"spo2", "pulse_rate", "pleth"})

    def make_parser(self) -> NoninParser:
        return NoninParser(self.format)

    def on_open(self, now: float) -> None:
        if self.select_format:
            self.format_reply = None
            self.parser.expect_reply()
            self.write(set_format_command(self.format))

    @reacts_to(NoninReply)
    def _format_reply(self, frame: NoninReply, t_mono: float) -> None:
        self.format_reply = "ack" if frame.ack else "nak"
        if not frame.ack:
            log.warning("%s: device refused format #%d (it keeps its stored format)",
                        self.source_id, self.format)
        self.no_data_hint = ("" if frame.ack else
                             f"The device refused format #{self.format}; it sends the format "
                             "stored in its memory (a 9560 accepts a change only in its first "
                             "5 s after connection).")
