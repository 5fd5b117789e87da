"""Alarm limits, priorities, delays and hysteresis of every condition, editable by role.

Limits: the clinic's limit roles (nurses by default). Priority, delay and hysteresis: the clinic's
setting roles (admin by default). Changes go through ``AlarmEngine.set_limit``, which checks the role
again and records who changed what from what to what.
"""

from __future__ import annotations

from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QHeaderView,
                               QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout)

from ketmonitor.alarms import LIMIT, AlarmEngine
from ketmonitor.alarms.conditions import MAX_DELAY_S
from ketmonitor.errors import KetmonitorError
from ketmonitor.metrics import metric as metric_info

from .. import theme

COLUMNS = ("Alarm", "Limit", "Priority", "Delay s", "Hysteresis")
PRIORITIES = ("high", "medium", "low")


def _spin(value: float, low: float, high: float, step: float, enabled: bool) -> QDoubleSpinBox:
    s = QDoubleSpinBox()
    s.setDecimals(0 if step >= 1 else 1)
    s.setRange(low, high)
    s.setSingleStep(step)
    s.setValue(value)
    s.setEnabled(enabled)
    return s


class AlarmLimitsDialog(QDialog):
    def __init__(self, engine: AlarmEngine, user_id: str | None, role: str | None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Alarm limits")
        self.engine, self.user_id, self.role = engine, user_id, role
        s = engine.config.settings
        self.can_limits = bool(user_id) and role in s.limit_roles
        self.can_settings = bool(user_id) and role in s.setting_roles
        specs = list(engine.config.specs.values())
        self.table = QTableWidget(len(specs), len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.Stretch)
        self.editors: dict[str, dict[str, object]] = {}
        for row, spec in enumerate(specs):
            self.table.setItem(row, 0, QTableWidgetItem(spec.label))
            eds: dict[str, object] = {}
            if spec.kind == LIMIT:
                m = metric_info(spec.metric)
                eds["limit"] = _spin(spec.limit, m.low, m.high, 1, self.can_limits)
                eds["hysteresis"] = _spin(spec.hysteresis, 0, 20, 1, self.can_settings)
                self.table.setCellWidget(row, 1, eds["limit"])
                self.table.setCellWidget(row, 4, eds["hysteresis"])
            else:
                for col in (1, 4):
                    self.table.setItem(row, col, QTableWidgetItem("-"))
            combo = QComboBox()
            combo.addItems(PRIORITIES)
            combo.setCurrentText(spec.priority.value)
            combo.setEnabled(self.can_settings)
            eds["priority"] = combo
            eds["delay_s"] = _spin(spec.delay_s, 0, MAX_DELAY_S, 1,
                                   self.can_settings and not spec.episodic)
            self.table.setCellWidget(row, 2, combo)
            self.table.setCellWidget(row, 3, eds["delay_s"])
            self.editors[spec.key] = eds
        if not user_id:
            why = "Sign in to change alarm limits."
        elif not self.can_limits:
            why = f"Your role ({role}) may not change alarm limits."
        elif not self.can_settings:
            why = "Priorities, delays and hysteresis are clinic settings (administrator)."
        else:
            why = ""
        self.info = QLabel(why)
        self.error = QLabel("")
        self.error.setWordWrap(True)
        self.error.setStyleSheet(f"color: {theme.ALARM_COLOURS['high']};")
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.apply)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.table)
        lay.addWidget(self.info)
        lay.addWidget(self.error)
        lay.addWidget(buttons)
        self.resize(720, 560)

    def pending_changes(self) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for key, eds in self.editors.items():
            spec = self.engine.spec(key)
            for name, ed in eds.items():
                new = ed.currentText() if isinstance(ed, QComboBox) else ed.value()
                old = getattr(spec, name)
                old = getattr(old, "value", old)
                if new != old:
                    out.setdefault(key, {})[name] = new
        return out

    def apply(self) -> None:
        """Apply every change; an order that needs one change before another (moving a low and a
        high limit past each other) is found by retrying. Errors keep the dialog open."""
        todo = self.pending_changes()
        errors: dict[str, str] = {}
        progress = True
        while todo and progress:
            progress = False
            for key, changes in list(todo.items()):
                try:
                    self.engine.set_limit(key, user_id=self.user_id, role=self.role, **changes)
                except KetmonitorError as exc:
                    errors[key] = str(exc)
                else:
                    del todo[key]
                    errors.pop(key, None)
                    progress = True
        if todo:
            self.error.setText("\n".join(errors[k] for k in todo))
            return
        self.accept()
