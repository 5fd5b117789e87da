"""Rating scales as data files (``ketmonitor/data/scales/*.json``) and their scoring.

The shipped files carry short labels written for this app; item wording of the published scales is
copyrighted. A clinic holding a licence can load the full wording from its own folder: a file with
``"labels_for": "<scale id>"`` replaces item labels (and optionally anchors) without touching
scoring; a file with the same ``id`` as a shipped scale replaces it entirely.

Scoring kinds: ``sum`` (total = sum of items, subscales = sums of their items), ``single`` (one item,
total = its value; MOAA/S, RASS), ``checklist`` (severity per symptom; total = sum, subscale
``present`` = how many symptoms are present). Scores are stored with the scale's version and the
variant (e.g. MOAA/S 0-5 or 1-6).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import ConfigError, WorkflowError

BUILTIN_DIR = Path(__file__).parent / "data" / "scales"
SCORINGS = ("sum", "single", "checklist")


@dataclass(frozen=True)
class ScaleItem:
    n: int  # the item's number on the published form
    label: str


@dataclass(frozen=True)
class Variant:
    name: str
    min: int
    max: int
    anchors: dict  # {score: label}


@dataclass(frozen=True)
class ScaleScore:
    scale: str
    version: str
    variant: str
    items: dict  # {"1": 3, ...} in item order
    total: float | None  # None until every item is entered
    subscales: dict
    complete: bool


@dataclass(frozen=True)
class Scale:
    id: str
    title: str
    short: str
    version: str
    scoring: str
    items: tuple[ScaleItem, ...]
    variants: dict  # name -> Variant
    default_variant: str
    subscales: dict = field(default_factory=dict)  # name -> tuple of item numbers
    note: str = ""
    licensed_wording: bool = False
    source: str = ""

    def variant(self, name: str | None = None) -> Variant:
        name = name or self.default_variant
        try:
            return self.variants[name]
        except KeyError:
            raise WorkflowError(f"{self.short} has no variant {name!r}; variants: "
                                f"{', '.join(self.variants)}") from None

    @property
    def item_numbers(self) -> list[int]:
        return [i.n for i in self.items]

    def score(self, values: dict, variant: str | None = None) -> ScaleScore:
        """Check and score ``values`` ({item number: score}; keys may be int or str).

        Missing items make the entry incomplete (no total); out-of-range or unknown items raise
        WorkflowError naming the item.
        """
        v = self.variant(variant)
        numbers = set(self.item_numbers)
        items: dict[int, int] = {}
        for key, value in values.items():
            try:
                n = int(key)
            except (TypeError, ValueError):
                raise WorkflowError(f"{self.short}: {key!r} is not an item number") from None
            if n not in numbers:
                raise WorkflowError(f"{self.short} has no item {n}")
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
                raise WorkflowError(f"{self.short} item {n}: {value!r} is not a whole number")
            if not v.min <= value <= v.max:
                raise WorkflowError(f"{self.short} item {n}: {value:g} is outside {v.min}..{v.max}")
            items[n] = int(value)
        complete = len(items) == len(numbers)
        total = float(sum(items.values())) if complete else None
        subscales: dict[str, float] = {}
        for name, members in self.subscales.items():
            if all(m in items for m in members):
                subscales[name] = float(sum(items[m] for m in members))
        if self.scoring == "checklist":
            subscales["present"] = float(sum(1 for x in items.values() if x > v.min))
        return ScaleScore(self.id, self.version, v.name, {str(n): items[n] for n in sorted(items)},
                          total, subscales, complete)


def _fail(path, where, message):
    raise ConfigError(f"scale file {path}: field '{where}': {message}")


def _int(path, value, where) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(path, where, f"must be a whole number, not {value!r}")
    return value


def _anchors(path, raw, where, lo, hi) -> dict:
    if not isinstance(raw, dict):
        _fail(path, where, "must be an object {score: label}")
    out = {}
    for key, label in raw.items():
        try:
            k = int(key)
        except ValueError:
            _fail(path, f"{where}.{key}", "keys must be scores")
        if not lo <= k <= hi:
            _fail(path, f"{where}.{key}", f"score outside {lo}..{hi}")
        if not isinstance(label, str):
            _fail(path, f"{where}.{key}", "label must be text")
        out[k] = label
    return out


def parse_scale(data, path: Path | str = "<scale>") -> Scale:
    if not isinstance(data, dict):
        raise ConfigError(f"scale file {path}: must hold a JSON object")

    def req(key, types):
        if key not in data:
            _fail(path, key, "is missing")
        if not isinstance(data[key], types) or isinstance(data[key], bool):
            _fail(path, key, f"has the wrong type ({type(data[key]).__name__})")
        return data[key]

    if req("format", int) != 1:
        _fail(path, "format", f"unsupported format {data['format']}")
    sid = req("id", str)
    scoring = req("scoring", str)
    if scoring not in SCORINGS:
        _fail(path, "scoring", f"must be one of {', '.join(SCORINGS)}")
    items, seen = [], set()
    for i, raw in enumerate(req("items", list)):
        if not isinstance(raw, dict) or "n" not in raw or "label" not in raw:
            _fail(path, f"items[{i}]", "must be an object with n and label")
        n = _int(path, raw["n"], f"items[{i}].n")
        if n in seen:
            _fail(path, f"items[{i}].n", f"item {n} appears twice")
        seen.add(n)
        items.append(ScaleItem(n, str(raw["label"])))
    if not items:
        _fail(path, "items", "must not be empty")
    if scoring == "single" and len(items) != 1:
        _fail(path, "items", "a single-item scale has exactly one item")
    variants = {}
    raw_variants = data.get("variants") or {"default": {k: data[k] for k in ("min", "max", "anchors")
                                                        if k in data}}
    if not isinstance(raw_variants, dict):
        _fail(path, "variants", "must be an object {name: {min, max, anchors}}")
    for name, raw in raw_variants.items():
        where = f"variants.{name}"
        if not isinstance(raw, dict) or "min" not in raw or "max" not in raw:
            _fail(path, where, "needs min and max")
        lo, hi = _int(path, raw["min"], f"{where}.min"), _int(path, raw["max"], f"{where}.max")
        if lo >= hi:
            _fail(path, where, "min must be below max")
        variants[name] = Variant(name, lo, hi, _anchors(path, raw.get("anchors", {}),
                                                        f"{where}.anchors", lo, hi))
    default = data.get("default_variant", next(iter(variants)))
    if default not in variants:
        _fail(path, "default_variant", f"{default!r} is not one of the variants")
    subscales = {}
    for name, members in (data.get("subscales") or {}).items():
        if not isinstance(members, list) or not members:
            _fail(path, f"subscales.{name}", "must be a list of item numbers")
        for m in members:
            if m not in seen:
                _fail(path, f"subscales.{name}", f"item {m} is not an item of this scale")
        subscales[name] = tuple(members)
    return Scale(sid, req("title", str), req("short", str), str(req("version", (str, int))),
                 scoring, tuple(items), variants, default, subscales,
                 note=str(data.get("note", "")), licensed_wording=bool(data.get("licensed_wording")),
                 source=str(path))


def _apply_labels(scale: Scale, data: dict, path: Path) -> Scale:
    labels = data.get("labels")
    if not isinstance(labels, dict):
        _fail(path, "labels", "must be an object {item number: wording}")
    numbers = set(scale.item_numbers)
    for key in labels:
        if not str(key).isdigit() or int(key) not in numbers:
            _fail(path, f"labels.{key}", f"{scale.short} has no item {key}")
    items = tuple(replace(i, label=str(labels.get(str(i.n), i.label))) for i in scale.items)
    variants = dict(scale.variants)
    for name, anchors in (data.get("anchors") or {}).items():
        if name not in variants:
            _fail(path, f"anchors.{name}", f"{scale.short} has no variant {name!r}")
        v = variants[name]
        variants[name] = replace(v, anchors={**v.anchors,
                                             **_anchors(path, anchors, f"anchors.{name}", v.min,
                                                        v.max)})
    return replace(scale, items=items, variants=variants, licensed_wording=True, source=str(path))


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"scale file {path}: cannot be read: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"scale file {path}: not valid JSON: {exc}") from None


def load_scales(clinic_dir: Path | str | None = None) -> dict[str, Scale]:
    scales: dict[str, Scale] = {}
    for path in sorted(BUILTIN_DIR.glob("*.json")):
        s = parse_scale(_read(path), path)
        scales[s.id] = s
    if clinic_dir is not None:
        clinic_dir = Path(clinic_dir)
        if not clinic_dir.is_dir():
            raise ConfigError(f"clinic scale folder {clinic_dir} does not exist")
        overlays = []
        for path in sorted(clinic_dir.glob("*.json")):
            data = _read(path)
            if isinstance(data, dict) and "labels_for" in data:
                overlays.append((path, data))
            else:
                s = parse_scale(data, path)
                scales[s.id] = s
        for path, data in overlays:
            target = data["labels_for"]
            if target not in scales:
                _fail(path, "labels_for", f"unknown scale {target!r}")
            scales[target] = _apply_labels(scales[target], data, path)
    return scales
