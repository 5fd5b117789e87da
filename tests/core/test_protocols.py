"""Protocol templates: the shipped files, clinic overrides, and bad files rejected clearly."""

from __future__ import annotations

import json

import pytest

from ketmonitor.errors import ConfigError
from ketmonitor.metrics import METRICS
from ketmonitor.protocols import BUILTIN_DIR, load_protocol, load_protocols

PROTOCOLS = load_protocols()


def test_shipped_protocols():
    assert set(PROTOCOLS) == {"iv-infusion", "im-injection", "esketamine-intranasal",
                              "sublingual-oral"}
    for p in PROTOCOLS.values():
        assert set(p.alarm_limits) <= set(METRICS)
        assert p.checks_in("pre") and p.discharge_criteria and p.pre_dose_checklist
        assert "bp@pre" in {c.id for c in p.checks}  # nothing is dosed without a baseline BP


def test_esketamine_follows_the_label():
    p = PROTOCOLS["esketamine-intranasal"]
    assert [c.id for c in p.checks if c.kind == "bp"] == ["bp@pre", "bp@40", "bp@discharge"]
    assert p.min_monitoring_min >= 120
    assert p.dose["amount"] == 28 and p.dose["interval_min"] == 5 and p.route == "intranasal"
    assert {"cadss@pre", "cadss@40", "cadss@discharge"} <= {c.id for c in p.checks}
    assert p.baseline_bp_high(141, 80) and p.baseline_bp_high(130, 91)
    assert not p.baseline_bp_high(140, 90)


def test_iv_infusion_bp_every_10_min_during_the_infusion():
    p = PROTOCOLS["iv-infusion"]
    timed = [c.offset_s / 60 for c in p.checks if c.kind == "bp" and c.phase == "post"]
    assert timed[:4] == [10, 20, 30, 40] and max(timed) > p.dose["infusion_min"]
    assert p.dose == {"amount": 0.5, "unit": "mg/kg", "infusion_min": 40}
    assert p.alarm_limits["spo2"] == {"low": 90.0, "desat": 85.0}
    assert p.check("moaas@20").label == "MOAA/S at 20 min"


def test_clinic_folder_overrides_and_adds(tmp_path):
    data = json.loads((BUILTIN_DIR / "im-injection.json").read_text())
    data["min_monitoring_min"] = 90
    (tmp_path / "im.json").write_text(json.dumps(data))
    data2 = dict(data, name="im-clinic-special", title="Our IM protocol")
    (tmp_path / "special.json").write_text(json.dumps(data2))
    loaded = load_protocols(tmp_path)
    assert loaded["im-injection"].min_monitoring_min == 90
    assert loaded["im-injection"].source == str(tmp_path / "im.json")
    assert loaded["im-clinic-special"].title == "Our IM protocol"
    assert load_protocol("iv-infusion", tmp_path).name == "iv-infusion"


def test_unknown_protocol_and_folder():
    with pytest.raises(ConfigError, match="unknown protocol 'ivv'; known: esketamine-intranasal"):
        load_protocol("ivv")
    with pytest.raises(ConfigError, match="does not exist"):
        load_protocols("/nonexistent/protocols")


BAD = [
    (lambda d: d.pop("name"), "field 'name': is missing"),
    (lambda d: d.update(route="rectal"), "field 'route': must be one of"),
    (lambda d: d.update(format=2), "field 'format': unsupported format 2"),
    (lambda d: d["checks"].append({"kind": "bp", "at_min": -5}), "field 'checks[9].at_min'"),
    (lambda d: d["checks"].append({"kind": "scale", "scale": "hamd", "at_min": 5}),
     "field 'checks[9].scale': unknown scale 'hamd'"),
    (lambda d: d["checks"].append({"kind": "bp", "at_min": 40}), "check bp@40 is scheduled twice"),
    (lambda d: d["checks"].append({"kind": "bp", "at": "pre", "at_min": 3}),
     "field 'checks[9]': needs exactly one of"),
    (lambda d: d["checks"].append({"kind": "ecg", "at": "pre"}), "field 'checks[9].kind'"),
    (lambda d: d["alarm_limits"].update(spo3={"low": 90}), "field 'alarm_limits.spo3': unknown"),
    (lambda d: d["alarm_limits"].update(pulse_rate={"low": 95, "high": 90}),
     "field 'alarm_limits.pulse_rate': low 95 must be below high 90"),
    (lambda d: d["alarm_limits"].update(spo2={"low": 90, "high": 99}),  # no such alarm
     "field 'alarm_limits.spo2': must be an object with 'desat' and/or 'low'"),
    (lambda d: d["alarm_limits"].update(spo2={"low": 120}), "'alarm_limits.spo2.low': 120 is outside"),
    (lambda d: d["alarm_limits"].update(spo2={"low": "90"}), "'alarm_limits.spo2.low': must be a number"),
    (lambda d: d["alarm_limits"].update(spo2={"low": 0}),
     "'alarm_limits.spo2.low': SpO2 low limit 0 % is below the lowest this clinic allows (80 %)"),
    (lambda d: d["alarm_limits"].update(spo2={"low": 90, "desat": 50}),
     "'alarm_limits.spo2.desat': SpO2 desaturation limit 50 % is below the lowest"),
    (lambda d: d["alarm_limits"].update(spo2={"low": 88, "desat": 89}),
     "field 'alarm_limits': SpO2 desaturation limit 89 must not be above SpO2 low 88"),
    (lambda d: d["alarm_limits"].update(pulse_rate={"desat": 40}),
     "field 'alarm_limits.pulse_rate': must be an object with 'low' and/or 'high'"),
    (lambda d: d["alarm_limits"].update(nibp_systolic={"high": 280}),
     "'alarm_limits.nibp_systolic.high': NIBP systolic high limit 280 mmHg is above the highest"),
    (lambda d: d["baseline_bp"].update(systolic=20), "field 'baseline_bp.systolic'"),
    (lambda d: d.update(min_monitoring_min=0), "field 'min_monitoring_min'"),
    (lambda d: d["discharge_criteria"].append({"id": "ambulates", "label": "x"}),
     "field 'discharge_criteria[6].id': duplicate"),
    (lambda d: d["pre_dose_checklist"].append("consent"), "field 'pre_dose_checklist[7]'"),
]


@pytest.mark.parametrize("mutate, message", BAD)
def test_bad_protocol_file_is_rejected_naming_file_and_field(tmp_path, mutate, message):
    data = json.loads((BUILTIN_DIR / "iv-infusion.json").read_text())
    mutate(data)
    path = tmp_path / "clinic-iv.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as err:
        load_protocols(tmp_path)
    assert f"protocol file {path}" in str(err.value)
    assert message in str(err.value)


def test_not_json_and_duplicate_names(tmp_path):
    (tmp_path / "a.json").write_text("{\"format\": 1,")
    with pytest.raises(ConfigError, match=r"a\.json: not valid JSON"):
        load_protocols(tmp_path)
    (tmp_path / "a.json").unlink()
    data = (BUILTIN_DIR / "iv-infusion.json").read_text()
    (tmp_path / "one.json").write_text(data)
    (tmp_path / "two.json").write_text(data)
    with pytest.raises(ConfigError, match=r"two\.json: field 'name': 'iv-infusion' is also used by"):
        load_protocols(tmp_path)


def test_alarm_engine_takes_every_protocols_limits():
    from ketmonitor.alarms.conditions import AlarmConfig

    for p in PROTOCOLS.values():
        config = AlarmConfig.from_dict({"limits": p.alarm_limits})
        for metric, bounds in p.alarm_limits.items():
            for side, value in bounds.items():
                assert config.specs[f"{metric}_{side}"].limit == value
        assert p.alarm_limit_keys["spo2_desat"] == config.specs["spo2_desat"].limit


def test_a_protocol_sets_the_desaturation_limit(tmp_path):
    data = json.loads((BUILTIN_DIR / "iv-infusion.json").read_text())
    data.update(name="iv-strict")
    data["alarm_limits"]["spo2"] = {"low": 92, "desat": 88}
    (tmp_path / "strict.json").write_text(json.dumps(data))
    p = load_protocols(tmp_path)["iv-strict"]
    assert p.alarm_limits["spo2"] == {"low": 92, "desat": 88}
    assert {k: v for k, v in p.alarm_limit_keys.items() if k.startswith("spo2")} == {
        "spo2_low": 92, "spo2_desat": 88}


def test_discharge_criteria_name_no_moaas_score_that_depends_on_the_variant():
    # MOAA/S 5 is "alert" on the 0-5 form but not on the 1-6 one: say what is meant instead
    import re

    for p in PROTOCOLS.values():
        for c in p.discharge_criteria:
            assert not re.search(r"MOAA/S\s*\d", c.label), (p.name, c.label)
