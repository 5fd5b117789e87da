"""Login (with the forced password change) and the first start that creates the clinic and its
admin. Both are non-blocking dialogs: open() them and listen to ``accepted``.

Checking a password is slow on purpose (Argon2id, about 0.2 s a hash here) and changing one derives
the signing key twice more (about 1.5 s in all): that work runs on a ``PasswordWorker`` thread
while the dialog says "Checking password...", so the monitor behind it keeps drawing the vitals and
sounding its alarms."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QDialog, QFormLayout, QLineEdit, QPushButton, QVBoxLayout

from ketmonitor.errors import KetmonitorError
from ketmonitor.users import Authenticator, Clinic, PasswordExpiredError

from .common import FORM_STYLE, ErrorLabel, heading

log = logging.getLogger(__name__)
CHECKING = "Checking password..."


def _password() -> QLineEdit:
    field = QLineEdit()
    field.setEchoMode(QLineEdit.Password)
    return field


def error_text(exc: BaseException) -> str:
    """One line for a person: a KetmonitorError says it itself; anything else (a database error, a
    bug) is logged with its traceback and named, never left to escape a Qt slot."""
    if isinstance(exc, KetmonitorError):
        return str(exc)
    log.error("password check failed", exc_info=exc)
    return f"the password could not be checked ({type(exc).__name__}: {exc}); try again"


class PasswordWorker(QObject):
    """Runs slow password work (hashing, key derivation) on a worker thread, one call at a time.
    ``start(fn, on_done)`` returns at once; ``on_done(result, error)`` runs later on the thread
    this object lives on (the Qt main thread), with ``error`` the exception or None. Each call has
    its own short-lived thread: nothing lingers between logins."""

    _finished = Signal(object)  # the Future, emitted on the worker thread

    def __init__(self, parent=None):
        super().__init__(parent)
        # queued always: even a call that is done before start() returns answers from the event loop
        self._finished.connect(self._deliver, Qt.QueuedConnection)
        self._thread: threading.Thread | None = None
        self._on_done: Callable | None = None

    @property
    def busy(self) -> bool:
        return self._on_done is not None

    def start(self, fn: Callable[[], object], on_done: Callable[[object, BaseException | None],
                                                                None]) -> bool:
        """False (and nothing started) while a call is under way."""
        if self.busy:
            return False
        self._on_done = on_done
        fut: Future = Future()

        def run():
            fut.set_running_or_notify_cancel()
            try:
                fut.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to on_done on the main thread
                fut.set_exception(exc)
            try:
                self._finished.emit(fut)
            except RuntimeError:  # the dialog has been deleted: nobody waits for the answer
                pass

        # a daemon: a check still running when the app quits is abandoned, its write is atomic
        self._thread = threading.Thread(target=run, name="password-check", daemon=True)
        self._thread.start()
        return True

    def _deliver(self, fut: Future) -> None:
        on_done, self._on_done = self._on_done, None
        if on_done is None:
            return
        exc = fut.exception()
        on_done(None if exc is not None else fut.result(), exc)

    def shutdown(self, wait: bool = True, timeout: float = 30.0) -> None:
        """Nobody waits for the answer any more; with ``wait``, return once the call has ended."""
        self._on_done = None
        thread, self._thread = self._thread, None
        if wait and thread is not None:
            thread.join(timeout)


class LoginDialog(QDialog):
    """User id + password. An expired or temporary password asks for a new one first."""

    def __init__(self, auth: Authenticator, *, title: str = "Log in", parent=None):
        super().__init__(parent)
        self.auth = auth
        self.user = None
        self.worker = PasswordWorker(self)
        self.setWindowTitle(title)
        self.setStyleSheet(FORM_STYLE)
        self.setMinimumWidth(400)  # room for a password and for the rules it must meet
        layout = QVBoxLayout(self)
        layout.addWidget(heading(title))
        form = QFormLayout()
        self.user_id = QLineEdit()
        self.password = _password()
        self.new_password = _password()
        self.confirm = _password()
        form.addRow("User id", self.user_id)
        form.addRow("Password", self.password)
        form.addRow("New password", self.new_password)
        form.addRow("Repeat new password", self.confirm)
        layout.addLayout(form)
        self._change_rows = [self.new_password, self.confirm]
        for w in self._change_rows:
            form.labelForField(w).hide()
            w.hide()
        self.error = ErrorLabel()
        layout.addWidget(self.error)
        self.button = QPushButton("Log in")
        self.button.setDefault(True)
        self.button.clicked.connect(self.submit)
        layout.addWidget(self.button)
        self.password.returnPressed.connect(self.submit)
        self.confirm.returnPressed.connect(self.submit)
        self._form = form
        self._idle_text = self.button.text()

    def _show_change(self, message: str) -> None:
        for w in self._change_rows:
            self._form.labelForField(w).show()
            w.show()
        self.error.show_error(f"{message}: enter a new password twice")
        self._idle_text = "Change password and log in"
        self.button.setText(self._idle_text)
        self.new_password.setFocus()

    @property
    def busy(self) -> bool:
        return self.worker.busy

    def _set_busy(self, busy: bool, text: str = CHECKING) -> None:
        for w in (self.user_id, self.password, self.new_password, self.confirm):
            w.setReadOnly(busy)
        self.button.setEnabled(not busy)
        self.button.setText(text if busy else self._idle_text)

    def submit(self) -> None:
        """Check (or change, then check) the password on the worker; ``_checked`` answers."""
        if self.busy:
            return  # Enter pressed again while checking
        uid, pw = self.user_id.text().strip(), self.password.text()
        new = None
        if self.new_password.isVisible():
            if self.new_password.text() != self.confirm.text():
                self.error.show_error("the two new passwords differ")
                return
            new = self.new_password.text()
        step = ["change" if new is not None else "login"]

        def work():
            if new is not None:
                self.auth.change_password(uid, pw, new)
                step[0] = "login"
                return self.auth.login(uid, new)
            return self.auth.login(uid, pw)

        self.error.clear_error()
        self._set_busy(True, "Changing password..." if new is not None else CHECKING)
        self.worker.start(work, lambda user, exc: self._checked(user, exc, step[0]))

    def _checked(self, user, exc: BaseException | None, step: str) -> None:
        self._set_busy(False)
        if exc is None:
            self.user = user
            for w in (self.password, self.new_password, self.confirm):
                w.clear()
            self.accept()
        elif isinstance(exc, PasswordExpiredError):
            self._show_change(str(exc))
        elif step == "change":  # the new password is refused (rules, history) or the old is wrong
            self.error.show_error(error_text(exc))
        else:
            self.error.show_error(error_text(exc))
            self.password.clear()
            self.password.setFocus()

    def reject(self) -> None:
        if not self.busy:  # the answer is seconds away at most: it decides
            super().reject()

    def done(self, result: int) -> None:  # noqa: D102 - closing for good: let the worker end
        super().done(result)
        self.worker.shutdown(wait=False)


class FirstStartDialog(QDialog):
    """The first start of an empty database: the clinic and its administrator."""

    def __init__(self, auth: Authenticator, parent=None):
        super().__init__(parent)
        self.auth = auth
        self.user = None
        self.setWindowTitle("First start")
        self.setStyleSheet(FORM_STYLE)
        layout = QVBoxLayout(self)
        layout.addWidget(heading("First start: the clinic and its administrator"))
        form = QFormLayout()
        self.clinic_name = QLineEdit()
        self.address = QLineEdit()
        self.phone = QLineEdit()
        self.admin_id = QLineEdit()
        self.admin_name = QLineEdit()
        self.password = _password()
        self.confirm = _password()
        for label, field in (("Clinic name", self.clinic_name), ("Address", self.address),
                             ("Phone", self.phone), ("Admin user id", self.admin_id),
                             ("Admin full name", self.admin_name), ("Password", self.password),
                             ("Repeat password", self.confirm)):
            form.addRow(label, field)
        layout.addLayout(form)
        self.error = ErrorLabel()
        layout.addWidget(self.error)
        self.button = QPushButton("Create clinic and administrator")
        self.button.clicked.connect(self.submit)
        layout.addWidget(self.button)
        self._idle_text = self.button.text()
        self.worker = PasswordWorker(self)

    def submit(self) -> None:
        if self.worker.busy:
            return
        if self.password.text() != self.confirm.text():
            self.error.show_error("the two passwords differ")
            return
        clinic = Clinic(self.clinic_name.text().strip(), self.address.text().strip(),
                        self.phone.text().strip())
        args = (clinic, self.admin_id.text().strip(), self.admin_name.text().strip(),
                self.password.text())
        self.error.clear_error()
        self.button.setEnabled(False)
        self.button.setText("Creating...")
        self.worker.start(lambda: self.auth.first_start(*args), self._created)

    def _created(self, user, exc: BaseException | None) -> None:
        self.button.setEnabled(True)
        self.button.setText(self._idle_text)
        if exc is not None:
            self.error.show_error(error_text(exc))
            return
        self.user = user
        self.accept()

    def reject(self) -> None:
        if not self.worker.busy:
            super().reject()

    def done(self, result: int) -> None:  # noqa: D102
        super().done(result)
        self.worker.shutdown(wait=False)
