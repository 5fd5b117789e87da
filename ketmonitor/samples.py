"""Immutable samples that flow from sources through the dispatcher to the store, alarms and UI.

Every sample is stamped once, on arrival, with a monotonic time (for ordering, intervals and alarms)
and a UTC wall time (for the record). A device's own clock value, when it sends one, rides beside.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Union

from .metrics import metric as _metric


class Condition(str, Enum):
    """Named states a device reports about its signal. Values are the stable names used on disk."""

    SENSOR_OFF = "sensor_off"  # finger out / no sensor / probe error
    SENSOR_FAULT = "sensor_fault"  # defective, unrecognised or expired sensor or cable
    SENSOR_DISCONNECTED = "sensor_disconnected"  # sensor cable unplugged from the module
    SEARCHING = "searching"  # searching for a pulse
    SEARCHING_TOO_LONG = "searching_too_long"
    ARTIFACT = "artifact"
    OUT_OF_TRACK = "out_of_track"  # sustained artifact
    LOW_PERFUSION = "low_perfusion"
    MARGINAL_PERFUSION = "marginal_perfusion"
    INTERFERENCE = "interference"
    AMBIENT_LIGHT = "ambient_light"
    LOW_SIGNAL_QUALITY = "low_signal_quality"
    HELD = "held"  # device is holding a previous value (display hold): questionable, not fresh
    LOW_BATTERY = "low_battery"
    DEVICE_ALARM = "device_alarm"  # the device itself is alarming
    DEVICE_ALARM_SILENCED = "device_alarm_silenced"  # the device's own alarm is silenced
    DEVICE_SPO2_HIGH = "device_spo2_high"  # the device's own limit alarms (Masimo ALARM bits)
    DEVICE_SPO2_LOW = "device_spo2_low"
    DEVICE_PR_HIGH = "device_pr_high"
    DEVICE_PR_LOW = "device_pr_low"
    SENSOR_CALIBRATING = "sensor_calibrating"
    SMARTPOINT = "smartpoint"  # Nonin SmartPoint: the device rates this reading high quality
    SPO2_DROPPING = "spo2_dropping"  # Contec legacy stream: the device sees SpO2 falling
    PI_INVALID = "pi_invalid"  # Contec V7.0: the device marks its perfusion index invalid
    DISCONNECTED = "disconnected"  # the serial link or device is gone
    NO_DATA = "no_data"  # connected but silent for longer than expected
    NIBP_FAILED = "nibp_failed"
    NIBP_BUSY = "nibp_busy"

    def __str__(self) -> str:  # pragma: no cover - cosmetic
        return self.value


NO_FLAGS: frozenset[Condition] = frozenset()

# Conditions that qualify a reading without saying anything is wrong: a device chip shows them
# without the warning colour, and a missing value flagged only with them is not "an error".
# (PI invalid is here because some devices never measure PI; the PI tile already shows it missing.)
INFORMATIONAL: frozenset[Condition] = frozenset({Condition.SMARTPOINT, Condition.PI_INVALID})


@dataclass(frozen=True, slots=True)
class Numeric:
    """One numeric reading. ``value`` is None when the device said the value is missing."""

    metric: str
    value: float | None
    unit: str
    t_mono: float
    t_wall: float  # seconds since the Unix epoch, UTC
    source: str
    flags: frozenset[Condition] = NO_FLAGS
    device_time: str | None = None
    detail: str | None = None  # e.g. the NIBP error code's meaning

    @property
    def missing(self) -> bool:
        return self.value is None

    @classmethod
    def of(cls, name: str, value: float | None, *, t_mono: float, t_wall: float, source: str,
           flags: frozenset[Condition] = NO_FLAGS, **kw) -> "Numeric":
        return cls(name, value, _metric(name).unit, t_mono, t_wall, source, frozenset(flags), **kw)


@dataclass(frozen=True, slots=True)
class WaveformChunk:
    """Consecutive waveform samples at a fixed rate; ``t_mono``/``t_wall`` are the first sample's."""

    metric: str
    rate_hz: float
    t_mono: float
    t_wall: float
    samples: tuple[int, ...]
    source: str
    flags: frozenset[Condition] = NO_FLAGS

    @property
    def duration(self) -> float:
        return len(self.samples) / self.rate_hz


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """A device's connection and signal state, sent whenever it changes."""

    source: str
    connected: bool
    conditions: frozenset[Condition]
    t_mono: float
    t_wall: float
    message: str = ""


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """Something that happened in the session that is not a device reading (alarm, dose, note...).

    ``kind`` names it (``alarm.raised``, ``dose``, ``scale``, ...) and ``data`` carries JSON-able detail.
    """

    kind: str
    t_mono: float
    t_wall: float
    data: dict = field(default_factory=dict)
    user_id: str | None = None


Sample = Union[Numeric, WaveformChunk, DeviceStatus, SessionEvent]
