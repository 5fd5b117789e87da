"""Workstation choices become real driver instances through the source registry."""

from ketmonitor.clock import ManualClock
from ketmonitor.workstation import DeviceChoice, build_sources


def test_sources_are_built_by_name():
    sources = build_sources([DeviceChoice("oximeter", "nonin7", "/dev/ttyUSB9"),
                             DeviceChoice("nibp", "none")], clock=ManualClock())
    assert [type(s).__name__ for s in sources] == ["NoninSource"]
    assert sources[0].source_id == "oximeter"
