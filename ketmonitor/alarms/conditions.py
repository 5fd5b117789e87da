"""Alarm conditions, their defaults and the clinic settings that govern them.

Every condition has a priority, a condition delay and (for limit alarms) a limit and a hysteresis.
The defaults are the typical adult values of clinical.md; a protocol or the clinic overrides them
with ``AlarmConfig.from_dict``. The delays are disclosed in docs/alarms.md (IEC 60601-1-8 asks for
it); a test keeps that page and these defaults in step.

Every limit alarm also has the range its limit may be set to (``limit_min``-``limit_max``), a clinic
setting: nobody at the bedside, and no protocol file, can set the desaturation limit to 50 % or the
SpO2 low limit to 0, which would switch those alarms off in all but name.
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
    limit_min: float | None = None  # the range the limit may be set to (clinic setting)
    limit_max: float | None = None

    def beyond(self, value: float, *, hysteresis: bool = False) -> bool:
        """Is ``value`` on the alarm side of the limit (counting hysteresis once raised)?"""
        margin = self.hysteresis if hysteresis else 0.0
        if self.direction == "low":
            return value < self.limit + margin
        return value > self.limit - margin


def _limit(key, label, metric, direction, limit, priority, delay, hysteresis, bounds,
           episodic=False):
    return ConditionSpec(key, label, LIMIT, priority, delay, metric, direction, limit, hysteresis,
                         episodic, float(bounds[0]), float(bounds[1]))


def _tech(key, label, priority, delay):
    return ConditionSpec(key, label, TECHNICAL, priority, delay)


H, M, L = Priority.HIGH, Priority.MEDIUM, Priority.LOW

DEFAULT_SPECS: dict[str, ConditionSpec] = {s.key: s for s in (
    # key, label, metric, direction, limit, priority, delay s, hysteresis, (lowest, highest) limit
    _limit("spo2_desat", "SpO2 desaturation", "spo2", "low", 85, H, 5, 1, (70, 95)),
    _limit("spo2_low", "SpO2 low", "spo2", "low", 90, M, 10, 1, (80, 99)),
    _limit("pulse_rate_low", "Pulse rate low", "pulse_rate", "low", 50, M, 10, 2, (30, 100)),
    _limit("pulse_rate_high", "Pulse rate high", "pulse_rate", "high", 120, M, 10, 2, (60, 200)),
    _limit("nibp_systolic_low", "NIBP systolic low", "nibp_systolic", "low", 90, M, 0, 5, (60, 140),
           True),
    _limit("nibp_systolic_high", "NIBP systolic high", "nibp_systolic", "high", 160, M, 0, 5,
           (100, 230), True),
    _limit("nibp_diastolic_low", "NIBP diastolic low", "nibp_diastolic", "low", 50, M, 0, 5,
           (30, 90), True),
    _limit("nibp_diastolic_high", "NIBP diastolic high", "nibp_diastolic", "high", 90, M, 0, 5,
           (60, 130), True),
    _limit("nibp_mean_low", "NIBP mean low", "nibp_mean", "low", 60, M, 0, 5, (40, 100), True),
    _limit("nibp_mean_high", "NIBP mean high", "nibp_mean", "high", 110, M, 0, 5, (70, 150), True),
    _tech("sensor_off", "SpO2 sensor off", M, 5),
    _tech("searching_too_long", "SpO2 searching too long", M, 20),
    _tech("device_disconnected", "Device disconnected", M, 0),
    _tech("no_data", "No data from device", M, 10),
    _tech("nibp_failed", "NIBP measurement failed", L, 0),
    _tech("audio_unavailable", "Alarm audio unavailable", M, 0),
    _tech("storage_failing", "Recording to disk failing", M, 0),
)}

# how much further a value must worsen before an acknowledged high-priority alarm sounds again
DEFAULT_REANNUNCIATE_MARGINS = {"spo2": 5.0, "pulse_rate": 10.0, "nibp_systolic": 10.0,
                                "nibp_diastolic": 10.0, "nibp_mean": 10.0}

# pairs whose low limit must stay below the high limit (and desaturation at or below SpO2 low)
_ORDERED = (("spo2_desat", "spo2_low"), ("pulse_rate_low", "pulse_rate_high"),
            ("nibp_systolic_low", "nibp_systolic_high"), ("nibp_diastolic_low", "nibp_diastolic_high"),
            ("nibp_mean_low", "nibp_mean_high"))


@dataclass(frozen=True, slots=True)
class ClinicSettings:
    """Settings of the responsible organisation, not of the operator at the bedside.

    Nurses may change limits by default: adjusting limits to the patient at the bedside is routine
    and every change is audited. Priorities, delays, hysteresis and the range each limit may be set
    to are clinic settings (admin).

    ``reannunciate``: an acknowledged (or audio-paused) high-priority limit alarm sounds again when
    its value has worsened by ``reannunciate_margins[metric]`` since it was silenced (SpO2 84 %
    acknowledged, then 79 %): the nurse silenced an 84, not a 60.
    """

    latching: bool = False  # physiological alarms stay visible and audible after they end, until ack
    pause_default_s: float = 120.0
    pause_max_s: float = 120.0
    limit_roles: frozenset[str] = frozenset({"nurse", "physician", "admin"})
    setting_roles: frozenset[str] = frozenset({"admin"})
    reannunciate: bool = True
    reannunciate_margins: dict = field(default_factory=lambda: dict(DEFAULT_REANNUNCIATE_MARGINS))


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
        for k in ("latching", "reannunciate"):
            if k in raw and not isinstance(raw[k], bool):
                raise ConfigError(f"alarm settings: {k} must be true or false, not {raw[k]!r}")
        if "reannunciate_margins" in raw:
            raw["reannunciate_margins"] = _margins(raw["reannunciate_margins"])
        settings = replace(settings, **raw)
        if not 0 < settings.pause_default_s <= settings.pause_max_s:
            raise ConfigError("alarm settings: need 0 < pause_default_s <= pause_max_s")
        specs = dict(DEFAULT_SPECS)
        conditions = {k: dict(v) for k, v in (data.get("conditions") or {}).items()}
        for key, value in limit_keys(data.get("limits")).items():
            conditions.setdefault(key, {}).setdefault("limit", value)
        for key, over in conditions.items():
            if key not in specs:
                raise ConfigError(f"alarm config: unknown condition {key!r}; known: "
                                  f"{', '.join(specs)}")
            bad = set(over) - set(CONFIG_FIELDS)
            if bad:
                raise ConfigError(f"alarm condition {key}: unknown field(s) {', '.join(sorted(bad))}")
            spec = specs[key]
            # the range first: a limit is judged against the range the same file sets
            for name in sorted(over, key=CONFIG_FIELDS.index):
                spec = with_field(spec, name, over[name])
            specs[key] = spec
        config = cls(specs, settings)
        config.check()
        return config

    def to_dict(self) -> dict:
        s = self.settings
        return {
            "settings": {"latching": s.latching, "pause_default_s": s.pause_default_s,
                         "pause_max_s": s.pause_max_s, "limit_roles": sorted(s.limit_roles),
                         "setting_roles": sorted(s.setting_roles),
                         "reannunciate": s.reannunciate,
                         "reannunciate_margins": dict(s.reannunciate_margins)},
            "conditions": {k: spec_dict(v) for k, v in self.specs.items()},
        }

    def check(self) -> None:
        for spec in self.specs.values():
            if spec.kind == LIMIT:
                if spec.limit_min > spec.limit_max:
                    raise ConfigError(f"{spec.key}: limit_min {spec.limit_min:g} is above limit_max"
                                      f" {spec.limit_max:g}")
                _in_bounds(spec, spec.limit)
        for low, high in _ORDERED:
            a, b = self.specs[low].limit, self.specs[high].limit
            if low == "spo2_desat" and a > b:
                raise ConfigError(f"SpO2 desaturation limit {a:g} must not be above SpO2 low {b:g}")
            if low != "spo2_desat" and a >= b:
                raise ConfigError(f"{self.specs[low].label} limit {a:g} must be below "
                                  f"{self.specs[high].label} limit {b:g}")


# fields a clinic (or protocol, for ``limit``) may set on a condition, in the order they apply
CONFIG_FIELDS = ("limit_min", "limit_max", "limit", "priority", "delay_s", "hysteresis")


def limit_keys(limits: dict | None) -> dict[str, float]:
    """``{metric: {"low": x, "high": y}}`` (a protocol's ``alarm_limits``) as ``{condition: limit}``.
    SpO2 also takes ``"desat"``, the high-priority desaturation limit (``spo2_desat``)."""
    out = {}
    for metric, sides in (limits or {}).items():
        if not isinstance(sides, dict):
            raise ConfigError(f"alarm limits: {metric}: expected {{'low': x, 'high': y}}")
        for side, value in sides.items():
            key = f"{metric}_{side}"
            if key not in DEFAULT_SPECS or DEFAULT_SPECS[key].kind != LIMIT:
                raise ConfigError(f"alarm limits: no {side} limit alarm on {metric!r}")
            out[key] = value
    return out


def spec_dict(spec: ConditionSpec) -> dict:
    d = {"label": spec.label, "kind": spec.kind, "priority": spec.priority.value,
         "delay_s": spec.delay_s}
    if spec.kind == LIMIT:
        d.update(metric=spec.metric, direction=spec.direction, limit=spec.limit,
                 hysteresis=spec.hysteresis, episodic=spec.episodic, limit_min=spec.limit_min,
                 limit_max=spec.limit_max)
    return d


def _margins(raw) -> dict:
    if not isinstance(raw, dict):
        raise ConfigError("alarm settings: reannunciate_margins must be {metric: margin}")
    out = dict(DEFAULT_REANNUNCIATE_MARGINS)
    for metric, value in raw.items():
        if metric not in DEFAULT_REANNUNCIATE_MARGINS:
            raise ConfigError(f"alarm settings: reannunciate_margins: no limit alarm on {metric!r}; "
                              f"known: {', '.join(DEFAULT_REANNUNCIATE_MARGINS)}")
        v = _number(f"settings.reannunciate_margins.{metric}", value)
        if not 0 < v <= 50:
            raise ConfigError(f"alarm settings: reannunciate_margins.{metric} must be more than 0"
                              f" and at most 50, not {v:g}")
        out[metric] = v
    return out


def _in_bounds(spec: ConditionSpec, v: float) -> None:
    unit = _metric(spec.metric).unit.replace("mm[Hg]", "mmHg")
    if v < spec.limit_min:
        raise ConfigError(f"{spec.label} limit {v:g} {unit} is below the lowest this clinic allows"
                          f" ({spec.limit_min:g} {unit})")
    if v > spec.limit_max:
        raise ConfigError(f"{spec.label} limit {v:g} {unit} is above the highest this clinic allows"
                          f" ({spec.limit_max:g} {unit})")


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
    if name in ("limit", "limit_min", "limit_max"):
        v = _number(f"{spec.key}.{name}", value)
        m = _metric(spec.metric)
        if not m.in_range(v):
            raise ConfigError(f"{spec.key}: {name} {v:g} is outside {m.low:g}-{m.high:g} {m.unit}")
        if name == "limit":
            _in_bounds(spec, v)
        new = replace(spec, **{name: v})
        if new.limit_min > new.limit_max:
            raise ConfigError(f"{spec.key}: limit_min {new.limit_min:g} is above limit_max "
                              f"{new.limit_max:g}")
        return new
    if name == "hysteresis":
        v = _number(f"{spec.key}.hysteresis", value)
        if not 0 <= v <= 20:
            raise ConfigError(f"{spec.key}: hysteresis must be 0-20, not {v:g}")
        return replace(spec, hysteresis=v)
    raise ConfigError(f"{spec.key}: unknown field {name!r}")


def defaults_table(specs: dict[str, ConditionSpec] | None = None) -> str:
    """The disclosed defaults as a Markdown table (docs/alarms.md carries it; a test compares)."""
    rows = ["| condition | key | priority | limit | may be set to | delay | hysteresis |",
            "|---|---|---|---|---|---|---|"]
    for s in (specs or DEFAULT_SPECS).values():
        if s.kind == LIMIT:
            unit = _metric(s.metric).unit.replace("mm[Hg]", "mmHg")
            sign = "<" if s.direction == "low" else ">"
            limit = f"{sign} {s.limit:g} {unit}"
            bounds = f"{s.limit_min:g}-{s.limit_max:g} {unit}"
            delay = "each reading" if s.episodic else f"{s.delay_s:g} s"
            hyst = f"{s.hysteresis:g} {unit}"
        else:
            limit, bounds, delay, hyst = "-", "-", f"{s.delay_s:g} s", "-"
        rows.append(f"| {s.label} | `{s.key}` | {s.priority.value} | {limit} | {bounds} | {delay} |"
                    f" {hyst} |")
    return "\n".join(rows)
