"""Where ketmonitor keeps its data on this workstation (the platform's user data directory)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def data_dir() -> Path:
    override = os.environ.get("KETMONITOR_HOME")
    path = Path(override) if override else Path(platformdirs.user_data_dir("ketmonitor", "ketmonitor"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_db() -> Path:
    return data_dir() / "sessions.db"


def has_display() -> bool:
    if os.environ.get("QT_QPA_PLATFORM", "").startswith(("offscreen", "minimal", "vnc")):
        return True
    if os.name == "nt" or os.uname().sysname == "Darwin":
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
