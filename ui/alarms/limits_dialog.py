"""Alarm limits, priorities, delays and hysteresis of every condition, editable by role.

Limits: the clinic's limit roles (nurses by default), within the range the clinic allows for each
(the spin boxes stop there; the engine refuses anything outside it). Priority, delay and hysteresis:
the clinic's setting roles (admin by default). Changes go through ``AlarmEngine.set_limits``, which
checks the roles and the range again, applies them as one set and records who changed what from what
to what. A limit that differs from its default (the clinic's, with the protocol's laid over) is
marked.
"""

from __future__ import annotations

from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QHeaderView,
                               QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout)

from ketmonitor.alarms import LIMIT, AlarmEngine
from ketmonitor.alarms.conditions import MAX_DELAY_S
from ketmonitor.errors import KetmonitorError
from ketmonitor.metrics import metric as metric_info

from .. import theme

COLUMNS = ("Alarm", "Limit", "Default", "May be set to", "Priority", "Delay s", "Hysteresis")
# the monitor's dark theme, so text the window's style sheet makes light stays readable
STYLE = f"""
QDialog {{ background: {theme.PANEL}; color: {theme.TEXT}; }}
QTableWidget {{ background: #161b21; color: {theme.TEXT}; gridline-color: {theme.GRID}; }}
QHeaderView::section {{ background: #20262e; color: {theme.TEXT}; padding: 4px;
                        border: 1px solid {theme.GRID}; }}
"""
LIMIT_COL, DEFAULT_COL, RANGE_COL, PRIORITY_COL, DELAY_COL, HYST_COL = range(1, 7)
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
        self.setStyleSheet(STYLE)
        self.engine, self.user_id, self.role = engine, user_id, role
        s = engine.config.settings
        self.can_limits = bool(user_id) and role in s.limit_roles
        self.can_settings = bool(user_id) and role in s.setting_roles
        specs = list(engine.config.specs.values())
        defaults = engine.limit_defaults()
        self.table = QTableWidget(len(specs), len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.Stretch)
        self.editors: dict[str, dict[str, object]] = {}
        self.default_items: dict[str, QTableWidgetItem] = {}
        for row, spec in enumerate(specs):
            self.table.setItem(row, 0, QTableWidgetItem(spec.label))
            eds: dict[str, object] = {}
            if spec.kind == LIMIT:
                unit = metric_info(spec.metric).unit.replace("mm[Hg]", "mmHg")
                eds["limit"] = _spin(spec.limit, spec.limit_min, spec.limit_max, 1, self.can_limits)
                eds["limit"].setToolTip(f"{spec.limit_min:g}-{spec.limit_max:g} {unit}: the range"
                                        " this clinic allows")
                eds["limit"].valueChanged.connect(lambda _v, k=spec.key: self._mark(k))
                eds["hysteresis"] = _spin(spec.hysteresis, 0, 20, 1, self.can_settings)
                self.table.setCellWidget(row, LIMIT_COL, eds["limit"])
                self.table.setCellWidget(row, HYST_COL, eds["hysteresis"])
                default = defaults.get(spec.key, spec.limit)
                self.default_items[spec.key] = QTableWidgetItem(f"{default:g}")
                self.table.setItem(row, DEFAULT_COL, self.default_items[spec.key])
                self.table.setItem(row, RANGE_COL, QTableWidgetItem(
                    f"{spec.limit_min:g}-{spec.limit_max:g} {unit}"))
            else:
                for col in (LIMIT_COL, DEFAULT_COL, RANGE_COL, HYST_COL):
                    self.table.setItem(row, col, QTableWidgetItem("-"))
            combo = QComboBox()
            combo.addItems(PRIORITIES)
            combo.setCurrentText(spec.priority.value)
            combo.setEnabled(self.can_settings)
            eds["priority"] = combo
            eds["delay_s"] = _spin(spec.delay_s, 0, MAX_DELAY_S, 1,
                                   self.can_settings and not spec.episodic)
            self.table.setCellWidget(row, PRIORITY_COL, combo)
            self.table.setCellWidget(row, DELAY_COL, eds["delay_s"])
            self.editors[spec.key] = eds
            if spec.kind == LIMIT:
                self._mark(spec.key)
        self.table.resizeColumnsToContents()
        self.table.setColumnWidth(DEFAULT_COL, max(self.table.columnWidth(DEFAULT_COL), 110))
        self.table.setColumnWidth(LIMIT_COL, max(self.table.columnWidth(LIMIT_COL), 80))
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.Stretch)
        if not user_id:
            why = "Sign in to change alarm limits."
        elif not self.can_limits:
            why = f"Your role ({role}) may not change alarm limits."
        elif not self.can_settings:
            why = "Priorities, delays and hysteresis are clinic settings (administrator)."
        else:
            why = ""
        self.info = QLabel(why)
        self.info.setWordWrap(True)
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
        self.resize(980, 600)

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

    def changed_from_default(self) -> list[str]:
        """Conditions whose limit, as now in the editor, differs from its default."""
        defaults = self.engine.limit_defaults()
        return [k for k, eds in self.editors.items()
                if "limit" in eds and k in defaults and eds["limit"].value() != defaults[k]]

    def _mark(self, key: str) -> None:
        """Say, in words and colour, that a limit is not its default."""
        item = self.default_items.get(key)
        if item is None:
            return
        changed = key in self.changed_from_default()
        default = self.engine.limit_defaults().get(key)
        item.setText(f"{default:g} (changed)" if changed else f"{default:g}")
        item.setForeground(QColor(theme.ALARM_COLOURS["medium"] if changed else theme.DIM))
        font = item.font()
        font.setBold(changed)
        item.setFont(font)

    def apply(self) -> None:
        """Apply every change as one set (a low and a high limit may move past each other); an
        error applies nothing and keeps the dialog open."""
        todo = self.pending_changes()
        if todo:
            try:
                self.engine.set_limits(todo, user_id=self.user_id, role=self.role)
            except KetmonitorError as exc:
                self.error.setText(str(exc))
                return
        self.accept()
