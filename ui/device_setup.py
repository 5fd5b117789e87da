"""Device setup: pick protocol and port for the oximeter and the blood-pressure monitor, test the
connection with live decoded values, and remember the choice for this workstation."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QGridLayout, QLabel,
                               QPushButton, QVBoxLayout)

from ketmonitor.clock import Clock
from ketmonitor.errors import KetmonitorError
from ketmonitor.samples import DeviceStatus, Numeric
from ketmonitor.workstation import (NONE, ROLE_PROTOCOLS, ROLES, SIMULATOR, DeviceChoice,
                                    build_source, list_ports, protocol_descriptions)

from .bridge import SampleQueue

UNITS = {"spo2": "%", "pulse_rate": "/min", "perfusion_index": "%", "cuff_pressure": "mmHg",
         "nibp_systolic": "mmHg", "nibp_diastolic": "mmHg", "nibp_mean": "mmHg"}


class DeviceRow:
    def __init__(self, dialog: "DeviceSetupDialog", grid: QGridLayout, row: int, role: str):
        self.dialog, self.role = dialog, role
        descriptions = protocol_descriptions()
        self.protocol = QComboBox()
        for name in ROLE_PROTOCOLS[role]:
            self.protocol.addItem(f"{name} - {descriptions.get(name, '')}", name)
        self.port = QComboBox()
        self.port.setEditable(True)
        self.port.setMinimumWidth(260)
        self.test = QPushButton("Test connection")
        self.live = QLabel("not tested")
        self.live.setMinimumWidth(360)
        grid.addWidget(QLabel(role.upper()), row, 0)
        grid.addWidget(self.protocol, row, 1)
        grid.addWidget(self.port, row, 2)
        grid.addWidget(self.test, row, 3)
        grid.addWidget(self.live, row + 1, 1, 1, 3)
        self.test.clicked.connect(self.toggle_test)
        self.protocol.currentIndexChanged.connect(self._protocol_changed)
        self.source = None
        self.queue = SampleQueue()
        self.values: dict[str, str] = {}
        self.state = ""

    def _protocol_changed(self) -> None:
        needs_port = self.protocol.currentData() not in (SIMULATOR, NONE)
        self.port.setEnabled(needs_port)
        self.test.setEnabled(self.protocol.currentData() != NONE)

    def set_ports(self, ports: list) -> None:
        current = self.port.currentText()
        self.port.clear()
        for p in ports:
            self.port.addItem(p.label, p.device)
        if current:
            self.port.setEditText(current)

    def choice(self) -> DeviceChoice:
        port = self.port.currentData() if self.port.currentIndex() >= 0 and \
            self.port.currentText() == self.port.itemText(self.port.currentIndex()) else None
        port = port or self.port.currentText().strip() or None
        proto = self.protocol.currentData()
        return DeviceChoice(self.role, proto, port if proto not in (SIMULATOR, NONE) else None)

    def set_choice(self, choice: DeviceChoice) -> None:
        i = self.protocol.findData(choice.protocol)
        if i >= 0:
            self.protocol.setCurrentIndex(i)
        if choice.port:
            self.port.setEditText(choice.port)
        self._protocol_changed()

    def toggle_test(self) -> None:
        if self.source is not None:
            self.stop_test()
            return
        try:
            self.source = build_source(self.choice(), clock=Clock(), t0=None)
        except KetmonitorError as exc:
            self.live.setText(f"cannot test: {exc}")
            return
        if self.source is None:
            return
        self.values, self.state = {}, "opening..."
        self.source.start(self.queue)
        self.test.setText("Stop test")
        if self.role == "nibp" and "nibp" in self.source.capabilities:
            self.source.request_nibp()

    def stop_test(self) -> None:
        if self.source is not None:
            self.source.stop()
            self.source = None
        self.test.setText("Test connection")

    def poll(self) -> None:
        for s in self.queue.drain():
            if isinstance(s, Numeric) and s.metric in UNITS:
                self.values[s.metric] = "---" if s.value is None else f"{s.value:g}"
            elif isinstance(s, Numeric) and s.metric == "nibp_error":
                self.state = f"NIBP failed: {s.detail}"
            elif isinstance(s, DeviceStatus):
                self.state = s.message or ("connected" if s.connected else "disconnected")
        if self.source is not None or self.values:
            shown = "  ".join(f"{k} {v} {UNITS[k]}" for k, v in self.values.items())
            self.live.setText(f"{self.state}   {shown}".strip())


class DeviceSetupDialog(QDialog):
    def __init__(self, choices: list[DeviceChoice] | None = None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Devices on this workstation")
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("Choose the protocol and serial port of each bedside device. "
                             "Use 'Test connection' to see live decoded values before saving."))
        grid = QGridLayout()
        lay.addLayout(grid)
        self.rows = {role: DeviceRow(self, grid, 2 * i, role) for i, role in enumerate(ROLES)}
        self.refresh = QPushButton("Refresh ports")
        self.refresh.clicked.connect(self.refresh_ports)
        lay.addWidget(self.refresh)
        self.error = QLabel("")
        self.error.setStyleSheet("color: #f5c400;")
        lay.addWidget(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.Save | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.refresh_ports()
        for c in choices or [DeviceChoice("oximeter", SIMULATOR), DeviceChoice("nibp", SIMULATOR)]:
            self.rows[c.role].set_choice(c)
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._poll)
        self.timer.start(200)

    def refresh_ports(self) -> None:
        try:
            ports = list_ports()
        except Exception as exc:  # noqa: BLE001 - discovery failing must not close the dialog
            self.error.setText(f"port discovery failed: {exc}")
            ports = []
        for row in self.rows.values():
            row.set_ports(ports)

    def _poll(self) -> None:
        for row in self.rows.values():
            row.poll()

    def choices(self) -> list[DeviceChoice]:
        return [row.choice() for row in self.rows.values()]

    def accept(self) -> None:
        try:
            self.choices()
        except KetmonitorError as exc:
            self.error.setText(str(exc))
            return
        self._stop_tests()
        super().accept()

    def done(self, result: int) -> None:
        self._stop_tests()
        super().done(result)

    def _stop_tests(self) -> None:
        for row in self.rows.values():
            row.stop_test()
