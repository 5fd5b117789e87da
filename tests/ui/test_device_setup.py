"""The device setup screen against a real Nonin emulator on a pseudo-terminal."""

from devices.emulators.nonin import NoninEmulator
from ketmonitor.workstation import DeviceChoice
from ui.device_setup import DeviceSetupDialog


def test_test_connection_shows_live_decoded_values(qtbot):
    with NoninEmulator("uneventful", seed=1, format=2) as emu:
        dlg = DeviceSetupDialog([DeviceChoice("oximeter", "nonin2", emu.path),
                                 DeviceChoice("nibp", "none")])
        qtbot.addWidget(dlg)
        row = dlg.rows["oximeter"]
        assert row.choice() == DeviceChoice("oximeter", "nonin2", emu.path)
        row.test.click()
        qtbot.waitUntil(lambda: "spo2" in row.live.text() and "pulse_rate" in row.live.text(),
                        timeout=15000)
        spo2 = float(row.live.text().split("spo2 ")[1].split()[0])
        assert 90 <= spo2 <= 100
        dlg.reject()
        assert row.source is None  # closing stops the test reader


def test_missing_port_is_refused_with_a_message(qtbot):
    dlg = DeviceSetupDialog([DeviceChoice("oximeter", "simulator"), DeviceChoice("nibp", "none")])
    qtbot.addWidget(dlg)
    row = dlg.rows["oximeter"]
    row.protocol.setCurrentIndex(row.protocol.findData("masimo"))
    row.port.setEditText("")
    dlg.accept()
    assert "needs a serial port" in dlg.error.text()
    assert dlg.isVisible() or dlg.result() == 0
