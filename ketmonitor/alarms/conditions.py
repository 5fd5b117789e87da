"""Alarm conditions, their defaults and the clinic settings that govern them.

Every condition has a priority, a condition delay and (for limit alarms) a limit and a hysteresis.
The defaults are the typical adult values of clinical.md; a protocol or the clinic overrides them
with ``AlarmConfig.from_dict``. The delays are disclosed in docs/alarms.md (IEC 60601-1-8 asks for
it); a test keeps that page and these defaults in step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import Enum

from ..errors import ConfigError
from ..metrics import metric as _metric


class Priority(str, Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def __str__(self) -> str:  # pragma: no cover - cosmetic
        return self.value


_RANK = {Priority.LOW: 1, Priority.MEDIUM: 2, Priority.HIGH: 3}
LIMIT, TECHNICAL = "limit", "technical"
MAX_DELAY_S = 60.0  # longer than a minute is no longer an alarm delay


@dataclass(frozen=True, slots=True)
class ConditionSpec:
    key: str
    label: str
    kind: str  # LIMIT or TECHNICAL
    priority: Priority
    delay_s: float
    metric: str | None = None  # limit alarms: the metric watched
    direction: str | None = None  # "low": value < limit; "high": value > limit
    limit: float | None = None
    hysteresis: float = 0.0  # a raised limit alarm ends only once back inside by this much
    episodic: bool = False  # NIBP: judged on each completed reading, never by a delay

    def beyond(self, value: float, *, hysteresis: bool = False) -> bool:
        """Is ``value`` on the alarm side of the limit (counting hysteresis once raised)?"""
        margin = self.hysteresis if hysteresis else 0.0
        if self.direction == "low":
            return value < self.limit + margin
        return value > self.limit - margin


def _limit(key, label, metric, direction, limit, priority, delay, hysteresis, episodic=False):
    return ConditionSpec(key, label, LIMIT, priority, delay, metric, direction, limit, hysteresis,
                         episodic)


def _tech(key, label, priority, delay):
    return ConditionSpec(key, label, TECHNICAL, priority, delay)


H, M, L = Priority.HIGH, Priority.MEDIUM, Priority.LOW

DEFAULT_SPECS: dict[str, ConditionSpec] = {s.key: s for s in (
    _limit("spo2_desat", "SpO2 desaturation", "spo2", "low", 85, H, 5, 1),
    _limit("spo2_low", "SpO2 low", "spo2", "low", 90, M, 10, 1),
    _limit("pulse_rate_low", "Pulse rate low", "pulse_rate", "low", 50, M, 10, 2),
    _limit("pulse_rate_high", "Pulse rate high", "pulse_rate", "high", 120, M, 10, 2),
    _limit("nibp_systolic_low", "NIBP systolic low", "nibp_systolic", "low", 90, M, 0, 5, True),
    _limit("nibp_systolic_high", "NIBP systolic high", "nibp_systolic", "high", 160, M, 0, 5, True),
    _limit("nibp_diastolic_low", "NIBP diastolic low", "nibp_diastolic", "low", 50, M, 0, 5, True),
    _limit("nibp_diastolic_high", "NIBP diastolic high", "nibp_diastolic", "high", 90, M, 0, 5,
           True),
    _limit("nibp_mean_low", "NIBP mean low", "nibp_mean", "low", 60, M, 0, 5, True),
    _limit("nibp_mean_high", "NIBP mean high", "nibp_mean", "high", 110, M, 0, 5, True),
    _tech("sensor_off", "SpO2 sensor off", M, 5),
    _tech("searching_too_long", "SpO2 searching too long", M, 20),
    _tech("device_disconnected", "Device disconnected", M, 0),
    _tech("no_data", "No data from device", M, 10),
    _tech("nibp_failed", "NIBP measurement failed", L, 0),
    _tech("audio_unavailable", "Alarm audio unavailable", M, 0),
    _tech("storage_failing", "Recording to disk failing", M, 0),
)}

# pairs whose low limit must stay below the high limit (and desaturation at or below SpO2 low)
_ORDERED = (("spo2_desat", "spo2_low"), ("pulse_rate_low", "pulse_rate_high"),
            ("nibp_systolic_low", "nibp_systolic_high"), ("nibp_diastolic_low", "nibp_diastolic_high"),
            ("nibp_mean_low", "nibp_mean_high"))


@dataclass(frozen=True, slots=True)
class ClinicSettings:
    """Settings of the responsible organisation, not of the operator at the bedside.

    Nurses may change limits by default: adjusting limits to the patient at the bedside is routine
    and every change is audited. Priorities, delays and hysteresis are clinic settings (admin).
    """

    latching: bool = False  # physiological alarms stay visible and audible after they end, until ack
    pause_default_s: float = 120.0
    pause_max_s: float = 120.0
    limit_roles: frozenset[str] = frozenset({"nurse", "physician", "admin"})
    setting_roles: frozenset[str] = frozenset({"admin"})


@dataclass(frozen=True, slots=True)
class AlarmConfig:
    specs: dict[str, ConditionSpec] = field(default_factory=lambda: dict(DEFAULT_SPECS))
    settings: ClinicSettings = ClinicSettings()

    @classmethod
    def from_dict(cls, data: dict | None) -> "AlarmConfig":
        """Defaults overridden by ``{"settings": {...}, "conditions": {key: {limit, priority,
        delay_s, hysteresis}}, "limits": {metric: {"low": x, "high": y}}}`` from a protocol (whose
        ``alarm_limits`` is the ``limits`` form) or the clinic's settings. Unknown names are errors."""
        data = dict(data or {})
        unknown = set(data) - {"settings", "conditions", "limits"}
        if unknown:
            raise ConfigError(f"alarm config: unknown section(s) {', '.join(sorted(unknown))}")
        settings = ClinicSettings()
        raw = dict(data.get("settings") or {})
        names = {f for f in ClinicSettings.__dataclass_fields__}
        bad = set(raw) - names
        if bad:
            raise ConfigError(f"alarm settings: unknown setting(s) {', '.join(sorted(bad))}")
        for k in ("limit_roles", "setting_roles"):
            if k in raw:
                raw[k] = frozenset(raw[k])
        for k in ("pause_default_s", "pause_max_s"):
            if k in raw:
                raw[k] = _number(f"settings.{k}", raw[k])
        settings = replace(settings, **raw)
        if not 0 < settings.pause_default_s <= settings.pause_max_s:
            raise ConfigError("alarm settings: need 0 < pause_default_s <= pause_max_s")
        specs = dict(DEFAULT_SPECS)
        conditions = {k: dict(v) for k, v in (data.get("conditions") or {}).items()}
        for metric, bounds in (data.get("limits") or {}).items():
            for side, value in dict(bounds).items():
                key = f"{metric}_{side}"
                if key not in specs:
                    raise ConfigError(f"alarm limits: no {side} limit alarm on {metric!r}")
                conditions.setdefault(key, {}).setdefault("limit", value)
        for key, over in conditions.items():
            if key not in specs:
                raise ConfigError(f"alarm config: unknown condition {key!r}; known: "
                                  f"{', '.join(specs)}")
            bad = set(over) - {"limit", "priority", "delay_s", "hysteresis"}
            if bad:
                raise ConfigError(f"alarm condition {key}: unknown field(s) {', '.join(sorted(bad))}")
            spec = specs[key]
            for name, value in over.items():
                spec = with_field(spec, name, value)
            specs[key] = spec
        config = cls(specs, settings)
        config.check()
        return config

    def to_dict(self) -> dict:
        s = self.settings
        return {
            "settings": {"latching": s.latching, "pause_default_s": s.pause_default_s,
                         "pause_max_s": s.pause_max_s, "limit_roles": sorted(s.limit_roles),
                         "setting_roles": sorted(s.setting_roles)},
            "conditions": {k: spec_dict(v) for k, v in self.specs.items()},
        }

    def check(self) -> None:
        for low, high in _ORDERED:
            a, b = self.specs[low].limit, self.specs[high].limit
            if low == "spo2_desat" and a > b:
                raise ConfigError(f"SpO2 desaturation limit {a:g} must not be above SpO2 low {b:g}")
            if low != "spo2_desat" and a >= b:
                raise ConfigError(f"{self.specs[low].label} limit {a:g} must be below "
                                  f"{self.specs[high].label} limit {b:g}")


def spec_dict(spec: ConditionSpec) -> dict:
    d = {"label": spec.label, "kind": spec.kind, "priority": spec.priority.value,
         "delay_s": spec.delay_s}
    if spec.kind == LIMIT:
        d.update(metric=spec.metric, direction=spec.direction, limit=spec.limit,
                 hysteresis=spec.hysteresis, episodic=spec.episodic)
    return d


def _number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name}: expected a number, got {value!r}")
    return float(value)


def with_field(spec: ConditionSpec, name: str, value) -> ConditionSpec:
    """``spec`` with one field changed, validated; raises ConfigError with a readable reason."""
    if name == "priority":
        try:
            return replace(spec, priority=Priority(value))
        except ValueError:
            raise ConfigError(f"{spec.key}: priority must be high, medium or low, not {value!r}") \
                from None
    if name == "delay_s":
        v = _number(f"{spec.key}.delay_s", value)
        if spec.episodic and v != 0:
            raise ConfigError(f"{spec.key}: NIBP alarms are judged on each reading and take no delay")
        if not 0 <= v <= MAX_DELAY_S:
            raise ConfigError(f"{spec.key}: delay must be 0-{MAX_DELAY_S:g} s, not {v:g}")
        return replace(spec, delay_s=v)
    if spec.kind != LIMIT:
        raise ConfigError(f"{spec.key} is a technical alarm: it has no {name}")
    if name == "limit":
        v = _number(f"{spec.key}.limit", value)
        m = _metric(spec.metric)
        if not m.in_range(v):
            raise ConfigError(f"{spec.key}: limit {v:g} is outside {m.low:g}-{m.high:g} {m.unit}")
        return replace(spec, limit=v)
    if name == "hysteresis":
        v = _number(f"{spec.key}.hysteresis", value)
        if not 0 <= v <= 20:
            raise ConfigError(f"{spec.key}: hysteresis must be 0-20, not {v:g}")
        return replace(spec, hysteresis=v)
    raise ConfigError(f"{spec.key}: unknown field {name!r}")


def defaults_table(specs: dict[str, ConditionSpec] | None = None) -> str:
    """The disclosed defaults as a Markdown table (docs/alarms.md carries it; a test compares)."""
    rows = ["| condition | key | priority | limit | delay | hysteresis |",
            "|---|---|---|---|---|---|"]
    for s in (specs or DEFAULT_SPECS).values():
        if s.kind == LIMIT:
            unit = _metric(s.metric).unit.replace("mm[Hg]", "mmHg")
            sign = "<" if s.direction == "low" else ">"
            limit = f"{sign} {s.limit:g} {unit}"
            delay = "each reading" if s.episodic else f"{s.delay_s:g} s"
            hyst = f"{s.hysteresis:g} {unit}"
        else:
            limit, delay, hyst = "-", f"{s.delay_s:g} s", "-"
        rows.append(f"| {s.label} | `{s.key}` | {s.priority.value} | {limit} | {delay} | {hyst} |")
    return "\n".join(rows)
