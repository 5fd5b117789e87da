"""Small shared pieces of the workflow forms: error label, labelled rows, running a core call and
showing its KetmonitorError as one line instead of a traceback."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QLabel, QWidget

from ketmonitor.errors import KetmonitorError

from .. import theme

FORM_STYLE = f"""
QWidget#workflowPanel, QDialog {{ background: {theme.PANEL}; color: {theme.TEXT}; }}
QLineEdit, QPlainTextEdit, QComboBox, QSpinBox, QDoubleSpinBox {{
    background: #1b2128; color: {theme.TEXT}; border: 1px solid #3a424c; padding: 3px;
    font-size: 14px; }}
QLineEdit:focus, QComboBox:focus {{ border: 1px solid {theme.PARAMETER_COLOURS['spo2']}; }}
QCheckBox, QLabel {{ color: {theme.TEXT}; font-size: 14px; }}
QTabBar::tab {{ background: #20262e; color: {theme.TEXT}; padding: 6px 10px; }}
QTabBar::tab:selected {{ background: #2f3a46; }}
QListWidget {{ background: #101418; color: {theme.TEXT}; font-size: 14px; }}
QScrollArea, QScrollArea > QWidget > QWidget, QTabWidget::pane, QStackedWidget {{
    background: {theme.PANEL}; border: none; }}
"""


class ErrorLabel(QLabel):
    def __init__(self, parent=None):
        super().__init__("", parent)
        self.setWordWrap(True)
        self.setStyleSheet(f"color: {theme.ALARM_COLOURS['medium']}; font-weight: bold;")
        self.hide()

    def show_error(self, text: str) -> None:
        self.setText(text)
        self.setVisible(bool(text))

    def clear_error(self) -> None:
        self.show_error("")


def attempt(error: ErrorLabel, fn: Callable, *args, **kwargs):
    """Run ``fn``; a KetmonitorError is shown on ``error`` and returns None. Success clears it."""
    try:
        result = fn(*args, **kwargs)
    except KetmonitorError as exc:
        error.show_error(str(exc))
        return None
    error.clear_error()
    return True if result is None else result


def heading(text: str, parent: QWidget | None = None) -> QLabel:
    label = QLabel(text, parent)
    label.setStyleSheet(f"color: {theme.TEXT}; font-size: 16px; font-weight: bold;")
    return label


def parse_number(text: str, what: str, *, required: bool = True) -> float | None:
    text = text.strip()
    if not text:
        if required:
            raise KetmonitorError(f"{what} is missing")
        return None
    try:
        return float(text.replace(",", "."))
    except ValueError:
        raise KetmonitorError(f"{what}: {text!r} is not a number") from None
