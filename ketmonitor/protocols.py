"""Protocol templates: JSON data files shipped in ``ketmonitor/data/protocols`` and overridable by a
clinic folder (a clinic file with the same ``name`` replaces the shipped one).

A protocol sets the dose defaults, the scheduled checks (BP and rating scales, before the dose, at
minutes after the first dose, before discharge), alarm-limit defaults (``{metric: {"low", "high"}}``,
the form the alarm engine takes; SpO2 also ``"desat"``, the high-priority desaturation limit), the
baseline BP threshold, the minimum monitoring time, the pre-dose checklist and the discharge
criteria. Alarm limits are checked when the file is loaded exactly as the alarm engine would apply
them (the metric's range, the default range each limit may be set to, low below high, desaturation
at or below SpO2 low), so a protocol whose limits cannot be applied never reaches a check-in. Bad
files are rejected with a ConfigError naming the file and the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .alarms.conditions import DEFAULT_SPECS, AlarmConfig, limit_keys, with_field
from .errors import ConfigError
from .metrics import METRICS

BUILTIN_DIR = Path(__file__).parent / "data" / "protocols"
ROUTES = ("iv", "im", "intranasal", "sublingual", "oral")
CHECK_KINDS = ("bp", "scale")
PHASES = ("pre", "post", "discharge")
SCALE_NAMES = {"cadss": "CADSS", "cadss6": "CADSS-6", "moaas": "MOAA/S", "bprs_pos": "BPRS+",
               "rass": "RASS", "kset": "Side effects"}


@dataclass(frozen=True)
class Check:
    """One scheduled check. ``offset_s`` (after the first dose) is set for phase 'post' only."""

    id: str  # bp@pre, bp@40, cadss@discharge
    kind: str  # bp | scale
    phase: str  # pre | post | discharge
    offset_s: float | None = None
    scale: str | None = None

    @property
    def label(self) -> str:
        what = "Blood pressure" if self.kind == "bp" else SCALE_NAMES.get(self.scale,
                                                                           str(self.scale).upper())
        if self.phase == "pre":
            return f"{what} before the dose"
        if self.phase == "discharge":
            return f"{what} before discharge"
        return f"{what} at {self.offset_s / 60:g} min"


@dataclass(frozen=True)
class Item:
    id: str
    label: str


@dataclass(frozen=True)
class Protocol:
    name: str
    title: str
    version: str
    drug: str
    route: str
    dose: dict
    checks: tuple[Check, ...]
    alarm_limits: dict
    baseline_bp: dict  # {"systolic": 140, "diastolic": 90}: above either needs a reason to proceed
    min_monitoring_min: float
    pre_dose_checklist: tuple[Item, ...]
    discharge_criteria: tuple[Item, ...]
    # the minimum monitoring time counts from the last dose (REMS: at least 2 h after each dose)
    min_monitoring_from: str = "last_dose"  # or "first_dose"
    check_tolerance_min: float = 5.0  # a timed check is overdue this long after its time
    check_lead_min: float = 2.0  # and shown as due this long before
    description: str = ""
    source: str = ""  # the file it came from
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def alarm_limit_keys(self) -> dict[str, float]:
        """The alarm limits as ``{condition: limit}`` (what ``AlarmEngine.apply_limits`` takes)."""
        return limit_keys(self.alarm_limits)

    def checks_in(self, phase: str) -> list[Check]:
        return [c for c in self.checks if c.phase == phase]

    def check(self, check_id: str) -> Check:
        for c in self.checks:
            if c.id == check_id:
                return c
        raise ConfigError(f"protocol {self.name} has no check {check_id!r}")

    def baseline_bp_high(self, systolic: float | None, diastolic: float | None) -> bool:
        sys_limit, dia_limit = self.baseline_bp.get("systolic"), self.baseline_bp.get("diastolic")
        return bool((systolic is not None and sys_limit is not None and systolic > sys_limit)
                    or (diastolic is not None and dia_limit is not None and diastolic > dia_limit))


class _Reader:
    """Typed access to a JSON object that names the file and field path in every error."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, message: str):
        raise ConfigError(f"protocol file {self.path}: field '{where}': {message}")

    def get(self, obj: dict, key: str, types, where: str = "", *, required=True, default=None):
        name = f"{where}.{key}" if where else key
        if key not in obj:
            if required:
                self.fail(name, "is missing")
            return default
        value = obj[key]
        if types is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.fail(name, f"must be a number, not {value!r}")
            return float(value)
        if not isinstance(value, types) or (types is int and isinstance(value, bool)):
            tname = types.__name__ if isinstance(types, type) else "/".join(t.__name__ for t in types)
            self.fail(name, f"must be {tname}, not {type(value).__name__}")
        return value


def _items(r: _Reader, data: dict, key: str) -> tuple[Item, ...]:
    out, seen = [], set()
    for i, entry in enumerate(r.get(data, key, list)):
        where = f"{key}[{i}]"
        if not isinstance(entry, dict):
            r.fail(where, "must be an object with id and label")
        iid = r.get(entry, "id", str, where)
        if iid in seen:
            r.fail(f"{where}.id", f"duplicate id {iid!r}")
        seen.add(iid)
        out.append(Item(iid, r.get(entry, "label", str, where)))
    return tuple(out)


def _minutes(r: _Reader, value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or value > 24 * 60:
        r.fail(where, f"must be minutes after the dose (0-1440), not {value!r}")
    return float(value)


def _checks(r: _Reader, data: dict, known_scales: set[str] | None) -> tuple[Check, ...]:
    out: dict[str, Check] = {}
    for i, spec in enumerate(r.get(data, "checks", list)):
        where = f"checks[{i}]"
        if not isinstance(spec, dict):
            r.fail(where, "must be an object")
        kind = r.get(spec, "kind", str, where)
        if kind not in CHECK_KINDS:
            r.fail(f"{where}.kind", f"must be one of {', '.join(CHECK_KINDS)}, not {kind!r}")
        scale = None
        if kind == "scale":
            scale = r.get(spec, "scale", str, where)
            if known_scales is not None and scale not in known_scales:
                r.fail(f"{where}.scale", f"unknown scale {scale!r}; known: "
                       f"{', '.join(sorted(known_scales))}")
        base = "bp" if kind == "bp" else scale
        whens = [k for k in ("at", "at_min", "every_min") if k in spec]
        if len(whens) != 1:
            r.fail(where, "needs exactly one of 'at' (pre/discharge), 'at_min' or 'every_min'")
        times: list[tuple[str, float | None]] = []
        if "at" in spec:
            at = r.get(spec, "at", str, where)
            if at not in ("pre", "discharge"):
                r.fail(f"{where}.at", f"must be 'pre' or 'discharge', not {at!r}")
            times.append((at, None))
        elif "at_min" in spec:
            raw = spec["at_min"]
            values = raw if isinstance(raw, list) else [raw]
            if not values:
                r.fail(f"{where}.at_min", "must not be empty")
            times += [("post", _minutes(r, v, f"{where}.at_min")) for v in values]
        else:
            every = _minutes(r, spec["every_min"], f"{where}.every_min")
            if every <= 0:
                r.fail(f"{where}.every_min", "must be more than 0")
            start = _minutes(r, spec.get("from_min", every), f"{where}.from_min")
            stop = _minutes(r, r.get(spec, "to_min", float, where), f"{where}.to_min")
            if stop < start:
                r.fail(f"{where}.to_min", "must not be before from_min")
            t = start
            while t <= stop + 1e-9:
                times.append(("post", t))
                t += every
        for phase, minutes in times:
            cid = f"{base}@{phase if minutes is None else f'{minutes:g}'}"
            if cid in out:
                r.fail(where, f"check {cid} is scheduled twice")
            out[cid] = Check(cid, kind, phase, None if minutes is None else minutes * 60, scale)
    order = {"pre": 0, "post": 1, "discharge": 2}
    return tuple(sorted(out.values(), key=lambda c: (order[c.phase], c.offset_s or 0, c.id)))


def _alarm_limits(r: _Reader, data: dict) -> dict:
    limits = r.get(data, "alarm_limits", dict)
    out = {}
    for metric, lim in limits.items():
        where = f"alarm_limits.{metric}"
        if metric not in METRICS:
            r.fail(where, f"unknown metric; known: {', '.join(sorted(METRICS))}")
        sides = [k[len(metric) + 1:] for k, spec in DEFAULT_SPECS.items() if spec.metric == metric]
        if not sides:
            r.fail(where, f"{metric} has no limit alarms")
        if not isinstance(lim, dict) or not lim or set(lim) - set(sides):
            r.fail(where, f"must be an object with {' and/or '.join(repr(s) for s in sides)}")
        values = {side: r.get(lim, side, float, where, required=False) for side in sides}
        values = {k: v for k, v in values.items() if v is not None}
        m = METRICS[metric]
        for name, value in values.items():
            if not m.in_range(value):
                r.fail(f"{where}.{name}", f"{value:g} is outside {m.low:g}-{m.high:g} {m.unit}")
            key = f"{metric}_{name}"
            try:  # the range a limit may be set to, as the alarm engine will judge it
                with_field(DEFAULT_SPECS[key], "limit", value)
            except ConfigError as exc:
                r.fail(f"{where}.{name}", str(exc))
        low, high = values.get("low"), values.get("high")
        if low is not None and high is not None and low >= high:
            r.fail(where, f"low {low:g} must be below high {high:g}")
        out[metric] = values
    try:  # the set as a whole, laid over the default limits (desaturation <= SpO2 low, ...)
        AlarmConfig.from_dict({"limits": out})
    except ConfigError as exc:
        r.fail("alarm_limits", str(exc))
    return out


def parse_protocol(data, path: Path | str = "<protocol>", *,
                   known_scales: set[str] | None = None) -> Protocol:
    r = _Reader(Path(path))
    if not isinstance(data, dict):
        raise ConfigError(f"protocol file {path}: must hold a JSON object")
    fmt = r.get(data, "format", int)
    if fmt != 1:
        r.fail("format", f"unsupported format {fmt} (this version reads format 1)")
    name = r.get(data, "name", str)
    if not name or not all(ch.isalnum() or ch in "-_" for ch in name):
        r.fail("name", "must be letters, digits, - or _")
    route = r.get(data, "route", str)
    if route not in ROUTES:
        r.fail("route", f"must be one of {', '.join(ROUTES)}, not {route!r}")
    dose = r.get(data, "dose", dict)
    if "amount" in dose and dose["amount"] is not None:
        amount = r.get(dose, "amount", float, "dose")
        if amount <= 0:
            r.fail("dose.amount", "must be more than 0")
    r.get(dose, "unit", str, "dose")
    # limits a dose outside of needs a recorded reason (SessionWorkflow.give_dose)
    if "interval_min" in dose:
        interval = r.get(dose, "interval_min", float, "dose")
        if not 0 <= interval <= 240:
            r.fail("dose.interval_min", "must be 0-240 minutes between doses")
    if "max_doses" in dose:
        n = r.get(dose, "max_doses", int, "dose")
        if n < 1:
            r.fail("dose.max_doses", "must be at least 1")
    if "max_total" in dose:
        if r.get(dose, "max_total", float, "dose") <= 0:
            r.fail("dose.max_total", "must be more than 0 (in the unit of dose.unit)")
    start_from = r.get(data, "min_monitoring_from", str, required=False, default="last_dose")
    if start_from not in ("first_dose", "last_dose"):
        r.fail("min_monitoring_from", f"must be 'first_dose' or 'last_dose', not {start_from!r}")
    bp = r.get(data, "baseline_bp", dict)
    for key in bp:
        if key not in ("systolic", "diastolic"):
            r.fail(f"baseline_bp.{key}", "only 'systolic' and 'diastolic' are allowed")
        value = r.get(bp, key, float, "baseline_bp")
        if not 60 <= value <= 250:
            r.fail(f"baseline_bp.{key}", f"{value:g} mmHg is not a plausible threshold")
    min_mon = r.get(data, "min_monitoring_min", float)
    if not 0 < min_mon <= 24 * 60:
        r.fail("min_monitoring_min", "must be more than 0 and at most 1440")
    tolerance = r.get(data, "check_tolerance_min", float, required=False, default=5.0)
    lead = r.get(data, "check_lead_min", float, required=False, default=2.0)
    for key, value in (("check_tolerance_min", tolerance), ("check_lead_min", lead)):
        if not 0 <= value <= 60:
            r.fail(key, "must be 0-60 minutes")
    return Protocol(
        name=name, title=r.get(data, "title", str), version=str(r.get(data, "version", (str, int))),
        drug=r.get(data, "drug", str), route=route, dose=dict(dose),
        checks=_checks(r, data, known_scales), alarm_limits=_alarm_limits(r, data),
        baseline_bp={k: float(v) for k, v in bp.items()}, min_monitoring_min=min_mon,
        min_monitoring_from=start_from,
        pre_dose_checklist=_items(r, data, "pre_dose_checklist"),
        discharge_criteria=_items(r, data, "discharge_criteria"),
        check_tolerance_min=tolerance, check_lead_min=lead,
        description=r.get(data, "description", str, required=False, default=""),
        source=str(path), raw=data)


def load_protocol_file(path: Path | str, *, known_scales: set[str] | None = None) -> Protocol:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"protocol file {path}: cannot be read: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"protocol file {path}: not valid JSON: {exc}") from None
    return parse_protocol(data, path, known_scales=known_scales)


def load_protocols(clinic_dir: Path | str | None = None, *,
                   known_scales: set[str] | None = None) -> dict[str, Protocol]:
    """The shipped protocols, with a clinic folder's files added or replacing them by name."""
    if known_scales is None:
        from .scales import load_scales

        known_scales = set(load_scales())
    found: dict[str, Protocol] = {}
    dirs = [BUILTIN_DIR]
    if clinic_dir is not None:
        clinic_dir = Path(clinic_dir)
        if not clinic_dir.is_dir():
            raise ConfigError(f"clinic protocol folder {clinic_dir} does not exist")
        dirs.append(clinic_dir)
    for folder in dirs:
        names: dict[str, Path] = {}
        for path in sorted(folder.glob("*.json")):
            p = load_protocol_file(path, known_scales=known_scales)
            if p.name in names:
                raise ConfigError(f"protocol file {path}: field 'name': {p.name!r} is also used by"
                                  f" {names[p.name]}")
            names[p.name] = path
            found[p.name] = p
    return found


def load_protocol(name: str, clinic_dir: Path | str | None = None) -> Protocol:
    protocols = load_protocols(clinic_dir)
    try:
        return protocols[name]
    except KeyError:
        raise ConfigError(f"unknown protocol {name!r}; known: {', '.join(sorted(protocols))}"
                          ) from None
