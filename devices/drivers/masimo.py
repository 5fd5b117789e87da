"""MasimoSource: a Masimo Rad-8 / Radical-7 / Radical-5 in serial mode ASCII 1, 9600 8N1."""

from __future__ import annotations

from devices.parsers.masimo import MasimoParser
from devices.serial_source import SerialSource


class MasimoSource(SerialSource):
    kind = "oximeter"
    capabilities = frozenset({"spo2", "pulse_rate", "perfusion_index"})
    parser_class = MasimoParser
    baudrate = 9600
    expected_interval = 1.0
    protocol_label = "Masimo ASCII 1"
    no_data_hint = ("Check that the Masimo's serial output is set to ASCII 1 (the factory default "
                    "ASCII 2 sends no live lines) and that a null-modem cable is used.")
