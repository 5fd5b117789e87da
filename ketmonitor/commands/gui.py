"""``ketmonitor gui``: open the bedside application (also what a bare ``ketmonitor`` does)."""

from __future__ import annotations

import importlib
from pathlib import Path

from ..errors import ConfigError
from ..paths import default_db, has_display

NAME = "gui"
HELP = "open the bedside application"


def add_arguments(p) -> None:
    p.add_argument("--db", dest="gui_db", metavar="PATH", help="session database")


def run(args) -> int:
    if not has_display():
        raise ConfigError("no display found; use 'ketmonitor demo --headless' to run without a "
                          "screen, or set DISPLAY")
    db = getattr(args, "gui_db", None) or getattr(args, "db", None) or default_db()
    return importlib.import_module("ui.app").run_gui(args, Path(db).expanduser())
