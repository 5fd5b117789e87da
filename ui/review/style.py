"""The review screens' look: the bedside theme (dark, one colour per parameter, IEC alarm colours)
extended to tables, forms and dialogs, which the live monitor does not have."""

from ..theme import (ALARM_COLOURS, ALARM_TEXT, BACKGROUND, DIM, GRID, PANEL, PARAMETER_COLOURS,
                     STYLESHEET as _BEDSIDE, TEXT)

SIGNED = "#3ee05a"
FAILED = ALARM_COLOURS["high"]
STATUS_COLOURS = {"open": PARAMETER_COLOURS["spo2"], "ended": TEXT, "signed": SIGNED,
                  "cosigned": SIGNED, "abandoned": DIM}
# timeline markers
DOSE = "#ffffff"
EVENT = "#c8a2ff"
AMENDMENT = "#ff9f43"
SCALE_COLOURS = ["#e6d45c", "#c8a2ff", "#ff9f43", "#8fd3ff", "#ff6f91"]

STYLESHEET = _BEDSIDE + f"""
QWidget#reviewRoot, QDialog {{ background: {BACKGROUND}; color: {TEXT}; font-size: 14px; }}
QLabel#title {{ font-size: 22px; font-weight: bold; }}
QLabel#dim {{ color: {DIM}; }}
QLabel#error {{ color: {ALARM_COLOURS['high']}; font-weight: bold; }}
QLabel#ok {{ color: {SIGNED}; font-weight: bold; }}
QFrame#panel {{ background: {PANEL}; border: 1px solid {GRID}; border-radius: 6px; }}
QTableView, QTableWidget, QPlainTextEdit {{ background: {PANEL}; alternate-background-color: #161b21;
    color: {TEXT}; gridline-color: {GRID}; border: 1px solid {GRID};
    selection-background-color: #2d4a66; selection-color: {TEXT}; }}
QHeaderView::section {{ background: #1a2027; color: {DIM}; border: 0; border-bottom: 1px solid {GRID};
    padding: 4px 6px; font-weight: bold; }}
QLineEdit, QComboBox, QDateEdit {{ background: #161b21; color: {TEXT}; border: 1px solid #3a424c;
    border-radius: 4px; padding: 4px 6px; }}
QComboBox QAbstractItemView {{ background: #161b21; color: {TEXT}; selection-background-color: #2d4a66; }}
QCheckBox {{ color: {TEXT}; }}
QTabWidget::pane {{ border: 1px solid {GRID}; }}
QTabBar::tab {{ background: #1a2027; color: {DIM}; padding: 6px 14px; }}
QTabBar::tab:selected {{ background: {PANEL}; color: {TEXT}; }}
"""

__all__ = ["ALARM_COLOURS", "ALARM_TEXT", "BACKGROUND", "DIM", "GRID", "PANEL", "PARAMETER_COLOURS",
           "TEXT", "STYLESHEET", "SIGNED", "FAILED", "STATUS_COLOURS", "DOSE", "EVENT", "AMENDMENT",
           "SCALE_COLOURS"]
