"""A logged-in nurse at a real monitor window on a real database (no devices: tests publish the
samples they need), and a helper that saves screenshots for people to look at."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest

from ketmonitor.clock import ManualClock
from ketmonitor.runtime import MonitorRuntime
from ketmonitor.users import Clinic
from tests.core.test_users import cheap_hasher
from ui.monitor_window import MonitorWindow
from ui.workflow import WorkflowUi

SHOTS = os.environ.get("KETMONITOR_SHOTS")  # a folder: the tests save what they show there
NURSE_PASSWORD = "Nurse-pass-2026"


def shot(widget, name: str) -> Path | None:
    """Save what the widget looks like when KETMONITOR_SHOTS names a folder (never asserted on:
    for a person to look at, e.g. KETMONITOR_SHOTS=/tmp/shots pytest tests/ui)."""
    if not SHOTS:
        return None
    folder = Path(SHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    widget.grab().save(str(path))
    return path


@contextmanager
def monitor_with_workflow(qtbot, db_path, clock, **workflow_options):
    """(window, runtime, workflow_ui): a shown monitor window on a started runtime (no devices)
    with the workflow attached and nobody logged in; everything stopped afterwards."""
    rt = MonitorRuntime(db_path, [], clock=clock, t0=0.0, commit_interval=0.05)
    rt.start()
    window = MonitorWindow(rt)
    qtbot.addWidget(window)
    window.resize(1500, 900)
    window.show()
    window.start()
    wui = WorkflowUi(window, rt, hasher=cheap_hasher(), **workflow_options)
    try:
        yield window, rt, wui
    finally:
        wui.stop_walkthrough()
        if wui.lock is not None:
            wui.lock.close()
        window.close()
        rt.stop()


@contextmanager
def bedside(qtbot, db_path, clock, **workflow_options):
    """(window, runtime, workflow_ui): ``monitor_with_workflow`` with the clinic set up and nurse
    'nina' logged in."""
    with monitor_with_workflow(qtbot, db_path, clock, **workflow_options) as (window, rt, wui):
        admin = wui.auth.first_start(Clinic("North"), "admin", "Ada Admin", "Boss-key-2026x")
        nurse = wui.auth.create_user(admin, "nina", "Nina Nurse", "nurse", NURSE_PASSWORD,
                                     must_change=False)
        wui.start_session(nurse)
        yield window, rt, wui


@pytest.fixture
def nurse_bedside(qtbot, db_path):
    """(window, runtime, clock, workflow_ui, lock_time): nurse 'nina' logged in, no BP device."""
    clock = ManualClock(0.0)
    lock_time = [0.0]
    with bedside(qtbot, db_path, clock, lock_timeout_s=300,
                 lock_clock=lambda: lock_time[0]) as (window, rt, wui):
        yield window, rt, clock, wui, lock_time
