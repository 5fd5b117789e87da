"""Large numeric tiles. A missing value shows as dashes, never a number; a value older than the
tile's ``stale_after`` (session-clock seconds) is greyed and says how old it is; a value the device
flags as held or questionable is marked with '?'."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QVBoxLayout

from . import theme

DASHES = "---"


def _font_px(label: QLabel, px: int, bold: bool = True) -> None:
    f = label.font()
    f.setPixelSize(px)
    f.setBold(bold)
    label.setFont(f)


class NumericTile(QFrame):
    def __init__(self, key: str, title: str, unit: str, *, colour: str, decimals: int = 0,
                 stale_after: float = 10.0, value_px: int = 96, parent=None):
        super().__init__(parent)
        self.setObjectName("tile")
        self.key, self.colour, self.decimals, self.stale_after = key, colour, decimals, stale_after
        self.value: float | None = None
        self.updated_at: float | None = None  # session-clock seconds
        self.questionable = False
        self.alarm_priority: str | None = None
        self.slack = 0.0  # extra session seconds before "stale" (accelerated demos draw less often)
        self.title = QLabel(title)
        self.unit = QLabel(unit)
        self.value_label = QLabel(DASHES)
        self.note = QLabel("")
        self.limit_note = QLabel("")  # an alarm limit not at its default, said on the tile
        self.limit_note.setWordWrap(True)
        self.limit_note.setStyleSheet(f"color: {theme.ALARM_COLOURS['medium']};")
        self.limit_note.hide()
        _font_px(self.limit_note, 15, bold=False)
        _font_px(self.title, 22)
        _font_px(self.unit, 18, bold=False)
        _font_px(self.value_label, value_px)
        _font_px(self.note, 16, bold=False)
        self.value_label.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
        head = QHBoxLayout()
        head.addWidget(self.title)
        head.addStretch(1)
        head.addWidget(self.unit)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(12, 6, 12, 6)
        lay.addLayout(head)
        lay.addWidget(self.value_label, 1)
        lay.addWidget(self.note)
        lay.addWidget(self.limit_note)
        self.title.setStyleSheet(f"color: {colour};")
        self.unit.setStyleSheet(f"color: {theme.DIM};")
        self._paint()

    # -- state -------------------------------------------------------------------------------
    def set_value(self, value: float | None, now: float, *, questionable: bool = False,
                  note: str | None = None) -> None:
        self.value, self.updated_at, self.questionable = value, now, questionable
        self.note.setText(note or "")
        self._paint()

    def text(self) -> str:
        return self.value_label.text()

    def is_stale(self, now: float) -> bool:
        return self.updated_at is None or now - self.updated_at > self.stale_after + self.slack

    def refresh_age(self, now: float) -> None:
        """Called about once a second: grey out and say the age of an old value."""
        self._paint(now)

    def set_limit_note(self, text: str) -> None:
        """e.g. 'SpO2 low < 88 (default 90)'; empty when every limit is at its default."""
        shown = f"Limit changed: {text}" if text else ""
        if self.limit_note.text() != shown:
            self.limit_note.setText(shown)
            self.limit_note.setVisible(bool(text))

    def set_alarm_priority(self, priority: str | None) -> None:
        if priority != self.alarm_priority:
            self.alarm_priority = priority
            self._paint()

    # -- drawing -----------------------------------------------------------------------------
    def format_value(self) -> str:
        if self.value is None:
            return DASHES
        text = f"{self.value:.{self.decimals}f}"
        return text + "?" if self.questionable else text

    def stale_note(self, age: float) -> str:
        return f"stale: {_age(age)} old"

    def _paint(self, now: float | None = None) -> None:
        # Style sheets are re-parsed on every set: set them only when they change (values arrive
        # several times a second, colours change rarely).
        stale = now is not None and self.value is not None and self.is_stale(now)
        text = self.format_value()
        if self.value_label.text() != text:
            self.value_label.setText(text)
        self._style(self.value_label, f"color: {theme.STALE if stale else self.colour};")
        if stale and self.updated_at is not None:
            self.note.setText(self.stale_note(now - self.updated_at))
            self._style(self.note, f"color: {theme.DIM};")
        border = theme.ALARM_COLOURS.get(self.alarm_priority or "", theme.GRID)
        width = 6 if self.alarm_priority else 2
        self._style(self, f"QFrame#tile {{ background: {theme.PANEL}; border: {width}px solid "
                          f"{border}; border-radius: 6px; }}")

    @staticmethod
    def _style(widget, sheet: str) -> None:
        if widget.styleSheet() != sheet:
            widget.setStyleSheet(sheet)


class NibpTile(NumericTile):
    """Systolic/diastolic with the mean and the time of the reading."""

    systolic: float | None = None
    diastolic: float | None = None
    mean: float | None = None
    reading_wall: float | None = None

    def __init__(self, parent=None):
        super().__init__("nibp", "NIBP", "mmHg", colour=theme.PARAMETER_COLOURS["nibp"],
                         stale_after=15 * 60.0, value_px=72, parent=parent)
        self.status = QLabel("")
        _font_px(self.status, 16, bold=False)
        self.layout().addWidget(self.status)

    def set_reading(self, systolic, diastolic, mean, now: float, t_wall: float) -> None:
        self.systolic, self.diastolic, self.mean = systolic, diastolic, mean
        self.reading_wall = t_wall
        self.value = systolic
        self.updated_at = now
        self.note.setText(f"mean {_fmt(mean)}   at {_local_time(t_wall)}")
        self._style(self.note, f"color: {theme.TEXT};")
        self._paint()

    def stale_note(self, age: float) -> str:
        when = _local_time(self.reading_wall) if self.reading_wall else "?"
        return f"mean {_fmt(self.mean)}   at {when}   ({_age(age)} ago: stale)"

    def set_status_text(self, text: str) -> None:
        self.status.setText(text)

    def format_value(self) -> str:
        if self.systolic is None and self.diastolic is None:
            return f"{DASHES}/{DASHES}"
        return f"{_fmt(self.systolic)}/{_fmt(self.diastolic)}"


def _fmt(v) -> str:
    return DASHES if v is None else f"{v:.0f}"


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60} min" if seconds >= 120 else f"{seconds} s"


def _local_time(t_wall: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(t_wall).astimezone().strftime("%H:%M")
