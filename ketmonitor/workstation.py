"""Which devices this workstation reads, remembered between runs (a JSON file in the data directory).

The core knows drivers only by name: the protocol table and port discovery live in ``devices/`` and
are reached with a lazy import, so this module loads without pyserial.
"""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .clock import Clock
from .errors import ConfigError
from .paths import data_dir
from .sources import VitalsSource, create_source

ROLES = ("oximeter", "nibp")
SIMULATOR = "simulator"
NONE = "none"
# which protocols make sense for which role (names from devices/protocols.py)
ROLE_PROTOCOLS = {
    "oximeter": ("nonin2", "nonin7", "nonin8", "masimo", "contec", "contec-legacy", SIMULATOR),
    "nibp": ("suntech", SIMULATOR, NONE),
}


@dataclass(frozen=True)
class DeviceChoice:
    role: str  # "oximeter" or "nibp"
    protocol: str  # a devices.protocols name, "simulator" or "none"
    port: str | None = None  # /dev/ttyUSB0, COM3, a pty path or a pyserial URL
    options: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.role not in ROLES:
            raise ConfigError(f"unknown device role {self.role!r}; known: {', '.join(ROLES)}")
        if self.protocol not in ROLE_PROTOCOLS[self.role]:
            raise ConfigError(f"{self.protocol!r} is not a {self.role} protocol; choose one of "
                              f"{', '.join(ROLE_PROTOCOLS[self.role])}")
        if self.protocol not in (SIMULATOR, NONE) and not self.port:
            raise ConfigError(f"the {self.role} ({self.protocol}) needs a serial port")


def config_path() -> Path:
    return data_dir() / "workstation.json"


def load_choices(path: Path | None = None) -> list[DeviceChoice]:
    path = path or config_path()
    if not path.exists():
        return []
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return [DeviceChoice(**d) for d in raw.get("devices", [])]
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: not a valid workstation file ({exc})") from exc


def save_choices(choices: list[DeviceChoice], path: Path | None = None) -> Path:
    path = path or config_path()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"devices": [asdict(c) for c in choices]}, indent=2), encoding="utf-8")
    os.replace(tmp, path)  # atomic: a crash leaves the old file or the new one
    return path


def protocol_descriptions() -> dict[str, str]:
    table = importlib.import_module("devices.protocols").PROTOCOLS
    out = {name: p.description for name, p in table.items()}
    out[SIMULATOR] = "built-in simulator"
    out[NONE] = "no device"
    return out


def list_ports() -> list:
    """Serial ports present now (devices.ports.PortInfo objects)."""
    return importlib.import_module("devices.ports").list_ports()


def build_source(choice: DeviceChoice, *, clock: Clock, scenario: str = "uneventful",
                 seed: int = 1, t0: float | None = None) -> VitalsSource | None:
    if choice.protocol == NONE:
        return None
    if choice.protocol == SIMULATOR:
        name = "sim-oximeter" if choice.role == "oximeter" else "sim-nibp"
        opts = {"scenario": scenario, "seed": seed, "t0": t0}
        if choice.role == "nibp":
            opts["interval_s"] = choice.options.get("interval_s", 300.0)
        return create_source(name, choice.role, clock=clock, **opts)
    proto = importlib.import_module("devices.protocols").protocol(choice.protocol)
    return create_source(proto.source, choice.role, clock=clock, port=choice.port,
                         **{**proto.options, **choice.options})


def build_sources(choices: list[DeviceChoice], *, clock: Clock, **kw) -> list[VitalsSource]:
    return [s for s in (build_source(c, clock=clock, **kw) for c in choices) if s is not None]
