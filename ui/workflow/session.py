"""Putting the workflow on the monitor window: first start, login, then the side panel, the task
banner and the automatic lock, all on the running MonitorRuntime's session.

    wui = WorkflowUi(window, runtime)
    wui.begin()          # opens the first-start dialog if needed, then the login dialog
    wui.ready.connect(...)  # after login: wui.workflow, wui.panel, wui.lock are set
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from ketmonitor.errors import ConfigError, KetmonitorError
from ketmonitor.protocols import load_protocol, load_protocols
from ketmonitor.samples import Numeric
from ketmonitor.scales import load_scales
from ketmonitor.users import Authenticator
from ketmonitor.workflow import SessionWorkflow

from .. import theme
from .lock import LockController, LockOverlay
from .login import FirstStartDialog, LoginDialog
from .panel import WorkflowPanel


class WorkflowUi(QObject):
    ready = Signal(object)  # the logged-in User

    def __init__(self, window, runtime, *, clinic_dir=None, lock_timeout_s: float = 300.0,
                 hasher=None, lock_clock: Callable[[], float] = time.monotonic, parent=None):
        super().__init__(parent or window)
        self.window, self.runtime = window, runtime
        if clinic_dir is not None and not Path(clinic_dir).is_dir():
            raise ConfigError(f"clinic folder {clinic_dir} does not exist")
        self.clinic_dir = clinic_dir
        self.lock_timeout_s, self.lock_clock = lock_timeout_s, lock_clock
        self.auth = Authenticator(runtime.writer, hasher=hasher)
        self.workflow: SessionWorkflow | None = None
        self.panel: WorkflowPanel | None = None
        self.lock: LockController | None = None
        self.dialog = None
        self._latest: dict[str, float] = {}
        self._markers: deque = deque()  # (kind, t_mono, data) from any thread, drawn on the timer
        self._walk: threading.Thread | None = None
        self._walk_stop = threading.Event()
        self.walk_report = None
        self._end_lock = threading.Lock()
        self._ended: set[str] = set()  # sessions whose end made the monitor record a new one
        runtime.add_listener(self._remember)
        if getattr(window, "alarm_ui", None) is not None:  # the alarm UI learns who acts
            window.alarm_ui.controller.user = self.user_provider

    def clinic_sub(self, name: str) -> str | None:
        """The clinic folder's ``scales`` or ``protocols`` subfolder, None when it has none (a
        clinic may override only its protocols, only its scales, or neither)."""
        if self.clinic_dir is None:
            return None
        sub = Path(self.clinic_dir) / name
        return str(sub) if sub.is_dir() else None

    def _remember(self, sample) -> None:  # any thread: plain dict assignment
        if isinstance(sample, Numeric) and sample.value is not None:
            self._latest[sample.metric] = sample.value

    def latest(self) -> dict:
        return dict(self._latest)

    def user_provider(self) -> tuple[str | None, str | None]:
        """For the alarm UI: who acknowledges, pauses or changes limits; nobody while locked (the
        logged-in user is locked out, not at the screen)."""
        if self.lock is not None and self.lock.lock.locked:
            return None, None
        user = self.workflow.user if self.workflow else None
        return (user.id, user.role) if user else (None, None)

    # -- flow ----------------------------------------------------------------------------------
    def begin(self) -> None:
        if self.auth.needs_first_start():
            self.dialog = FirstStartDialog(self.auth, self.window)
            self.dialog.accepted.connect(self._login)
            self.dialog.open()
        else:
            self._login()

    def _login(self) -> None:
        self.dialog = LoginDialog(self.auth, parent=self.window)
        self.dialog.accepted.connect(lambda: self.start_session(self.dialog.user))
        self.dialog.open()

    def _open_workflow(self, user) -> None:
        """The workflow and panel of the runtime's current session."""
        rt = self.runtime
        self.workflow = SessionWorkflow(rt.writer, rt.session_id, rt.clock, user=user,
                                        scales=load_scales(self.clinic_sub("scales")),
                                        request_nibp=rt.request_nibp,
                                        clinic_dir=self.clinic_sub("protocols"),
                                        alarms=getattr(rt, "alarms", None))
        rt.add_listener(self.workflow.on_sample)
        workflow = self.workflow
        self.workflow.event_listeners.append(lambda *e: self._markers.append(e))
        self.workflow.event_listeners.append(
            lambda kind, t, data: self._maybe_ended(workflow, kind, data))
        protocols = load_protocols(self.clinic_sub("protocols"))
        self.panel = WorkflowPanel(self.workflow, protocols, latest=self.latest,
                                   next_patient=self.next_patient)
        self.window.side_layout.addWidget(self.panel, 1)
        self.window.banner_layout.addWidget(self.panel.banner)

    def start_session(self, user) -> None:
        rt = self.runtime
        overlay = LockOverlay()
        self.window.side_layout.addWidget(overlay)
        self._open_workflow(user)
        controls = [self.panel, (self.window.nibp_button, self.window.nibp_available)]
        self.lock = LockController(self.auth, overlay, controls,
                                   user_id=user.id, timeout_s=self.lock_timeout_s,
                                   session_id=rt.session_id, now=self.lock_clock,
                                   on_unlock=self._unlocked, parent=self)
        alarm_ui = getattr(self.window, "alarm_ui", None)
        if alarm_ui is not None:  # limits need an unlocked user; acknowledge stays for anyone
            self.lock.locked_changed.connect(alarm_ui.set_locked)
            alarm_ui.set_locked(self.lock.lock.locked)
        self.panel.lock_button.clicked.connect(self.lock.lock_now)
        self.window.closing.connect(self.lock.close)
        self.window.closing.connect(self.stop_walkthrough)
        self.window.closing.connect(self._shutdown)
        self.marker_timer = QTimer(self)
        self.marker_timer.setInterval(250)
        self.marker_timer.timeout.connect(self.draw_markers)
        self.marker_timer.start()
        if self.workflow.snapshot.checked_in:  # resumed after a restart: the protocol's limits again
            try:
                self.workflow.apply_protocol_limits(note="session resumed")
            except KetmonitorError as exc:
                self.window.message_label.setText(str(exc))
        self.window.activateWindow()  # the login dialog has closed: keyboard back to the monitor
        self.ready.emit(user)

    # -- the end of a session, and the next ------------------------------------------------------
    def _maybe_ended(self, workflow, kind: str, data: dict) -> None:
        """Any thread: once the session has ended, the monitor records into a new session, so the
        ended one's rows stay what its signed record holds."""
        if kind != "workflow.state" or data.get("to") != "ended":
            return
        with self._end_lock:
            if workflow.session_id in self._ended:
                return
            self._ended.add(workflow.session_id)
        if self.runtime.session_id == workflow.session_id:
            user = workflow.user
            self.runtime.next_session(user_id=user.id if user else None)

    def next_patient(self) -> None:
        """A new workflow and panel on the session the monitor records into now (main thread)."""
        old_wf, old_panel = self.workflow, self.panel
        if old_wf.state != "ended":
            return
        if self.runtime.session_id == old_wf.session_id:  # not rolled over yet (e.g. a crash)
            self._maybe_ended(old_wf, "workflow.state", {"to": "ended"})
        self.runtime.dispatcher.remove_listener(old_wf.on_sample)
        end_form = old_panel.forms.get("ended")
        if end_form is not None:
            end_form.close_down()
        old_panel.timer.stop()
        self.window.side_layout.removeWidget(old_panel)
        self.window.banner_layout.removeWidget(old_panel.banner)
        old_panel.banner.hide()
        old_panel.hide()
        old_panel.banner.deleteLater()
        old_panel.deleteLater()
        self._open_workflow(old_wf.user)
        self.lock.controls[0] = self.panel
        self.lock.session_id = self.runtime.session_id
        self.panel.lock_button.clicked.connect(self.lock.lock_now)
        self.window.dose_mono = None  # the "since dose" clock is the patient's
        self.window.dose_label.setText("no dose yet")
        self.window.dose_label.setStyleSheet(f"color: {theme.DIM};")

    def _shutdown(self) -> None:
        """The window is closing (the runtime stops next): no timer may reach the store again."""
        self.marker_timer.stop()
        if self.panel is not None:
            self.panel.timer.stop()
            form = self.panel.forms.get("ended")
            if form is not None:
                form.close_down()

    def _unlocked(self, result) -> None:
        if result.handover and result.user is not None:
            self.workflow.set_user(result.user, handover=True)
        self.panel.mark_dirty()

    # -- the trend timeline ----------------------------------------------------------------------
    def draw_markers(self) -> None:
        """Doses, scale scores, events and notes as labelled lines on the trends (main thread)."""
        w, t0 = self.window, self.runtime.t0 or 0.0
        while self._markers:
            kind, t_mono, data = self._markers.popleft()
            label = marker_label(kind, data)
            if label is None:
                continue
            if kind in ("dose", "infusion.start") and w.dose_mono is None:
                w.dose_mono = t_mono  # the window's "since dose" clock
            w.trends.add_marker((t_mono - t0) / 60.0, label)

    # -- the demo walk-through ---------------------------------------------------------------------
    def start_walkthrough(self, protocol_name: str, *, dose_at: float = 300.0, seed: int = 1) -> None:
        """Walk the protocol with simulated entries on a worker thread, as the logged-in user; the
        panel follows along (the GUI demo's walk-through for a person to watch or join)."""
        from ketmonitor.demo_walkthrough import walk_through

        protocol = load_protocol(protocol_name, self.clinic_sub("protocols"))

        def run():
            self.walk_report = walk_through(self.workflow, protocol, self.runtime.clock,
                                            t0=self.runtime.t0 or 0.0, dose_at=dose_at, seed=seed,
                                            stop=self._walk_stop)

        self._walk = threading.Thread(target=run, name="demo-walkthrough", daemon=True)
        self._walk.start()

    def stop_walkthrough(self) -> None:
        self._walk_stop.set()
        if self._walk is not None:
            self._walk.join(5)
            self._walk = None


def marker_label(kind: str, data: dict) -> str | None:
    if kind == "dose":
        device = data.get("device_index")
        return f"device {device}" if device else f"dose {data.get('amount', 0):g} {data.get('unit', '')}"
    if kind == "infusion.start":
        return "infusion start"
    if kind == "infusion.stop":
        return "infusion stop"
    if kind == "scale":
        total = data.get("total")
        return f"{data.get('short', data.get('scale'))} {total:g}" if total is not None else None
    if kind == "event":
        return data.get("label", "event").split(" (")[0]
    if kind == "note":
        return "note"
    if kind == "discharge":
        return "ready to leave"
    return None
