"""Starting the Qt application: the real GUI and the demo on simulated devices."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from ketmonitor.clock import ScaledClock
from ketmonitor.runtime import MonitorRuntime
from ketmonitor.simulation import simulated_sources

from .monitor_window import MonitorWindow


def make_app(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance()
    if app is None:
        app = QApplication(argv or [sys.argv[0]])
        app.setApplicationName("ketmonitor")
        app.setOrganizationName("ketmonitor")
    pg.setConfigOptions(antialias=True, background="k", foreground="w")
    return app


def build_demo(db_path: Path, *, scenario: str = "uneventful", seed: int = 1, speed: float = 1.0,
               protocol: str | None = None, fps: float = 30.0, simulate_dose: bool = True):
    """The demo monitor: simulated devices, a runtime and its window (not yet started).

    ``simulate_dose`` marks the patient model's dose time on the screen when no nurse is there to
    record a dose (screenshots, benchmarks)."""
    clock = ScaledClock(speed)
    sources = simulated_sources(scenario=scenario, seed=seed, clock=clock, t0=0.0)
    runtime = MonitorRuntime(db_path, sources, clock=clock, scenario=scenario, seed=seed,
                             protocol=protocol, t0=0.0)
    window = MonitorWindow(runtime, title=f"ketmonitor demo - {scenario}", fps=fps)
    dose_at = sources[0].model.dose_at

    def simulated_dose(now: float, done=[]) -> None:  # noqa: B006 - one-shot flag
        if not done and now >= dose_at:
            done.append(True)
            runtime.event("dose.simulated", {"note": "simulated dose time of the patient model"})

    if simulate_dose:
        runtime.add_ticker(simulated_dose, 1.0)
    return runtime, window


def attach_workflow(window, runtime, *, protocol: str | None = None, demo: bool = False):
    """First start or login, then the workflow panel, task banner and automatic lock; the alarm UI
    learns who acknowledges. In the demo, the simulated clinic and its nurse are created on an
    empty database and the login is filled in for the demo nurse."""
    from .workflow.session import WorkflowUi

    wui = WorkflowUi(window, runtime)
    if protocol:
        wui.ready.connect(lambda user: wui.start_walkthrough(protocol))
    if demo:
        from ketmonitor.demo_walkthrough import DEMO_NURSE, demo_user

        demo_user(runtime.writer, runtime.clock)
    wui.begin()
    if demo and getattr(wui.dialog, "user_id", None) is not None:
        wui.dialog.user_id.setText(DEMO_NURSE.id)
        wui.dialog.password.setFocus()
    return wui


def attach_signed_in_demo(window, runtime, protocol: str):
    """The workflow panel with the demo nurse signed in (no login dialog: nobody is there to type
    her published password), walking ``protocol``: for screenshots of the whole bedside screen."""
    from ketmonitor.demo_walkthrough import DEMO_NURSE, DEMO_NURSE_PASSWORD, demo_user

    from .workflow.session import WorkflowUi

    wui = WorkflowUi(window, runtime)
    demo_user(runtime.writer, runtime.clock)
    wui.start_session(wui.auth.login(DEMO_NURSE.id, DEMO_NURSE_PASSWORD))
    wui.start_walkthrough(protocol)
    return wui


def run_demo(args, db_path: Path) -> int:
    if args.screenshot:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = make_app()
    minutes = args.minutes or (10.0 if args.screenshot else None)
    speed = args.speed or (max(60.0, minutes * 60 / 6) if args.screenshot else 1.0)
    runtime, window = build_demo(db_path, scenario=args.scenario, seed=args.seed, speed=speed,
                                 protocol=args.protocol,
                                 simulate_dose=bool(args.screenshot) and not args.protocol)
    runtime.start()
    window.resize(1600, 900)
    window.show()
    window.start()
    window.closing.connect(lambda: runtime.stop())
    if not args.screenshot:
        window.workflow_ui = attach_workflow(window, runtime, protocol=args.protocol, demo=True)
    elif args.protocol:  # the bedside as the nurse sees it: signed in, the protocol walked through
        window.workflow_ui = attach_signed_in_demo(window, runtime, args.protocol)
    if args.screenshot:
        out = Path(args.screenshot)

        def check() -> None:
            if runtime.clock.monotonic() >= minutes * 60:
                window._slow_refresh(window.session_seconds())
                window.frame(window.queue.drain())
                if window.alarm_ui is not None:  # the banner from the same moment as the tiles
                    window.alarm_ui.controller.refresh()
                if not window.grab().save(str(out)):
                    print(f"ketmonitor: cannot write screenshot {out}", file=sys.stderr)
                    app.exit(2)
                    return
                print(f"screenshot {out} after {minutes:g} simulated minutes")
                window.close()
                app.quit()

        timer = QTimer(window)
        timer.timeout.connect(check)
        timer.start(100)
    return app.exec()


def recover_unfinished(db_path: Path, parent=None) -> str | None:
    """Offer to resume or close sessions a crash left open; returns the id to resume, if any."""
    from ketmonitor.sessions import ABANDONED, end_session, unfinished_sessions
    from ketmonitor.store import StoreWriter

    from .recovery import RecoveryDialog

    with StoreWriter(db_path) as writer:
        unfinished = writer.run(unfinished_sessions)
        if not unfinished:
            return None
        dlg = RecoveryDialog(unfinished, parent)
        dlg.exec()
        if dlg.decision is None:
            return None
        what, sid = dlg.decision
        if what == "close":
            writer.run(lambda db: end_session(db, sid, status=ABANDONED,
                                              reason="closed after an interrupted run"))
            return None
        return sid


def run_gui(args, db_path: Path) -> int:
    """The bedside application on this workstation's configured devices."""
    from ketmonitor.clock import Clock
    from ketmonitor.workstation import build_sources, load_choices, save_choices

    from .device_setup import DeviceSetupDialog

    app = make_app()
    resume = recover_unfinished(db_path)
    choices = load_choices()
    if not choices:
        dlg = DeviceSetupDialog()
        if dlg.exec() != DeviceSetupDialog.Accepted:
            return 0
        choices = dlg.choices()
        save_choices(choices)
    clock = Clock()
    runtime = MonitorRuntime(db_path, build_sources(choices, clock=clock), clock=clock,
                             session_id=resume)
    runtime.start()
    window = MonitorWindow(runtime, title="ketmonitor")
    from .review.app import add_review_menu
    add_review_menu(window, db_path)  # physicians and auditors review past sessions from here
    window.closing.connect(lambda: runtime.stop())
    window.resize(1600, 900)
    window.show()
    window.start()
    window.workflow_ui = attach_workflow(window, runtime)
    return app.exec()
