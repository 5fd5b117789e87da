"""The protocol table: protocol name -> parser, emulator and source, imported lazily.

A module that is missing or broken breaks only its own protocol (python-can's interface table is the
model). The core reaches this table through ``importlib.import_module("devices.protocols")``.

Names (the ``--protocol``/``--device`` choices of ``ketmonitor decode`` and ``ketmonitor emulate``):
nonin2, nonin7, nonin8, masimo, contec, contec-legacy, suntech.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from ketmonitor.errors import ConfigError


@dataclass(frozen=True)
class Protocol:
    name: str
    description: str
    parser: str  # "module:Class"
    emulator: str  # "module:Class"
    source: str  # name in ketmonitor.sources._REGISTRY
    options: dict[str, Any] = field(default_factory=dict)  # for parser, emulator and source alike

    def parser_class(self):
        return _load(self.parser, self.name)

    def emulator_class(self):
        return _load(self.emulator, self.name)

    def make_parser(self):
        return self.parser_class()(**self.options)

    def make_emulator(self, **kw):
        return self.emulator_class()(**{**self.options, **kw})


def _load(target: str, name: str):
    module_name, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"protocol {name!r} is not available: {exc}") from exc


PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (
    Protocol("nonin2", "Nonin format #2 (75 Hz, 8-bit pleth)", "devices.parsers.nonin:NoninParser",
             "devices.emulators.nonin:NoninEmulator", "nonin", {"format": 2}),
    Protocol("nonin7", "Nonin format #7 (75 Hz, 16-bit pleth)", "devices.parsers.nonin:NoninParser",
             "devices.emulators.nonin:NoninEmulator", "nonin", {"format": 7}),
    Protocol("nonin8", "Nonin format #8 (1 record/s, no pleth)", "devices.parsers.nonin:NoninParser",
             "devices.emulators.nonin:NoninEmulator", "nonin", {"format": 8}),
    Protocol("masimo", "Masimo Rad-8/Radical-7/Radical-5 ASCII 1", "devices.parsers.masimo:MasimoParser",
             "devices.emulators.masimo:MasimoEmulator", "masimo"),
    Protocol("contec", "Contec protocol V7.0 (CMS50D+ 4.6+, CMS50E/F, CMS60C)",
             "devices.parsers.contec:ContecParser", "devices.emulators.contec:ContecEmulator",
             "contec"),
    Protocol("contec-legacy", "Contec legacy 5-byte stream (older CMS50D+/E)",
             "devices.parsers.contec_legacy:ContecLegacyParser",
             "devices.emulators.contec:ContecLegacyEmulator", "contec-legacy"),
    Protocol("suntech", "SunTech Advantage NIBP module", "devices.parsers.suntech:SuntechParser",
             "devices.emulators.suntech:SuntechEmulator", "suntech"),
)}


def protocol_names() -> list[str]:
    return list(PROTOCOLS)


def protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ConfigError(f"unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}") from None
