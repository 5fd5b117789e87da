"""Rating scales: shipped data files, scoring tables, variants, clinic wording, bad files."""

from __future__ import annotations

import json

import pytest

from ketmonitor.errors import ConfigError, WorkflowError
from ketmonitor.scales import BUILTIN_DIR, load_scales, parse_scale

SCALES = load_scales()


def test_shipped_scales():
    assert set(SCALES) == {"cadss", "cadss6", "moaas", "bprs_pos", "rass", "kset"}
    cadss = SCALES["cadss"]
    assert cadss.item_numbers == list(range(1, 24))
    v = cadss.variant()
    assert (v.min, v.max) == (0, 4)
    # every item in exactly one subscale
    members = sorted(n for group in cadss.subscales.values() for n in group)
    assert members == list(range(1, 24))
    assert set(cadss.subscales) == {"depersonalization", "derealization", "amnesia"}
    assert SCALES["cadss6"].item_numbers == [1, 2, 6, 7, 15, 22]
    assert len(SCALES["bprs_pos"].items) == 4
    assert not any(s.licensed_wording for s in SCALES.values())


CASES = [
    # scale, variant, values, total, subscales
    ("cadss", None, {n: 4 for n in range(1, 24)}, 92,
     {"depersonalization": 28, "derealization": 48, "amnesia": 16}),
    ("cadss", None, {n: 0 for n in range(1, 24)}, 0,
     {"depersonalization": 0, "derealization": 0, "amnesia": 0}),
    ("cadss", None, {**{n: 0 for n in range(1, 24)}, 3: 2, 14: 1, 1: 3}, 6,
     {"depersonalization": 2, "derealization": 3, "amnesia": 1}),
    ("cadss6", None, {1: 4, 2: 4, 6: 4, 7: 4, 15: 4, 22: 4}, 24, {}),
    ("cadss6", None, {1: 1, 2: 0, 6: 2, 7: 0, 15: 3, 22: 1}, 7, {}),
    ("moaas", "0-5", {1: 0}, 0, {}),
    ("moaas", "1-6", {1: 6}, 6, {}),
    ("rass", None, {1: -5}, -5, {}),
    ("rass", None, {1: 4}, 4, {}),
    ("bprs_pos", "0-6", {1: 6, 2: 6, 3: 6, 4: 6}, 24, {}),
    ("bprs_pos", "1-7", {1: 1, 2: 2, 3: 1, 4: 7}, 11, {}),
    ("kset", None, {**{n: 0 for n in range(1, 15)}, 1: 2, 3: 1}, 3, {"present": 2}),
]


@pytest.mark.parametrize("scale, variant, values, total, subscales", CASES)
def test_scoring_table(scale, variant, values, total, subscales):
    score = SCALES[scale].score(values, variant)
    assert score.complete and score.total == total
    assert score.subscales == subscales
    assert score.variant == (variant or SCALES[scale].default_variant)
    assert score.version == SCALES[scale].version


def test_incomplete_entry_has_no_total_but_complete_subscales():
    values = {n: 1 for n in (14, 15, 22, 23)}  # just the amnesia items
    score = SCALES["cadss"].score(values)
    assert not score.complete and score.total is None
    assert score.subscales == {"amnesia": 4}


@pytest.mark.parametrize("scale, variant, values, message", [
    ("cadss", None, {1: 5}, "item 1: 5 is outside 0..4"),
    ("cadss", None, {24: 0}, "has no item 24"),
    ("cadss", None, {"x": 1}, "not an item number"),
    ("cadss", None, {2: 1.5}, "not a whole number"),
    ("moaas", "1-6", {1: 0}, "outside 1..6"),
    ("moaas", "2-7", {1: 3}, "no variant '2-7'"),
    ("rass", None, {1: 5}, "outside -5..4"),
    ("cadss6", None, {3: 1}, "has no item 3"),
])
def test_bad_scores_are_refused(scale, variant, values, message):
    with pytest.raises(WorkflowError, match=message):
        SCALES[scale].score(values, variant)


def test_clinic_loads_licensed_wording_without_changing_scoring(tmp_path):
    (tmp_path / "cadss-licensed.json").write_text(json.dumps({
        "labels_for": "cadss", "labels": {"1": "Licensed wording of item one"},
        "anchors": {"default": {"4": "Extremely (licensed)"}}}))
    scales = load_scales(tmp_path)
    cadss = scales["cadss"]
    assert cadss.items[0].label == "Licensed wording of item one"
    assert cadss.items[1].label == SCALES["cadss"].items[1].label
    assert cadss.variant().anchors[4] == "Extremely (licensed)"
    assert cadss.licensed_wording and cadss.source.endswith("cadss-licensed.json")
    assert cadss.score({n: 4 for n in range(1, 24)}).total == 92


def test_clinic_file_replaces_a_scale_by_id(tmp_path):
    data = json.loads((BUILTIN_DIR / "rass.json").read_text())
    data["title"] = "RASS (clinic copy)"
    (tmp_path / "rass.json").write_text(json.dumps(data))
    assert load_scales(tmp_path)["rass"].title == "RASS (clinic copy)"


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d.pop("id"), "'id'"),
    (lambda d: d.update(scoring="average"), "'scoring'"),
    (lambda d: d["items"].append({"n": 1, "label": "again"}), "'items[23].n'"),
    (lambda d: d.update(subscales={"amnesia": [99]}), "'subscales.amnesia'"),
    (lambda d: d.update(max=0), "'variants.default'"),
])
def test_bad_scale_file_is_rejected_naming_file_and_field(tmp_path, mutate, field):
    data = json.loads((BUILTIN_DIR / "cadss.json").read_text())
    mutate(data)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as err:
        load_scales(tmp_path)
    assert str(path) in str(err.value) and field in str(err.value)


def test_overlay_for_unknown_item_is_rejected(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"labels_for": "cadss6", "labels": {"3": "no"}}))
    with pytest.raises(ConfigError, match=r"x\.json: field 'labels\.3': CADSS-6 has no item 3"):
        load_scales(tmp_path)


def test_not_json_is_rejected(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="bad.json: not valid JSON"):
        load_scales(tmp_path)
    with pytest.raises(ConfigError, match="must hold a JSON object"):
        parse_scale([], "list.json")
