"""Automatic lock after inactivity. It disables the workflow controls, the NIBP button and the alarm
limits only: tiles, waveform, trends and the alarm banner stay live, alarm sound continues, and
Acknowledge and Pause audio stay usable (recorded as done at the locked screen). Unlocking takes a
user id and password; another user unlocking is a recorded handover. The password is checked on a
``PasswordWorker`` thread (an Argon2id hash, about 0.2 s here: six frames of the vitals at 30 Hz),
so the tiles and the pleth never stop while the overlay says "Checking password..."."""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, QTimer, Signal
from PySide6.QtWidgets import (QApplication, QFormLayout, QFrame, QLabel, QLineEdit, QPushButton,
                               QVBoxLayout, QWidget)

from ketmonitor.users import Authenticator, InactivityLock

from .. import theme
from .common import ErrorLabel
from .login import CHECKING, PasswordWorker, error_text

_ACTIVITY = (QEvent.KeyPress, QEvent.MouseButtonPress, QEvent.Wheel, QEvent.TouchBegin)


class LockOverlay(QFrame):
    """The unlock form shown in place of the controls while locked."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("lockOverlay")
        self.setStyleSheet(f"QFrame#lockOverlay {{ background: #1a1f26; border: 2px solid "
                           f"{theme.ALARM_COLOURS['low']}; border-radius: 6px; }}")
        layout = QVBoxLayout(self)
        self.title = QLabel("Controls locked - vitals and alarms stay live")
        self.title.setStyleSheet(f"color: {theme.TEXT}; font-size: 16px; font-weight: bold;")
        self.title.setWordWrap(True)
        layout.addWidget(self.title)
        form = QFormLayout()
        self.user_id = QLineEdit()
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.Password)
        form.addRow("User id", self.user_id)
        form.addRow("Password", self.password)
        layout.addLayout(form)
        self.error = ErrorLabel()
        layout.addWidget(self.error)
        self.button = QPushButton("Unlock")
        layout.addWidget(self.button)
        self.hide()


class LockController(QObject):
    """Drives an InactivityLock from Qt input events (application-wide event filter) and a timer.

    ``controls``: widgets disabled while locked, or ``(widget, available)`` pairs for a widget that
    unlocking enables only when ``available()`` (the NIBP button without a blood-pressure device
    stays disabled). ``on_unlock(result)`` gets the ``Unlock``. ``now``: the clock inactivity is
    measured on (real time by default: it is about people).
    """

    locked_changed = Signal(bool)

    def __init__(self, auth: Authenticator, overlay: LockOverlay, controls: list[QWidget], *,
                 user_id: str, timeout_s: float = 300.0, session_id: str | None = None,
                 now: Callable[[], float] = time.monotonic,
                 on_unlock: Callable | None = None, parent=None):
        super().__init__(parent)
        self.auth, self.overlay, self.controls = auth, overlay, controls
        self.session_id, self.now, self.on_unlock = session_id, now, on_unlock
        self.lock = InactivityLock(timeout_s, user_id=user_id, now=now(),
                                   on_change=self._changed)
        self.worker = PasswordWorker(self)
        overlay.button.clicked.connect(self.try_unlock)
        overlay.password.returnPressed.connect(self.try_unlock)
        QApplication.instance().installEventFilter(self)
        self.timer = QTimer(self)
        self.timer.setInterval(500)
        self.timer.timeout.connect(self.poll)
        self.timer.start()

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt name
        if event.type() in _ACTIVITY and not self.lock.locked:
            self.lock.touch(self.now())
        return False

    def poll(self) -> None:
        self.lock.poll(self.now())

    def lock_now(self) -> None:
        self.lock.lock(self.now())

    def _changed(self, locked: bool) -> None:
        for c in self.controls:
            w, available = c if isinstance(c, tuple) else (c, None)
            w.setEnabled(not locked and (available is None or bool(available())))
        self.overlay.setVisible(locked)
        if locked:
            self.overlay.user_id.setText("")
            self.overlay.password.clear()
            self.overlay.error.clear_error()
            self.overlay.user_id.setFocus()
        self.locked_changed.emit(locked)

    @property
    def checking(self) -> bool:
        return self.worker.busy

    def _set_checking(self, checking: bool) -> None:
        o = self.overlay
        o.user_id.setReadOnly(checking)
        o.password.setReadOnly(checking)
        o.button.setEnabled(not checking)
        o.button.setText(CHECKING if checking else "Unlock")

    def try_unlock(self) -> None:
        """Check the password on the worker; ``_checked`` unlocks (main thread) or says why not."""
        if self.checking or not self.lock.locked:
            return
        uid, pw = self.overlay.user_id.text().strip(), self.overlay.password.text()
        self.overlay.error.clear_error()
        self._set_checking(True)
        self.worker.start(lambda: self.auth.check_unlock(self.lock, uid, pw), self._checked)

    def _checked(self, user, exc: BaseException | None) -> None:
        self._set_checking(False)
        if exc is None and self.lock.locked:
            try:
                result = self.auth.record_unlock(self.lock, user, session_id=self.session_id)
            except Exception as e:  # noqa: BLE001 - a failed audit write must not escape the slot
                exc = e
            else:
                if self.on_unlock:
                    self.on_unlock(result)
                return
        if exc is not None:
            self.overlay.error.show_error(error_text(exc))
            self.overlay.password.clear()
            self.overlay.password.setFocus()

    def close(self) -> None:
        self.timer.stop()
        self.worker.shutdown(wait=False)
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)
