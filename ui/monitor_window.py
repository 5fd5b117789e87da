"""The bedside screen: numeric tiles, sweeping pleth, whole-session trends, session clocks, device
states and a banner area for alarms and due tasks.

The window takes the running MonitorRuntime in its constructor and listens to its dispatcher through
a queue; all drawing happens on a 30 Hz timer on the main thread.
"""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QMainWindow, QPushButton, QSizePolicy,
                               QVBoxLayout, QWidget)

from ketmonitor.errors import KetmonitorError
from ketmonitor.metrics import METRICS
from ketmonitor.samples import (INFORMATIONAL, Condition, DeviceStatus, Numeric, SessionEvent,
                                WaveformChunk)

from . import theme
from .alarms import install_alarm_ui
from .bridge import FrameTimer, SampleQueue
from .tiles import NibpTile, NumericTile
from .trends import TrendWidget
from .waveform import PlethSweepWidget

CONDITION_TEXT = {
    Condition.SENSOR_OFF: "sensor off", Condition.SEARCHING: "searching",
    Condition.SEARCHING_TOO_LONG: "searching too long", Condition.ARTIFACT: "artifact",
    Condition.LOW_PERFUSION: "low perfusion", Condition.DISCONNECTED: "disconnected",
    Condition.NO_DATA: "no data", Condition.NIBP_BUSY: "measuring", Condition.NIBP_FAILED: "failed",
    Condition.HELD: "value held", Condition.SENSOR_FAULT: "sensor fault",
    Condition.SMARTPOINT: "SmartPoint", Condition.SPO2_DROPPING: "SpO2 dropping",
    Condition.PI_INVALID: "PI invalid",
}


def hms(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _label(text: str, px: int, colour: str = theme.TEXT, bold: bool = False) -> QLabel:
    lab = QLabel(text)
    f = lab.font()
    f.setPixelSize(px)
    f.setBold(bold)
    lab.setFont(f)
    lab.setStyleSheet(f"color: {colour};")
    return lab


class DeviceChip(QLabel):
    def __init__(self, source_id: str):
        super().__init__(f"{source_id}: connecting")
        self.source_id = source_id
        self.setStyleSheet(f"color: {theme.DIM}; padding: 2px 8px;")
        self.connected: bool | None = None

    def show_status(self, status: DeviceStatus) -> None:
        self.connected = status.connected
        problems = status.conditions - INFORMATIONAL
        words = [CONDITION_TEXT.get(c, c.value.replace("_", " ")) for c in sorted(problems)]
        notes = [CONDITION_TEXT.get(c, c.value.replace("_", " "))
                 for c in sorted(status.conditions & INFORMATIONAL)]
        if not status.connected:
            text, colour = "DISCONNECTED", theme.ALARM_COLOURS["medium"]
        elif words:
            text, colour = ", ".join(words + notes), theme.ALARM_COLOURS["low"]
        else:  # a good or neutral note (SmartPoint) is no warning
            text = "connected" + (f" ({', '.join(notes)})" if notes else "")
            colour = theme.PARAMETER_COLOURS["pulse_rate"]
        self.setText(f"{self.source_id}: {text}")
        self.setToolTip(status.message)
        self.setStyleSheet(f"color: {colour}; padding: 2px 8px; border: 1px solid {colour};"
                           f" border-radius: 4px;")


class MonitorWindow(QMainWindow):
    nibp_requested = Signal()
    closing = Signal()

    def __init__(self, runtime, *, title: str = "ketmonitor", fps: float = 30.0, parent=None):
        super().__init__(parent)
        self.runtime = runtime
        self.clock = runtime.clock
        self.setWindowTitle(title)
        self.setStyleSheet(theme.STYLESHEET)
        self.dose_mono: float | None = None
        self._pending_bp: dict[str, Numeric] = {}
        self._last_slow = -1e9
        self.queue = SampleQueue()
        runtime.add_listener(self.queue)
        self._build()
        alarms = getattr(runtime, "alarms", None)  # the AlarmEngine attached by the runtime
        self.alarm_ui = install_alarm_ui(self, alarms) if alarms is not None else None
        self.frames = FrameTimer(self.queue, self.frame, fps, self)

    # -- layout ------------------------------------------------------------------------------
    def _build(self) -> None:
        root = QWidget()
        root.setObjectName("monitorRoot")
        self.setCentralWidget(root)
        outer = QVBoxLayout(root)
        outer.setContentsMargins(6, 6, 6, 6)
        outer.setSpacing(6)

        top = QFrame()
        top.setObjectName("topBar")
        bar = QHBoxLayout(top)
        self.title_label = _label(self.windowTitle(), 20, bold=True)
        self.session_label = _label("session 0:00:00", 20)
        self.dose_label = _label("no dose yet", 20, theme.DIM)
        self.time_label = _label("", 20)
        bar.addWidget(self.title_label)
        bar.addSpacing(24)
        bar.addWidget(self.session_label)
        bar.addSpacing(24)
        bar.addWidget(self.dose_label)
        bar.addStretch(1)
        self.chips_layout = QHBoxLayout()
        self.chips: dict[str, DeviceChip] = {}
        for s in self.runtime.sources:
            chip = DeviceChip(s.source_id)
            self.chips[s.source_id] = chip
            self.chips_layout.addWidget(chip)
        bar.addLayout(self.chips_layout)
        bar.addSpacing(24)
        bar.addWidget(self.time_label)
        outer.addWidget(top)

        # alarms and due tasks go here (alarm and workflow features add their widgets)
        self.banner_layout = QVBoxLayout()
        self.banner_layout.setSpacing(4)
        outer.addLayout(self.banner_layout)

        body = QHBoxLayout()
        outer.addLayout(body, 1)
        left = QVBoxLayout()
        body.addLayout(left, 3)
        pleth_title = _label("Pleth", 16, theme.PARAMETER_COLOURS["pleth"], bold=True)
        left.addWidget(pleth_title)
        self.pleth = PlethSweepWidget()
        self.pleth.setMinimumHeight(160)
        left.addWidget(self.pleth, 2)
        self.trends = TrendWidget()
        left.addWidget(self.trends, 3)

        right = QVBoxLayout()
        body.addLayout(right, 2)
        c = theme.PARAMETER_COLOURS
        self.tiles: dict[str, NumericTile] = {
            "spo2": NumericTile("spo2", "SpO2", "%", colour=c["spo2"]),
            "pulse_rate": NumericTile("pulse_rate", "Pulse", "/min", colour=c["pulse_rate"]),
            "nibp": NibpTile(),
            "perfusion_index": NumericTile("perfusion_index", "PI", "%",
                                           colour=c["perfusion_index"], decimals=2, value_px=48),
        }
        for key in ("spo2", "pulse_rate", "nibp", "perfusion_index"):
            tile = self.tiles[key]
            tile.slack = 2.0 * self.clock.speed  # two real seconds of drawing delay is not "stale"
            tile.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Expanding)
            right.addWidget(tile, 1 if key != "perfusion_index" else 0)
        buttons = QHBoxLayout()
        self.nibp_button = QPushButton("Start NIBP")
        self.nibp_button.setEnabled(self.nibp_available())
        self.nibp_button.clicked.connect(self.start_nibp)
        buttons.addWidget(self.nibp_button)
        right.addLayout(buttons)
        self.message_label = _label("", 14, theme.DIM)
        right.addWidget(self.message_label)

        # workflow panels (tasks, scales, doses) dock here
        self.side_layout = QVBoxLayout()
        body.addLayout(self.side_layout, 0)

    # -- actions -----------------------------------------------------------------------------
    def nibp_available(self) -> bool:
        """Is there a device that can take a blood pressure on request?"""
        return any("nibp" in s.capabilities for s in self.runtime.sources)

    def start(self) -> None:
        self.frames.start()

    def start_nibp(self) -> None:
        try:
            self.runtime.request_nibp()
            self.tiles["nibp"].set_status_text("starting...")
            self.nibp_requested.emit()
        except KetmonitorError as exc:
            self.message_label.setText(str(exc))

    def session_seconds(self) -> float:
        return self.clock.monotonic() - (self.runtime.t0 or 0.0)

    # -- frame -------------------------------------------------------------------------------
    def frame(self, samples: list) -> None:
        now = self.session_seconds()
        for s in samples:
            self.handle(s, now)
        self.pleth.redraw()
        self.title_label.setText(self.windowTitle())
        if abs(now - self._last_slow) >= self.clock.speed:  # once a real second
            self._slow_refresh(now)

    def _slow_refresh(self, now: float) -> None:
        """About once a second (real time): clocks, ages, trends."""
        self._last_slow = now
        self.session_label.setText(f"session {hms(now)}")
        if self.dose_mono is not None:
            self.dose_label.setText(f"since dose {hms(self.clock.monotonic() - self.dose_mono)}")
            self.dose_label.setStyleSheet(f"color: {theme.TEXT};")
        self.time_label.setText(datetime.fromtimestamp(self.clock.wall()).strftime("%H:%M:%S"))
        for tile in self.tiles.values():
            tile.refresh_age(now)
        self.trends.redraw(now / 60.0)

    def handle(self, s, now: float) -> None:
        t0 = self.runtime.t0 or 0.0
        if isinstance(s, WaveformChunk):
            if s.metric == "pleth":
                self.pleth.add_samples(s.samples)
        elif isinstance(s, Numeric):
            self._numeric(s, now, (s.t_mono - t0) / 60.0)
        elif isinstance(s, DeviceStatus):
            chip = self.chips.get(s.source)
            if chip is not None:
                chip.show_status(s)
            if (not s.connected or Condition.SENSOR_OFF in s.conditions) and s.source in self._oximeters():
                for key in ("spo2", "pulse_rate", "perfusion_index"):
                    self.tiles[key].set_value(None, now)
                if not s.connected:
                    self.pleth.clear_trace()
        elif isinstance(s, SessionEvent):
            if s.kind.startswith("dose") and self.dose_mono is None:
                self.dose_mono = s.t_mono
                self.trends.add_marker((s.t_mono - t0) / 60.0, "dose")

    def _oximeters(self) -> set[str]:
        return {src.source_id for src in self.runtime.sources if src.kind == "oximeter"}

    def _numeric(self, s: Numeric, now: float, t_min: float) -> None:
        m = s.metric
        if m in ("spo2", "pulse_rate", "perfusion_index"):
            held = Condition.HELD in s.flags
            self.tiles[m].set_value(s.value, now, questionable=held)
            self.trends.add(m, t_min, s.value)
        elif m in ("nibp_systolic", "nibp_diastolic", "nibp_mean"):
            self._pending_bp[m] = s
            self.trends.add(m, t_min, s.value)
            if len(self._pending_bp) == 3:
                b = self._pending_bp
                self.tiles["nibp"].set_reading(b["nibp_systolic"].value, b["nibp_diastolic"].value,
                                               b["nibp_mean"].value, now, s.t_wall)
                self.tiles["nibp"].set_status_text("")
                self._pending_bp = {}
        elif m == "cuff_pressure":
            self.tiles["nibp"].set_status_text(f"measuring - cuff {s.value:.0f} mmHg")
        elif m == "nibp_error":
            detail = s.detail or METRICS[m].label
            self.tiles["nibp"].set_status_text(f"measurement failed: {detail}")

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt name
        self.frames.stop()
        self.closing.emit()
        super().closeEvent(event)
