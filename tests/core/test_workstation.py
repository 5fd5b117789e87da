import pytest

from ketmonitor.errors import ConfigError
from ketmonitor.workstation import DeviceChoice, load_choices, save_choices


def test_choices_are_remembered_per_workstation(tmp_path):
    path = tmp_path / "workstation.json"
    assert load_choices(path) == []
    choices = [DeviceChoice("oximeter", "nonin2", "/dev/ttyUSB0"), DeviceChoice("nibp", "simulator")]
    save_choices(choices, path)
    assert load_choices(path) == choices


def test_bad_choices_and_files_are_rejected_clearly(tmp_path):
    with pytest.raises(ConfigError, match="needs a serial port"):
        DeviceChoice("oximeter", "masimo")
    with pytest.raises(ConfigError, match="not a nibp protocol"):
        DeviceChoice("nibp", "nonin2", "/dev/ttyUSB0")
    bad = tmp_path / "w.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not a valid workstation file"):
        load_choices(bad)
