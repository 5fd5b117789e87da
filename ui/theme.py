"""Colours and fonts of the bedside screen: dark background, one colour per parameter, as bedside
monitors do, so a nurse finds a number by its colour from across the room."""

BACKGROUND = "#000000"
PANEL = "#101418"
GRID = "#2a2f36"
TEXT = "#e8e8e8"
DIM = "#7a8088"
STALE = "#5c6168"

PARAMETER_COLOURS = {
    "spo2": "#29c5ff",
    "pulse_rate": "#3ee05a",
    "perfusion_index": "#e6d45c",
    "nibp": "#f05ad2",
    "pleth": "#29c5ff",
}

# IEC 60601-1-8 alarm colours
ALARM_COLOURS = {"high": "#e0202a", "medium": "#f5c400", "low": "#2fd4e6"}
ALARM_TEXT = {"high": "#ffffff", "medium": "#000000", "low": "#000000"}

STYLESHEET = f"""
QMainWindow, QWidget#monitorRoot {{ background: {BACKGROUND}; color: {TEXT}; }}
QLabel {{ color: {TEXT}; }}
QFrame#tile {{ background: {PANEL}; border: 2px solid {GRID}; border-radius: 6px; }}
QFrame#topBar {{ background: {PANEL}; border-bottom: 1px solid {GRID}; }}
QPushButton {{ background: #20262e; color: {TEXT}; border: 1px solid #3a424c; border-radius: 4px;
              padding: 6px 12px; font-size: 14px; }}
QPushButton:hover {{ background: #2a323c; }}
QPushButton:disabled {{ color: {DIM}; }}
"""
