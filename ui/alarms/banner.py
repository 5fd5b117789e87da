"""The alarm banner: the most important condition in large type on its IEC 60601-1-8 colour,
flashing at its priority's rate, with the audio-pause countdown and the operator's buttons.

Flash: high 2.0 Hz, 50 % on (standard: 1.4-2.8 Hz, 20-60 % on); medium 0.6 Hz, 40 % on
(0.4-0.8 Hz); low steady. Flashing runs on real time, whatever speed a simulation runs at. The banner
never goes blank while a condition is shown: off-phases keep the text in the priority colour.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout

from ketmonitor.alarms import AlarmSnapshot

from .. import theme
from .controller import AlarmController

FLASH = {"high": (2.0, 0.5), "medium": (0.6, 0.4), "low": None}  # Hz, fraction of the period lit
MARK = {"high": "!!!", "medium": "!!", "low": "!"}  # IEC priority marks, for colour-blind readers


def _px(label: QLabel, px: int, bold: bool = True) -> None:
    f = label.font()
    f.setPixelSize(px)
    f.setBold(bold)
    label.setFont(f)


class FitLabel(QLabel):
    """Bold text at ``max_px``, shrunk (down to ``min_px``) until it fits the label's width, so a
    long condition stays whole and readable at a metre instead of being cut at the edge."""

    def __init__(self, text: str, max_px: int, min_px: int, parent=None):
        super().__init__(text, parent)
        self.max_px, self.min_px = max_px, min_px
        _px(self, max_px)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt name
        super().setText(text)
        self._fit()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt name
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        width = max(1, self.contentsRect().width())
        f = self.font()
        px = self.max_px
        f.setPixelSize(px)
        while px > self.min_px and QFontMetrics(f).horizontalAdvance(self.text()) > width:
            px -= 2
            f.setPixelSize(px)
        if self.font().pixelSize() != px:
            self.setFont(f)


def countdown(seconds: float) -> str:
    s = max(0, int(seconds + 0.999))  # 0.2 s left still shows 0:01
    return f"{s // 60}:{s % 60:02d}"


class AlarmBannerWidget(QFrame):
    list_requested = Signal()
    limits_requested = Signal()

    def __init__(self, controller: AlarmController, parent=None):
        super().__init__(parent)
        self.setObjectName("alarmBanner")
        self.controller = controller
        self.priority: str | None = None
        self.lit = True
        self.mark = QLabel("")
        self.text = FitLabel("No active alarms", 40, 22)
        self.more = QLabel("")
        self.state = QLabel("")
        self.pause_label = QLabel("")
        _px(self.mark, 44)
        _px(self.more, 20, bold=False)
        _px(self.state, 20, bold=False)
        _px(self.pause_label, 26)
        self.text.setTextFormat(Qt.PlainText)
        # never widening the banner: a long message shrinks to fit (full text in the tooltip)
        self.text.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.ack_button = QPushButton("Acknowledge")
        self.pause_button = QPushButton("Pause audio")
        self.list_button = QPushButton("Alarm list")
        self.limits_button = QPushButton("Limits")
        for b in (self.ack_button, self.pause_button, self.list_button, self.limits_button):
            b.setMinimumHeight(48)
        self.ack_button.clicked.connect(controller.acknowledge)
        self.pause_button.clicked.connect(self._pause_clicked)
        self.list_button.clicked.connect(self.list_requested)
        self.limits_button.clicked.connect(self.limits_requested)
        words = QVBoxLayout()
        words.setSpacing(0)
        words.addWidget(self.text)
        line = QHBoxLayout()
        line.addWidget(self.state)
        line.addWidget(self.more)
        line.addStretch(1)
        words.addLayout(line)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(12, 4, 12, 4)
        lay.addWidget(self.mark)
        lay.addLayout(words, 1)
        lay.addWidget(self.pause_label)
        for b in (self.ack_button, self.pause_button, self.list_button, self.limits_button):
            lay.addWidget(b)
        self._flash = QTimer(self)
        self._flash.setSingleShot(True)
        self._flash.timeout.connect(self._toggle)
        self.snapshot: AlarmSnapshot | None = None
        controller.updated.connect(self.show_snapshot)
        self.show_snapshot(controller.snapshot)

    # -- flashing ------------------------------------------------------------------------------
    @property
    def flash_hz(self) -> float | None:
        f = FLASH.get(self.priority or "")
        return f[0] if f else None

    @property
    def duty(self) -> float | None:
        f = FLASH.get(self.priority or "")
        return f[1] if f else None

    def _phase_ms(self, lit: bool) -> int:
        hz, duty = FLASH[self.priority]
        period = 1000.0 / hz
        return int(round(period * duty if lit else period * (1 - duty)))

    def _toggle(self) -> None:
        if self.flash_hz is None:
            return
        self.lit = not self.lit
        self._paint()
        self._flash.start(self._phase_ms(self.lit))

    def _set_priority(self, priority: str | None) -> None:
        if priority == self.priority:
            return
        self.priority = priority
        self.lit = True
        self._flash.stop()
        if self.flash_hz is not None:
            self._flash.start(self._phase_ms(True))

    # -- content -------------------------------------------------------------------------------
    def show_snapshot(self, snap: AlarmSnapshot) -> None:
        self.snapshot = snap
        top = snap.top
        self._set_priority(top.priority.value if top else None)
        if top is None:
            self.mark.setText("")
            self.text.setText("No active alarms")
            self.state.setText("")
            self.more.setText("")
        else:
            self.mark.setText(MARK[top.priority.value])
            self.text.setText(top.text)
            self.text.setToolTip(top.text)
            words = []
            if not top.active:
                words.append("ended - acknowledge to clear")
            elif top.acknowledged:
                words.append("acknowledged")
            elif top.paused:
                words.append("audio paused")
            self.state.setText(", ".join(words))
            n = len(snap.alarms) - 1
            self.more.setText(f"+{n} more alarm{'s' if n > 1 else ''}" if n > 0 else "")
        paused = snap.pause_remaining_s is not None
        self.pause_label.setVisible(paused)
        self.pause_label.setText(f"AUDIO PAUSED {countdown(snap.pause_remaining_s)}" if paused else "")
        self.pause_button.setText("Resume audio" if paused else
                                  f"Pause audio {countdown(self.controller.engine.config.settings.pause_default_s)}")
        self.ack_button.setEnabled(any(not a.acknowledged or not a.active for a in snap.alarms))
        self._paint()

    def _pause_clicked(self) -> None:
        if self.snapshot is not None and self.snapshot.pause_remaining_s is not None:
            self.controller.resume_audio()
        else:
            self.controller.pause_audio()

    def colours(self) -> tuple[str, str]:
        """(background, text) as painted now."""
        if self.priority is None:
            return theme.PANEL, theme.DIM
        colour = theme.ALARM_COLOURS[self.priority]
        if self.lit:
            return colour, theme.ALARM_TEXT[self.priority]
        return theme.PANEL, colour

    def _paint(self) -> None:
        bg, fg = self.colours()
        border = theme.ALARM_COLOURS.get(self.priority or "", theme.GRID)
        self.setStyleSheet(f"QFrame#alarmBanner {{ background: {bg}; border: 3px solid {border};"
                           f" border-radius: 6px; }}")
        for label in (self.mark, self.text, self.more, self.state):
            label.setStyleSheet(f"color: {fg}; background: transparent;")
        paused_colour = theme.TEXT if self.priority is None or not self.lit else fg
        self.pause_label.setStyleSheet(f"color: {paused_colour}; background: transparent;")
