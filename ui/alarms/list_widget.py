"""Active and past alarms in one table: active first (most important on top), then the ended ones,
most recent first. Times are local; the alarm log on disk keeps UTC."""

from __future__ import annotations

from datetime import datetime

from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from ketmonitor.alarms import AlarmSnapshot, AlarmView

from .. import theme
from .controller import AlarmController

COLUMNS = ("Start", "Priority", "Alarm", "State", "End")


def _local(t_wall: float) -> str:
    return datetime.fromtimestamp(t_wall).astimezone().strftime("%H:%M:%S")


def state_text(a: AlarmView, shown: bool) -> str:
    if shown and a.active:
        return "active, " + ("acknowledged" if a.acknowledged else "audio paused" if a.paused
                             else "sounding")
    if shown:
        return "ended (latched)"
    return "ended"


class AlarmListWidget(QTableWidget):
    def __init__(self, controller: AlarmController, parent=None):
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(COLUMNS)
        self.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.verticalHeader().setVisible(False)
        self.horizontalHeader().setSectionResizeMode(2, QHeaderView.Stretch)
        self._signature = None
        controller.updated.connect(self.show_snapshot)
        self.show_snapshot(controller.snapshot)

    def show_snapshot(self, snap: AlarmSnapshot) -> None:
        shown_ids = {a.alarm_id for a in snap.alarms}
        rows = [(a, True) for a in snap.alarms] + [(a, False) for a in snap.past
                                                   if a.alarm_id not in shown_ids]
        signature = tuple((a.alarm_id, a.acknowledged, a.paused, a.ended_mono, a.text, s)
                          for a, s in rows)
        if signature == self._signature:
            return
        self._signature = signature
        self.setRowCount(len(rows))
        for i, (a, shown) in enumerate(rows):
            end = "" if a.active else _local(a.started_wall + (a.ended_mono - a.started_mono))
            cells = (_local(a.started_wall), a.priority.value.upper(), a.text,
                     state_text(a, shown), end)
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if shown:
                    item.setBackground(QBrush(QColor(theme.ALARM_COLOURS[a.priority.value])))
                    item.setForeground(QBrush(QColor(theme.ALARM_TEXT[a.priority.value])))
                self.setItem(i, j, item)

    def row_texts(self) -> list[tuple[str, ...]]:
        return [tuple(self.item(r, c).text() for c in range(self.columnCount()))
                for r in range(self.rowCount())]
